//! The watcher's web page, for real: a `listns watch` serving it on
//! loopback TCP, namespaces made by the test (their inodes read from the
//! kernel with stat), and Debian's headless chromium driven over
//! WebDriver. Screenshots go to target/web-screenshots/.

use std::{process::Command, time::Duration};

use listns_tests::{
    free_port, listns_bin, ns_inode,
    web::{Browser, Sandbox, get_as, require_browser, watcher},
};
use serde_json::{Value, json};

/// The console's errors, except those `allowed` says are expected.
async fn console_errors(b: &Browser, allowed: impl Fn(&str) -> bool) -> Vec<String> {
    b.console()
        .await
        .into_iter()
        .filter(|(level, msg)| level == "SEVERE" && !allowed(msg))
        .map(|(_, m)| m)
        .collect()
}

/// Live rows only: the recently gone are listed too, and inodes are reused.
const ROW: &str = "return [...document.querySelectorAll('#tree .node:not(.is-gone) > .row')]\
                   .filter(r => r.dataset.key === arguments[0]).length";
const FEED: &str = "return [...document.querySelectorAll('#feed li')]\
                    .filter(l => l.dataset.key === arguments[0]).length";
/// By id where the kernel has them (inodes are reused), else by key.
const GONE_BAR: &str = "return [...document.querySelectorAll('#timeline rect.bar.gone')]\
                        .filter(r => arguments[1] ? r.dataset.id === arguments[1] : r.dataset.key === arguments[0]).length";

#[tokio::test(flavor = "current_thread")]
async fn page_shows_a_new_namespace_live_filters_and_sees_it_gone() {
    if !require_browser() {
        return;
    }
    let port = free_port();
    let (_w, _dir) = watcher(port, &[]);
    let b = Browser::start().await;
    b.client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    let first = b
        .until(
            Duration::from_secs(20),
            "return document.body.dataset.firstRender",
            vec![],
        )
        .await;
    assert!(first.is_some(), "the page never drew its tree");
    b.until(
        Duration::from_secs(10),
        "return document.getElementById('status').textContent === 'live'",
        vec![],
    )
    .await
    .expect("the feed's stream never went live");
    // The initial namespaces, from the kernel: ours are in the tree.
    let net = format!("net:{}", ns_inode("/proc/self/ns/net"));
    assert!(
        b.until(Duration::from_secs(5), ROW, vec![json!(net)])
            .await
            .is_some(),
        "{net}"
    );

    // A namespace made now: in the tree and the feed within 2 s.
    let sb = Sandbox::spawn("unshare", "web-test-sandbox");
    let key = format!("uts:{}", sb.uts());
    let (_, in_tree) = b
        .until(Duration::from_secs(10), ROW, vec![json!(key)])
        .await
        .unwrap_or_else(|| panic!("{key} never reached the tree"));
    let (_, in_feed) = b
        .until(Duration::from_secs(10), FEED, vec![json!(key)])
        .await
        .unwrap_or_else(|| panic!("{key} never reached the feed"));
    assert!(in_tree <= Duration::from_secs(2), "tree after {in_tree:?}");
    assert!(in_feed <= Duration::from_secs(2), "feed after {in_feed:?}");
    // Its row is marked NEW and names what made it: its command line, or
    // (where the watcher has not read one yet) its creator, unshare.
    let row = b
        .js(
            "const r = [...document.querySelectorAll('#tree .node:not(.is-gone) > .row')].find(r => r.dataset.key === arguments[0]);\
             return [r.querySelector('.cmd').textContent, r.querySelector('.mark.new') !== null]",
            vec![json!(key)],
        )
        .await;
    let cmd = row[0].as_str().unwrap();
    assert!(
        cmd == "web-test-sandbox 600" || cmd == "created by unshare",
        "{row}"
    );
    assert_eq!(row[1], json!(true), "no NEW mark: {row}");
    // Its detail: the terminal command names it.
    b.js(
        "[...document.querySelectorAll('#tree .node:not(.is-gone) > .row')].find(r => r.dataset.key === arguments[0]).click()",
        vec![json!(key)],
    )
    .await;
    let term = b
        .until(
            Duration::from_secs(5),
            "const c = document.querySelector('#detail .term code'); return c && c.textContent",
            vec![],
        )
        .await
        .expect("no detail");
    assert_eq!(
        term.0,
        json!(format!(
            "listns --from http://127.0.0.1:{port} {}",
            sb.uts()
        ))
    );
    b.screenshot("live").await;
    let errors = console_errors(&b, |_| false).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // The filter: evaluated by the server, the tree narrows to it.
    let rows = "return [...document.querySelectorAll('#tree .row .type')].map(t => t.textContent)";
    let before = b.js(rows, vec![]).await;
    let filter = b
        .client
        .find(fantoccini::Locator::Id("filter"))
        .await
        .unwrap();
    filter.send_keys("TYPE == \"uts\"\u{e007}").await.unwrap();
    let narrowed = b
        .until(
            Duration::from_secs(10),
            "const t = [...document.querySelectorAll('#tree .row .type')].map(t => t.textContent);\
             return t.length > 0 && t.every(x => x === 'uts') && t",
            vec![],
        )
        .await
        .expect("the tree never narrowed to uts")
        .0;
    let (before, narrowed) = (before.as_array().unwrap(), narrowed.as_array().unwrap());
    assert!(
        narrowed.len() < before.len(),
        "{} rows, then {}",
        before.len(),
        narrowed.len()
    );
    assert!(
        b.until(Duration::from_secs(2), ROW, vec![json!(key)])
            .await
            .is_some()
    );
    // A bad expression: the server's parse error, shown as the CLI shows it.
    filter.clear().await.unwrap();
    filter.send_keys("TYPE ==\u{e007}").await.unwrap();
    let shown = b
        .until(
            Duration::from_secs(10),
            "const e = document.getElementById('filter-error'); return !e.hidden && e.textContent",
            vec![],
        )
        .await
        .expect("no parse error shown")
        .0;
    let cli = Command::new(listns_bin())
        .args(["-Q", "TYPE =="])
        .output()
        .unwrap();
    assert!(!cli.status.success());
    let cli = String::from_utf8(cli.stderr).unwrap();
    assert_eq!(
        shown.as_str().unwrap(),
        cli.trim_end(),
        "the page and the CLI differ"
    );
    assert!(
        cli.starts_with("listns: failed to parse filter \"TYPE ==\" at character 8"),
        "{cli}"
    );
    assert!(cli.ends_with("\n  TYPE ==\n         ^\n"), "{cli:?}");
    b.screenshot("filter-error").await;
    // The only console error: the 400 of that request.
    let errors = console_errors(&b, |m| m.contains("/v1/namespaces?") && m.contains("400")).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    filter.clear().await.unwrap();
    filter.send_keys("\u{e007}").await.unwrap();

    // Killed: its bar on the time line shows it gone.
    let id = sb.id().map(|i| i.to_string());
    drop(sb);
    let gone = b
        .until(
            Duration::from_secs(15),
            GONE_BAR,
            vec![json!(key), json!(id)],
        )
        .await;
    assert!(
        gone.is_some(),
        "{key} (id {id:?}) never showed as gone on the time line"
    );
    let kinds: Value = b
        .js(
            "return [...document.querySelectorAll('#feed li')]\
             .filter(l => arguments[1] ? l.dataset.id === arguments[1] : l.dataset.key === arguments[0])\
             .map(l => l.dataset.event)",
            vec![json!(key), json!(id)],
        )
        .await;
    assert!(
        kinds.as_array().unwrap().contains(&json!("gone")),
        "{kinds}"
    );
    b.screenshot("gone").await;

    // A sandbox that lives a few milliseconds (its comm names it): a
    // visible mark on the time line, at least 5 px wide, that opens it.
    let dir = tempfile::tempdir().unwrap();
    let blip = dir.path().join("web-blip");
    std::os::unix::fs::symlink("/usr/bin/unshare", &blip).unwrap();
    assert!(
        Command::new(&blip)
            .args(["-u", "true"])
            .status()
            .unwrap()
            .success()
    );
    const BLIP: &str = "const r = [...document.querySelectorAll('#timeline rect.bar.gone')]\
                        .find(r => r.querySelector('title').textContent.includes(' web-blip\\n'));\
                        return r && [r.getBBox().width, r.dataset.key, +r.dataset.id || null]";
    let (bar, _) = b
        .until(Duration::from_secs(15), BLIP, vec![])
        .await
        .expect("no mark for a sandbox of a few milliseconds");
    assert!(bar[0].as_f64().unwrap() >= 5.0, "{bar}");
    // Zoomed to 10 ms around now, then back to everything: still there.
    b.js("[...document.querySelectorAll('#zooms button')].find(z => z.textContent === '10 ms').click()", vec![]).await;
    let range = b
        .js(
            "return document.getElementById('tl-range').textContent",
            vec![],
        )
        .await;
    assert_eq!(range, json!("10 ms shown"));
    b.js("[...document.querySelectorAll('#zooms button')].find(z => z.textContent === 'all').click()", vec![]).await;
    // Clicked (by its id where the kernel has them: the inode may be the
    // earlier sandbox's), its detail opens.
    b.js(
        "[...document.querySelectorAll('#timeline rect.bar.gone')]\
         .find(r => arguments[1] ? +r.dataset.id === arguments[1] : r.dataset.key === arguments[0])\
         .dispatchEvent(new MouseEvent('click', {bubbles: true}))",
        vec![bar[1].clone(), bar[2].clone()],
    )
    .await;
    let inode = bar[1]
        .as_str()
        .unwrap()
        .trim_start_matches("uts:")
        .to_string();
    let id = bar[2].as_u64().map_or(String::new(), |i| i.to_string());
    b.until(
        Duration::from_secs(5),
        "const d = document.getElementById('detail'), h = d.querySelector('h3');\
         return h && h.textContent.includes(arguments[0]) && h.textContent.includes('GONE')\
         && (!arguments[1] || [...d.querySelectorAll('tr')].some(t => t.textContent === 'id' + arguments[1]))",
        vec![json!(inode), json!(id)],
    )
    .await
    .expect("clicking the mark did not open the gone sandbox");
    b.screenshot("blip").await;
    b.close().await;
}

/// Text chosen by processes: a command line that is HTML, one with a bidi
/// override, one of 10,000 characters, and a creator's comm that is HTML.
#[tokio::test(flavor = "current_thread")]
async fn process_text_is_shown_as_inert_text() {
    if !require_browser() {
        return;
    }
    let img = "<img src=x onerror=\"window.__pwned=1\">";
    let bidi = "web-\u{202e}txt.exe";
    let long = "L".repeat(10_000);
    // Made before the watcher starts, so that its scan reads their
    // command lines.
    let boxes = [
        Sandbox::spawn("unshare", img),
        Sandbox::spawn("unshare", bidi),
        Sandbox::spawn("unshare", &long),
    ];
    let port = free_port();
    let (_w, _dir) = watcher(port, &[]);
    let b = Browser::start().await;
    b.client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    b.until(
        Duration::from_secs(20),
        "return document.body.dataset.firstRender",
        vec![],
    )
    .await
    .expect("the page never drew its tree");
    // Made while it runs, by a process whose comm is HTML: the creator
    // in the feed and on the time line.
    let comm = "<svg onload=1>"; // 14 bytes: a whole comm
    let made = Sandbox::spawn(comm, "web-test-made");
    // The bidi override escaped as the CLI escapes it.
    let bidi_shown = r"web-\u{202e}txt.exe";
    for (sb, text) in boxes.iter().zip([img, bidi_shown, long.as_str()]) {
        let key = format!("uts:{}", sb.uts());
        // The command line as the kernel has it: argv[0], then sleep's 600.
        let want = format!("{text} 600");
        let shown = b
            .until(
                Duration::from_secs(10),
                "const r = [...document.querySelectorAll('#tree .node:not(.is-gone) > .row')].find(r => r.dataset.key === arguments[0]);\
                 return r && r.querySelector('.cmd').textContent === arguments[1]",
                vec![json!(key), json!(want)],
            )
            .await;
        assert!(shown.is_some(), "{key}: never shown as {:.80?}", want);
    }
    // The detail of the HTML one shows it whole, as text.
    let key = format!("uts:{}", boxes[0].uts());
    b.js(
        "[...document.querySelectorAll('#tree .node:not(.is-gone) > .row')].find(r => r.dataset.key === arguments[0]).click()",
        vec![json!(key)],
    )
    .await;
    b.until(
        Duration::from_secs(5),
        "const c = document.querySelector('#detail code.wrap'); return c && c.textContent === arguments[0]",
        vec![json!(format!("{img} 600"))],
    )
    .await
    .expect("the detail does not show the command line as text");
    // The creator's comm in the feed and on the time line, as text.
    let made_key = format!("uts:{}", made.uts());
    b.until(
        Duration::from_secs(5),
        "return [...document.querySelectorAll('#feed li')].some(l => l.dataset.key === arguments[0] && l.textContent.includes(arguments[1]))",
        vec![json!(made_key), json!(comm)],
    )
    .await
    .expect("the feed does not show the comm");
    b.until(
        Duration::from_secs(5),
        "return [...document.querySelectorAll('#timeline .lane-label title')].some(t => t.textContent.endsWith(arguments[0]))",
        vec![json!(comm)],
    )
    .await
    .expect("the time line does not name the comm");
    // The long line does not widen the page.
    let wide = b
        .js("const t = document.getElementById('tree'); return [t.scrollWidth, t.clientWidth, document.documentElement.scrollWidth, innerWidth]", vec![])
        .await;
    let w: Vec<i64> = wide
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(w[0] <= w[1] + 1 && w[2] <= w[3], "overflow: {w:?}");
    // The sentinel: no script ran, and no element came from the text.
    let sentinel = b
        .js(
            "return [window.__pwned === undefined, document.querySelectorAll('main img, main svg:not(#timeline svg)').length,\
             document.querySelectorAll('#timeline svg svg, #timeline svg img').length]",
            vec![],
        )
        .await;
    assert_eq!(sentinel, json!([true, 0, 0]));
    b.screenshot("hostile").await;
    let errors = console_errors(&b, |_| false).await;
    assert!(
        errors.is_empty(),
        "console errors (a CSP violation is one): {errors:?}"
    );
    b.close().await;
}

/// No browser needed: the page's headers, and the Host check that keeps a
/// web site the user visits (its name rebound to 127.0.0.1) out of a
/// tokenless listener.
#[test]
fn tokenless_tcp_answers_loopback_hosts_only_and_the_page_has_its_headers() {
    if !listns_skip::require_root() {
        return;
    }
    let port = free_port();
    let (_w, _dir) = watcher(port, &[]);
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, head, body) = get_as(port, &host, "/", "");
        assert_eq!(status, 200, "{host}");
        assert!(body.contains("<script src=\"app.js\""), "{body:.200}");
        for h in [
            "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'; \
             connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'\r\n",
            "x-content-type-options: nosniff\r\n",
            "referrer-policy: no-referrer\r\n",
            "content-type: text/html; charset=utf-8\r\n",
        ] {
            assert!(head.contains(h), "{host}: no {h:?} in {head}");
        }
        let (status, _, _) = get_as(port, &host, "/v1/namespaces?type=uts", "");
        assert_eq!(status, 200, "{host}");
    }
    for (path, ty) in [
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let (status, head, _) = get_as(port, "localhost", path, "");
        assert_eq!(status, 200, "{path}");
        assert!(
            head.contains(&format!("content-type: {ty}")),
            "{path}: {head}"
        );
    }
    for host in [
        format!("evil.example:{port}"),
        "127.0.0.1.evil.example".into(),
        format!("10.1.2.3:{port}"),
    ] {
        for path in ["/", "/v1/namespaces", "/v1/events/stream"] {
            let (status, _, body) = get_as(port, &host, path, "");
            assert_eq!(status, 421, "{host}{path}: {body}");
            let e: Value = serde_json::from_str(&body).unwrap();
            assert!(e["error"].as_str().unwrap().contains("localhost"), "{body}");
        }
    }
    let (status, _, _) = get_as(port, "", "/", "");
    assert_eq!(status, 421, "an empty Host");
}

/// With a token: the page is public, its data is not; any Host may ask.
#[test]
fn with_a_token_the_page_is_public_and_the_data_is_not() {
    if !listns_skip::require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-web-token\n").unwrap();
    let port = free_port();
    let (_w, _d) = watcher(port, &["--api-token-file", token.to_str().unwrap()]);
    let host = format!("listns.example:{port}");
    let (status, head, _) = get_as(port, &host, "/", "");
    assert_eq!(status, 200);
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    let (status, _, _) = get_as(port, &host, "/v1/namespaces", "");
    assert_eq!(status, 401);
    let (status, _, body) = get_as(
        port,
        &host,
        "/v1/namespaces?type=uts",
        "Authorization: Bearer s3cret-web-token\r\n",
    );
    assert_eq!(status, 200, "{body:.300}");
}

/// The page with a token: it asks for it, keeps it for the session, and
/// then reads the tree and the stream with it.
#[tokio::test(flavor = "current_thread")]
async fn the_page_asks_for_the_token_and_uses_it() {
    if !require_browser() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "another-web-token").unwrap();
    let port = free_port();
    let (_w, _d) = watcher(port, &["--api-token-file", token.to_str().unwrap()]);
    let b = Browser::start().await;
    b.client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    b.until(
        Duration::from_secs(20),
        "return !document.getElementById('token-form').hidden",
        vec![],
    )
    .await
    .expect("the page never asked for the token");
    let input = b
        .client
        .find(fantoccini::Locator::Id("token"))
        .await
        .unwrap();
    input.send_keys("another-web-token\u{e007}").await.unwrap();
    let net = format!("net:{}", ns_inode("/proc/self/ns/net"));
    b.until(Duration::from_secs(20), ROW, vec![json!(net)])
        .await
        .expect("no tree with the token");
    b.until(
        Duration::from_secs(10),
        "return document.getElementById('status').textContent === 'live'",
        vec![],
    )
    .await
    .expect("the stream never went live with the token");
    let kept = b
        .js("return sessionStorage.getItem('listns-token')", vec![])
        .await;
    assert_eq!(kept, json!("another-web-token"));
    b.close().await;
}
