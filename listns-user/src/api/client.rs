//! The client side of the inventory API, for `listns --from` and `listns
//! watch --from`: HTTP/1.1 GET over the watcher's unix socket or over TCP
//! (`http://HOST:PORT`, no TLS), with a bearer token where one is given.
//! Every failure says what happened and what to do about it.

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
    time::Duration,
};

use http_body_util::{BodyExt, Empty, Limited};
use hyper::{
    Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::output::{contract::ApiError, sanitize::escape};

/// The largest answer accepted (a 10,000-process inventory is a few MiB).
pub const MAX_RESPONSE: usize = 256 << 20;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole answer may take (the stream: until its headers).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The watcher writes a keep-alive comment every 15 s: a stream silent
/// for this long has been lost.
const STREAM_SILENCE: Duration = Duration::from_secs(60);
/// The longest line of an event stream accepted.
const MAX_SSE_LINE: usize = 16 << 20;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no watcher serves {0}: start one with `listns watch`")]
    NoWatcher(String),
    #[error(
        "{0}: permission denied: the API socket is for root, or for the group a watcher grants with `--api-group`"
    )]
    Denied(String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("{0}: no answer within {1} s")]
    Timeout(String, u64),
    #[error("{0}: the watcher wants a bearer token: pass a file holding it with --token-file")]
    NoToken(String),
    #[error("{0}: the watcher refused the token (401): check the file given with --token-file")]
    BadToken(String),
    #[error("{0}: {1} ({2})")]
    Status(String, String, StatusCode),
    #[error("{0}: the answer is larger than {1} bytes")]
    TooLarge(String, usize),
    #[error("{0}: {1}")]
    Http(String, String),
    #[error("--from {0:?}: {1}")]
    BadTarget(String, String),
    #[error("--token-file {0}: {1}")]
    Token(PathBuf, String),
}

/// Where the watcher is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Its unix socket.
    Unix(PathBuf),
    /// `http://HOST:PORT[/PREFIX]`.
    Tcp {
        host: String,
        port: u16,
        /// Prepended to every path (a reverse proxy's), without a trailing `/`.
        prefix: String,
    },
}

impl Target {
    /// `http://HOST:PORT` (an optional path is kept as a prefix), or else
    /// the path of a unix socket.
    pub fn parse(from: &str) -> Result<Target, ClientError> {
        let bad = |why: &str| ClientError::BadTarget(from.into(), why.into());
        if from.starts_with("https://") {
            return Err(bad(
                "TLS is not supported: reach the watcher through an SSH tunnel, or over its unix socket",
            ));
        }
        let Some(rest) = from.strip_prefix("http://") else {
            if from.is_empty() {
                return Err(bad("give a socket path or http://HOST:PORT"));
            }
            return Ok(Target::Unix(from.into()));
        };
        let uri: hyper::Uri = from.parse().map_err(|e| bad(&format!("{e}")))?;
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let port = uri
            .port_u16()
            .ok_or_else(|| bad("give the port: http://HOST:PORT"))?;
        if rest.contains('@') || uri.query().is_some() {
            return Err(bad("only http://HOST:PORT[/PATH]"));
        }
        Ok(Target::Tcp {
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
            port,
            prefix: uri.path().trim_end_matches('/').into(),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "{}", p.display()),
            Target::Tcp { host, port, prefix } if host.contains(':') => {
                write!(f, "http://[{host}]:{port}{prefix}")
            }
            Target::Tcp { host, port, prefix } => write!(f, "http://{host}:{port}{prefix}"),
        }
    }
}

/// A watcher to ask.
#[derive(Clone, Debug)]
pub struct Client {
    target: Target,
    token: Option<String>,
}

impl Client {
    /// The watcher at `from` (see [`Target::parse`]), with the bearer token
    /// in `token_file` (surrounding whitespace trimmed).
    pub fn new(from: &str, token_file: Option<&Path>) -> Result<Client, ClientError> {
        let target = Target::parse(from)?;
        let token = match token_file {
            None => None,
            Some(path) => {
                let bad = |why: String| ClientError::Token(path.into(), why);
                let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(bad("the file is empty".into()));
                }
                if !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(bad("a token is one word of printable ASCII".into()));
                }
                Some(token.to_string())
            }
        };
        Ok(Client { target, token })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// `GET path` (with its query): the body of a 200 answer, at most
    /// [`MAX_RESPONSE`] bytes.
    pub async fn get(&self, path: &str) -> Result<Bytes, ClientError> {
        self.get_at_most(path, MAX_RESPONSE).await
    }

    /// `get` with another bound on the answer's size.
    async fn get_at_most(&self, path: &str, limit: usize) -> Result<Bytes, ClientError> {
        let what = self.what(path);
        let fetch = async {
            let resp = self.request(path).await?;
            let body = Limited::new(resp.into_body(), limit);
            match body.collect().await {
                Ok(b) => Ok(b.to_bytes()),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    Err(ClientError::TooLarge(what.clone(), limit))
                }
                Err(e) => Err(ClientError::Http(what.clone(), e.to_string())),
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fetch)
            .await
            .map_err(|_| ClientError::Timeout(what.clone(), REQUEST_TIMEOUT.as_secs()))?
    }

    /// `GET path` of an event stream: its events as they come.
    pub async fn stream(&self, path: &str) -> Result<EventStream, ClientError> {
        let what = self.what(path);
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.request(path))
            .await
            .map_err(|_| ClientError::Timeout(what.clone(), REQUEST_TIMEOUT.as_secs()))??;
        Ok(EventStream {
            what,
            body: resp.into_body(),
            parser: SseParser::default(),
        })
    }

    /// What a request is about, for messages: `TARGET PATH`.
    fn what(&self, path: &str) -> String {
        format!("{} {path}", self.target)
    }

    /// Sends `GET path` and returns a 200 answer; any other status is an
    /// error that says why (the watcher's `ApiError`).
    async fn request(&self, path: &str) -> Result<Response<Incoming>, ClientError> {
        let what = self.what(path);
        let (host, full_path) = match &self.target {
            Target::Unix(_) => ("localhost".to_string(), path.to_string()),
            Target::Tcp { host, port, prefix } if host.contains(':') => {
                (format!("[{host}]:{port}"), format!("{prefix}{path}"))
            }
            Target::Tcp { host, port, prefix } => {
                (format!("{host}:{port}"), format!("{prefix}{path}"))
            }
        };
        let mut req = Request::get(full_path).header(header::HOST, host).header(
            header::USER_AGENT,
            concat!("listns/", env!("CARGO_PKG_VERSION")),
        );
        if let Some(t) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| ClientError::Http(what.clone(), e.to_string()))?;
        let resp = match &self.target {
            Target::Unix(path) => {
                let shown = path.display().to_string();
                let io = connect(&shown, tokio::net::UnixStream::connect(path)).await?;
                send(io, req).await
            }
            Target::Tcp { host, port, .. } => {
                let shown = self.target.to_string();
                let io = connect(
                    &shown,
                    tokio::net::TcpStream::connect((host.as_str(), *port)),
                )
                .await?;
                send(io, req).await
            }
        }
        .map_err(|e| ClientError::Http(what.clone(), e.to_string()))?;
        match resp.status() {
            StatusCode::OK => Ok(resp),
            StatusCode::UNAUTHORIZED if self.token.is_none() => Err(ClientError::NoToken(what)),
            StatusCode::UNAUTHORIZED => Err(ClientError::BadToken(what)),
            status => {
                let body = Limited::new(resp.into_body(), 64 << 10)
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Err(ClientError::Status(what, error_text(&body), status))
            }
        }
    }
}

/// Connects, within [`CONNECT_TIMEOUT`], saying what a failure means.
async fn connect<S>(
    shown: &str,
    connecting: impl Future<Output = std::io::Result<S>>,
) -> Result<S, ClientError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => Err(ClientError::Timeout(
            shown.into(),
            CONNECT_TIMEOUT.as_secs(),
        )),
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(match e.kind() {
            // A socket file left behind by a watcher that died refuses.
            ErrorKind::NotFound | ErrorKind::ConnectionRefused if !shown.starts_with("http://") => {
                ClientError::NoWatcher(shown.into())
            }
            ErrorKind::PermissionDenied => ClientError::Denied(shown.into()),
            _ => ClientError::Connect(shown.into(), e),
        }),
    }
}

/// One HTTP/1.1 exchange on a fresh connection.
async fn send<IO>(io: IO, req: Request<Empty<Bytes>>) -> hyper::Result<Response<Incoming>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        // Its error, if any, is the response's.
        let _ = conn.await;
    });
    sender.send_request(req).await
}

/// What an error answer says: its `ApiError`'s text (with the parameter
/// and position it names), or the start of whatever else it is.
fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => {
            let mut text = escape(&e.error).into_owned();
            match (e.param, e.position) {
                (Some(p), Some(at)) => text.push_str(&format!(" (in {}, at {at})", escape(&p))),
                (Some(p), None) => text.push_str(&format!(" (in {})", escape(&p))),
                (None, Some(at)) => text.push_str(&format!(" (at {at})")),
                (None, None) => {}
            }
            text
        }
        Err(_) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            match text.trim() {
                "" => "the watcher gave no reason".into(),
                t => escape(t).into_owned(),
            }
        }
    }
}

/// An event of a Server-Sent Events stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `id:` (the watcher's cursor).
    pub id: Option<String>,
    /// `event:` (`created`, `gone`, ..., `cut`).
    pub event: Option<String>,
    /// `data:` lines, joined by newlines.
    pub data: String,
}

/// An open event stream.
pub struct EventStream {
    what: String,
    body: Incoming,
    parser: SseParser,
}

impl EventStream {
    /// The next event; `None` when the watcher ended the stream. A stream
    /// silent for longer than keep-alives allow is an error.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, ClientError> {
        loop {
            if let Some(ev) = self.parser.next_event() {
                return Ok(Some(ev));
            }
            let frame = tokio::time::timeout(STREAM_SILENCE, self.body.frame())
                .await
                .map_err(|_| ClientError::Timeout(self.what.clone(), STREAM_SILENCE.as_secs()))?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(ClientError::Http(self.what.clone(), e.to_string())),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.parser
                            .feed(&data)
                            .map_err(|e| ClientError::Http(self.what.clone(), e))?;
                    }
                }
            }
        }
    }
}

/// Server-Sent Events from bytes (the WHATWG format): `field: value`
/// lines, ended by LF, CRLF or CR; a blank line ends an event; lines that
/// start with `:` are comments (keep-alives).
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The last byte fed was a CR (a following LF belongs to it).
    after_cr: bool,
    current: SseEvent,
    has_data: bool,
    ready: std::collections::VecDeque<SseEvent>,
}

impl SseParser {
    /// Takes in bytes as they come; a line longer than the bound is an error.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    self.line(&line);
                }
                _ => {
                    if self.line.len() >= MAX_SSE_LINE {
                        return Err(format!("an event line longer than {MAX_SSE_LINE} bytes"));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    /// The next complete event.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    fn line(&mut self, line: &[u8]) {
        if line.is_empty() {
            // An event without data is not dispatched (the WHATWG rule).
            let ev = std::mem::take(&mut self.current);
            if std::mem::take(&mut self.has_data) {
                self.ready.push_back(ev);
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.current.event = Some(value.into()),
            "id" => self.current.id = Some(value.into()),
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
