//! The watcher's web page: a read-only picture of the inventory (the
//! tree, the live feed, the time line, one namespace's detail), made of
//! static files embedded in the binary and served at `/` beside `/v1`.
//! The page reads only the `/v1` endpoints, so it shows nothing the API
//! does not; it has no build step and loads nothing from elsewhere.
//!
//! Two guards live here: the headers every file goes out with (a strict
//! Content-Security-Policy: no inline script, nothing but this origin),
//! and the Host check of tokenless TCP listeners, which keeps a web site
//! a user visits from reading the API through DNS rebinding (its name
//! resolved to 127.0.0.1 still arrives as its own Host).

use std::net::IpAddr;

/// One embedded file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// The embedded file served at `path`, if any.
pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, body): (&str, &[u8]) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", include_bytes!("web/index.html")),
        "/app.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("web/app.js"),
        ),
        "/views.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("web/views.js"),
        ),
        "/timeline.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("web/timeline.js"),
        ),
        "/app.css" => ("text/css; charset=utf-8", include_bytes!("web/app.css")),
        "/favicon.svg" => ("image/svg+xml", include_bytes!("web/favicon.svg")),
        _ => return None,
    };
    Some(Asset { content_type, body })
}

/// The page's Content-Security-Policy: scripts, styles and connections to
/// this origin only, no inline script or style, no frames, no forms.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                       form-action 'none'; frame-ancestors 'none'";

/// The headers every file of the page goes out with.
pub const HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
];

/// Whether a request's `Host` names this machine's loopback: `localhost`
/// (or a name under `.localhost`), an address in 127.0.0.0/8, or `[::1]`,
/// with or without a port. A tokenless TCP listener answers nothing else:
/// a page of another site that had its name resolved to 127.0.0.1 sends
/// that name, and is refused.
pub fn loopback_host(host: Option<&[u8]>) -> bool {
    let Some(host) = host.and_then(|h| std::str::from_utf8(h).ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6] or [v6]:port
        match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || valid_port(port) => v6,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if valid_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn valid_port(p: &str) -> bool {
    p.strip_prefix(':').unwrap_or(p).parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_allowed() {
        for h in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "app.localhost:1",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(loopback_host(Some(h.as_bytes())), "{h}");
        }
    }

    #[test]
    fn other_hosts_are_refused() {
        for h in [
            "",
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:8080",
            "[::2]:8080",
            "[::1]x",
            "localhost:port",
            "0.0.0.0:8080",
            "listns",
        ] {
            assert!(!loopback_host(Some(h.as_bytes())), "{h}");
        }
        assert!(!loopback_host(None));
        assert!(!loopback_host(Some(b"\xff")));
    }

    #[test]
    fn every_file_is_there() {
        for p in [
            "/",
            "/index.html",
            "/app.js",
            "/views.js",
            "/timeline.js",
            "/app.css",
            "/favicon.svg",
        ] {
            assert!(asset(p).is_some_and(|a| !a.body.is_empty()), "{p}");
        }
        assert!(asset("/v1/namespaces").is_none());
        assert!(asset("/../Cargo.toml").is_none());
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(asset("/").unwrap().body).unwrap();
        // Every <script> loads a file; no handler attributes (on...=), no
        // style= or javascript: anywhere in a tag.
        for tag in html.split("<script").skip(1) {
            assert!(tag.trim_start().starts_with("src="), "{tag}");
        }
        for tag in html.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap_or("").to_ascii_lowercase();
            for word in tag.split_whitespace() {
                assert!(
                    !(word.starts_with("on") && word.contains('=')),
                    "a handler: {tag}"
                );
                assert!(!word.starts_with("style="), "a style: {tag}");
            }
            assert!(!tag.contains("javascript:"), "{tag}");
        }
        // Nor does the script write HTML.
        for js in ["/app.js", "/views.js", "/timeline.js"] {
            let src = std::str::from_utf8(asset(js).unwrap().body).unwrap();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!src.contains(sink), "{js} uses {sink}");
            }
        }
    }
}
