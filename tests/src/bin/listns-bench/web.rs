//! web (only when named): the watcher's web page with 10,000 namespaces,
//! in Debian's headless chromium (as the page's tests drive it): the time
//! from the start of navigation to the first tree on screen (the page
//! records it once the frame after drawing has been painted), over
//! several loads, for namespaces the watcher found by its scan and for
//! namespaces it saw made (then the time line has a bar for each and the
//! feed replays every event).

use std::{net::TcpListener, path::Path, time::Duration};

use anyhow::{Context, Result, bail};
use listns_tests::web::Browser;

use crate::Watch;

const HELD: usize = 10_000;
const LOADS: usize = 5;

/// `n` UTS namespaces, each held by an fd of this process (unshare is per
/// thread: a helper thread makes them).
pub(crate) fn hold(n: usize) -> Result<Vec<std::fs::File>> {
    std::thread::spawn(move || -> Result<Vec<std::fs::File>> {
        (0..n)
            .map(|_| {
                // SAFETY: unshare on this helper thread only.
                if unsafe { libc::unshare(libc::CLONE_NEWUTS) } != 0 {
                    bail!("unshare: {}", std::io::Error::last_os_error());
                }
                Ok(std::fs::File::open("/proc/thread-self/ns/uts")?)
            })
            .collect()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("namespace maker panicked"))?
}

/// How many UTS namespaces GET /v1/namespaces lists (through curl).
fn listed(socket: &Path) -> Result<usize> {
    let body = std::process::Command::new("curl")
        .args(["-sf", "--unix-socket"])
        .arg(socket)
        .arg("http://localhost/v1/namespaces?type=uts&columns=NS")
        .output()
        .context("curl")?;
    let doc: serde_json::Value = serde_json::from_slice(&body.stdout)
        .with_context(|| format!("GET /v1/namespaces ({})", body.status))?;
    Ok(doc["namespaces"].as_array().map_or(0, Vec::len))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn loads(port: u16) -> Result<(Vec<f64>, Vec<f64>, u64, u64)> {
    let b = Browser::start().await;
    let (mut at, mut own) = (Vec::new(), Vec::new());
    let (mut rows, mut bars) = (0, 0);
    for _ in 0..LOADS {
        b.client
            .goto(&format!("http://127.0.0.1:{port}/"))
            .await
            .context("loading the page")?;
        let Some((v, _)) = b
            .until(
                Duration::from_secs(180),
                "const d = document.body.dataset; return d.firstRenderAt && [+d.firstRenderAt, +d.firstRender,\
                 document.querySelectorAll('#tree .row').length, document.querySelectorAll('#timeline rect.bar').length]",
                vec![],
            )
            .await
        else {
            bail!("the page never drew its tree");
        };
        at.push(v[0].as_f64().unwrap_or(0.0));
        own.push(v[1].as_f64().unwrap_or(0.0));
        rows = v[2].as_u64().unwrap_or(0);
        bars = v[3].as_u64().unwrap_or(0);
    }
    b.close().await;
    Ok((at, own, rows, bars))
}

pub fn web_bench() -> Result<()> {
    println!(
        "## web: headless chromium, 1280x800: navigation start to the first tree painted, {LOADS} loads, {HELD} UTS namespaces held by fds"
    );
    let limit = libc::rlimit {
        rlim_cur: (HELD + 1024) as u64,
        rlim_max: (HELD + 1024) as u64,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        bail!("cannot raise RLIMIT_NOFILE to {}", HELD + 1024);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tmp = tempfile::tempdir()?;
    for made_while_watching in [false, true] {
        let socket = tmp.path().join("api.sock");
        let _ = std::fs::remove_file(&socket);
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let early = if made_while_watching {
            Vec::new()
        } else {
            hold(HELD)?
        };
        let w = Watch::start_with(&[
            "--api-socket".as_ref(),
            socket.as_os_str(),
            "--api".as_ref(),
            port.to_string().as_ref(),
        ])?;
        let late = if made_while_watching {
            hold(HELD)?
        } else {
            Vec::new()
        };
        let n = listns_tests::wait_for(Duration::from_secs(120), || {
            listed(&socket).ok().filter(|&n| n >= HELD)
        });
        let Some(n) = n else {
            let _ = w.stop();
            bail!("the API never listed the {HELD} namespaces");
        };
        let (mut at, mut own, rows, bars) = rt.block_on(loads(port))?;
        w.stop()?;
        drop((early, late));
        println!(
            "{:<38} {n} UTS listed, {rows} tree rows, {bars} time-line bars: first render p50 {:.0} ms, max {:.0} ms from navigation start ({:.0} ms / {:.0} ms of it in the page's scripts)",
            if made_while_watching {
                "made while the watcher runs (traced):"
            } else {
                "made before the watcher (scanned):"
            },
            percentile(&mut at, 0.5),
            percentile(&mut at, 1.0),
            percentile(&mut own, 0.5),
            percentile(&mut own, 1.0),
        );
    }
    Ok(())
}
