//! The HTTP endpoints: `/metrics` (Prometheus text format) and `/healthz`.
//! hyper on a current-thread tokio runtime of its own thread.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes, header, service::service_fn};
use hyper_util::rt::TokioIo;

use super::{Health, Metrics};

/// Binds `addr` now (so that a port in use is an error at start-up) and
/// serves from a thread of its own until the process exits.
pub fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    std::thread::Builder::new()
        .name("listns-http".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("listns: metrics server cannot start: {e}");
                    return;
                }
            };
            rt.block_on(accept_loop(std_listener, metrics, health));
        })?;
    Ok(local)
}

async fn accept_loop(listener: std::net::TcpListener, metrics: Arc<Metrics>, health: Arc<Health>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("listns: metrics server cannot listen: {e}");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, health) = (metrics.clone(), health.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let (metrics, health) = (metrics.clone(), health.clone());
                async move { Ok::<_, Infallible>(respond(&req, &metrics, &health)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond<B>(req: &Request<B>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    let text = |status, content_type, body: String| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    // A probe: 200 "ok", or 503 and what is wrong.
    let probe = |problem: Option<String>| match problem {
        None => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
        Some(why) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            format!("{why}\n"),
        ),
    };
    match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        // Everything that makes the picture incomplete: for readiness and
        // alerts.
        "/healthz" => probe(health.problem()),
        // Only what a restart can cure (a stalled loop): for liveness
        // probes, so that a node without some hook is not restarted forever.
        "/livez" => probe(health.stalled()),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "listns serves /metrics, /healthz and /livez\n".into(),
        ),
    }
}
