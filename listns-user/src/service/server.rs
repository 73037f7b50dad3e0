//! The HTTP server: `/metrics` (Prometheus text format), `/healthz`,
//! `/livez`, and where the inventory API is served, `/v1/...`. hyper on a
//! current-thread tokio runtime of its own thread, one task per
//! connection, so that it answers while the watch loop is busy or stuck.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] at once (more are closed at
//! accept and counted), request heads of at most [`MAX_HEAD`] bytes
//! (hyper answers 431 past it), [`HEAD_TIMEOUT`] to send one, and a write
//! that makes no progress for [`WRITE_STALL`] ends the connection.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{Method, Request, Response, StatusCode, body::Bytes, header, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{Notify, Semaphore},
};
use tokio_io_timeout::TimeoutStream;

use super::{Health, Metrics};
use crate::api::{self, Shared, routes::Reply};

pub const MAX_CONNECTIONS: usize = 512;
pub const MAX_HEAD: usize = 16 * 1024;
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
pub const WRITE_STALL: Duration = Duration::from_secs(10);

type Body = BoxBody<Bytes, Infallible>;

/// What a listener serves.
#[derive(Clone)]
pub enum Access {
    /// `--metrics`: metrics and health only.
    Metrics,
    /// The API (and metrics and health); over TCP beyond loopback, only
    /// to requests that carry this bearer token.
    Api { token: Option<Arc<str>> },
}

pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// What every connection answers from.
pub struct Routes {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub api: Option<Arc<Shared>>,
}

/// Serves `listeners` (bound already, so that a port in use is an error
/// at start-up) from a thread of its own until the process exits.
pub fn serve(listeners: Vec<(Listener, Access)>, routes: Routes) -> std::io::Result<()> {
    for (l, _) in &listeners {
        match l {
            Listener::Tcp(l) => l.set_nonblocking(true)?,
            Listener::Unix(l) => l.set_nonblocking(true)?,
        }
    }
    let routes = Arc::new(routes);
    std::thread::Builder::new()
        .name("listns-http".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("listns: the HTTP server cannot start: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
                let mut tasks = tokio::task::JoinSet::new();
                for (l, access) in listeners {
                    let (routes, slots) = (routes.clone(), slots.clone());
                    tasks.spawn(accept_loop(l, access, routes, slots));
                }
                while tasks.join_next().await.is_some() {}
            });
        })?;
    Ok(())
}

async fn accept_loop(l: Listener, access: Access, routes: Arc<Routes>, slots: Arc<Semaphore>) {
    match l {
        Listener::Tcp(l) => match tokio::net::TcpListener::from_std(l) {
            Ok(l) => loop {
                if let Ok((s, _)) = l.accept().await {
                    // Tokenless API over TCP: loopback Hosts only (DNS rebinding).
                    let host_check = matches!(access, Access::Api { token: None });
                    connection(s, &access, &routes, &slots, host_check);
                }
            },
            Err(e) => eprintln!("listns: the HTTP server cannot listen: {e}"),
        },
        Listener::Unix(l) => match tokio::net::UnixListener::from_std(l) {
            Ok(l) => loop {
                if let Ok((s, _)) = l.accept().await {
                    connection(s, &access, &routes, &slots, false);
                }
            },
            Err(e) => eprintln!("listns: the API socket cannot listen: {e}"),
        },
    }
}

/// Serves one connection on a task of its own; with `host_check`, only
/// requests whose Host is a loopback name.
fn connection<S>(
    stream: S,
    access: &Access,
    routes: &Arc<Routes>,
    slots: &Arc<Semaphore>,
    host_check: bool,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Ok(slot) = slots.clone().try_acquire_owned() else {
        routes.metrics.api_refused.inc();
        return; // dropped: closed
    };
    let mut stream = TimeoutStream::new(stream);
    stream.set_write_timeout(Some(WRITE_STALL));
    let (access, routes) = (access.clone(), routes.clone());
    // Notified when a stream on this connection is cut off.
    let cut = Arc::new(Notify::new());
    let cut_metric = routes.metrics.api_cut.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let service = {
            let cut = cut.clone();
            service_fn(move |req| {
                let (access, routes, cut) = (access.clone(), routes.clone(), cut.clone());
                async move {
                    if host_check
                        && !api::web::loopback_host(
                            req.headers().get(header::HOST).map(|h| h.as_bytes()),
                        )
                    {
                        return Ok::<_, Infallible>(misdirected(&routes, &req));
                    }
                    Ok::<_, Infallible>(respond(&req, &access, &routes, cut).await)
                }
            })
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .max_buf_size(MAX_HEAD)
            .serve_connection(TokioIo::new(Box::pin(stream)), service);
        tokio::select! {
            r = conn => {
                // A write that made no progress for WRITE_STALL: a client
                // that cannot keep up, cut off like a stream that fell behind.
                if r.as_ref().is_err_and(timed_out) {
                    cut_metric.inc();
                }
            }
            _ = cut.notified() => {}
        }
    });
}

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()).boxed())
        .expect("a valid response")
}

fn json(reply: Reply) -> Response<Body> {
    json_bytes(reply.status, reply.body.into())
}

fn json_bytes(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut r = full(status, "application/json", body);
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

const TEXT: &str = "text/plain; charset=utf-8";

/// 421 for a request to a tokenless TCP listener that names another host.
fn misdirected<B>(routes: &Routes, req: &Request<B>) -> Response<Body> {
    let r = json(Reply::error(
        StatusCode::MISDIRECTED_REQUEST,
        "this listener has no token and answers only requests addressed to localhost, 127.0.0.1 \
         or [::1] (the Host header): open http://127.0.0.1:PORT/, or give --api-token-file to \
         serve other names",
        None,
    ));
    routes
        .metrics
        .api_request(endpoint(req.uri().path()), r.status().as_u16());
    r
}

/// An embedded file of the web page, with its security headers.
fn page(asset: api::web::Asset) -> Response<Body> {
    let mut r = full(StatusCode::OK, asset.content_type, asset.body);
    for (name, value) in api::web::HEADERS {
        r.headers_mut()
            .insert(name, header::HeaderValue::from_static(value));
    }
    r
}

async fn respond<B>(
    req: &Request<B>,
    access: &Access,
    routes: &Routes,
    cut: Arc<Notify>,
) -> Response<Body> {
    let path = req.uri().path();
    let endpoint = endpoint(path);
    let r = answer(req, path, access, routes, cut).await;
    routes.metrics.api_request(endpoint, r.status().as_u16());
    r
}

/// The endpoint a path is, as a bounded metric label.
fn endpoint(path: &str) -> &'static str {
    match path {
        "/metrics" => "metrics",
        "/healthz" => "healthz",
        "/livez" => "livez",
        "/v1/namespaces" => "namespaces",
        "/v1/gone" => "gone",
        "/v1/events" => "events",
        "/v1/events/stream" => "stream",
        "/v1/inventory" => "inventory",
        "/v1/openapi.json" => "openapi",
        p if api::web::asset(p).is_some() => "page",
        p if p.starts_with("/v1/namespaces/") => "namespace",
        _ => "other",
    }
}

async fn answer<B>(
    req: &Request<B>,
    path: &str,
    access: &Access,
    routes: &Routes,
    cut: Arc<Notify>,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = json(Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not served: every endpoint is GET", req.method()),
            None,
        ));
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    // A probe: 200 "ok", or 503 and what is wrong.
    let probe = |problem: Option<String>| match problem {
        None => full(StatusCode::OK, TEXT, "ok\n"),
        Some(why) => full(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
    };
    match path {
        "/metrics" => {
            return full(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                routes.metrics.encode(),
            );
        }
        // Everything that makes the picture incomplete: for readiness and
        // alerts.
        "/healthz" => return probe(routes.health.problem()),
        // Only what a restart can cure (a stalled loop): for liveness
        // probes, so that a node without some hook is not restarted forever.
        "/livez" => return probe(routes.health.stalled()),
        _ => {}
    }
    let (Access::Api { token }, Some(shared)) = (access, &routes.api) else {
        return full(
            StatusCode::NOT_FOUND,
            TEXT,
            "listns serves /metrics, /healthz and /livez here; the inventory API (/v1) is on \
             its unix socket, or on TCP with --api\n",
        );
    };
    // The page's files are public; what it shows comes from /v1.
    if let Some(asset) = api::web::asset(path) {
        return page(asset);
    }
    if let Some(token) = token
        && !authorized(req, token)
    {
        return json(Reply::error(
            StatusCode::UNAUTHORIZED,
            "this address needs a bearer token: send `Authorization: Bearer <token>` \
             (listns --from URL --token-file FILE)",
            None,
        ));
    }
    if let Some(starting) = routes.health.starting() {
        return json(Reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            starting,
            None,
        ));
    }
    v1(req, path, shared, cut).await
}

async fn v1<B>(
    req: &Request<B>,
    path: &str,
    shared: &Arc<Shared>,
    cut: Arc<Notify>,
) -> Response<Body> {
    use api::routes::{self as r, Params};
    let query = req.uri().query();
    let params = |known: &[&str]| Params::parse(query, known);
    let reply = match path {
        "/v1/namespaces" => match params(&["type", "filter", "tree", "pid", "columns"]) {
            Ok(p) => {
                let snap = shared.snapshot().await;
                return once_per_snapshot(shared, &snap, req, || {
                    r::namespaces(&snap.inv, &snap.stats, &p)
                });
            }
            Err(e) => e,
        },
        "/v1/gone" => match params(&["since"]) {
            Ok(p) => r::gone(shared, &p),
            Err(e) => e,
        },
        "/v1/events" => match params(&["since", "limit"]) {
            Ok(p) => r::events(shared, &p),
            Err(e) => e,
        },
        "/v1/events/stream" => return stream(shared, query, cut),
        "/v1/inventory" => match params(&[]) {
            Ok(_) => {
                let snap = shared.snapshot().await;
                return once_per_snapshot(shared, &snap, req, || {
                    r::inventory(&shared.whole(&snap), &snap.stats)
                });
            }
            Err(e) => e,
        },
        "/v1/openapi.json" => match params(&[]) {
            Ok(_) => {
                static DOC: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
                let doc = DOC.get_or_init(|| {
                    serde_json::to_vec(&api::openapi::document()).expect("the document serializes")
                });
                return full(StatusCode::OK, "application/json", doc.clone());
            }
            Err(e) => e,
        },
        p => match p.strip_prefix("/v1/namespaces/") {
            Some(id) if !id.is_empty() && !id.contains('/') => match params(&[]) {
                Ok(_) => {
                    let snap = shared.snapshot().await;
                    r::detail(shared, &shared.whole(&snap), id)
                }
                Err(e) => e,
            },
            _ => Reply::error(
                StatusCode::NOT_FOUND,
                format!(
                    "no endpoint {p}: the API has /v1/namespaces, /v1/namespaces/{{id}}, \
                     /v1/gone, /v1/events, /v1/events/stream, /v1/inventory, /v1/openapi.json"
                ),
                None,
            ),
        },
    };
    json(reply)
}

/// A JSON answer rendered once per snapshot and request, however many
/// clients ask.
fn once_per_snapshot<B>(
    shared: &Shared,
    snap: &api::Snapshot,
    req: &Request<B>,
    render: impl FnOnce() -> Reply,
) -> Response<Body> {
    let request = req.uri().path_and_query().map_or("", |p| p.as_str());
    let (status, body) = shared.rendered(snap, request, || {
        let r = render();
        (r.status, Bytes::from(r.body))
    });
    json_bytes(status, body)
}

fn stream(shared: &Arc<Shared>, query: Option<&str>, cut: Arc<Notify>) -> Response<Body> {
    use api::routes::{Params, check_cursor};
    let since = match Params::parse(query, &["since"]).and_then(|p| {
        let since = p.number("since")?;
        if let Some(s) = since {
            check_cursor(shared, s)?;
        }
        Ok(since)
    }) {
        Ok(s) => s,
        Err(e) => return json(e),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-store")
        .body(api::stream::start(shared.clone(), since, cut).boxed())
        .expect("a valid response")
}

/// Whether the request carries `Authorization: Bearer <token>`, compared
/// in constant time.
fn authorized<B>(req: &Request<B>, token: &str) -> bool {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    else {
        return false;
    };
    let want = token.as_bytes();
    given.len() == want.len() && given.iter().zip(want).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

/// Whether a connection ended because a write timed out.
fn timed_out(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Where a TCP listener needs a token: anywhere but loopback.
pub fn needs_token(addr: SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// Streams cut off since the last call, for the metric.
pub fn streams_cut(shared: &Shared) -> u64 {
    shared.cut.swap(0, Ordering::Relaxed)
}
