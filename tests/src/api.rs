//! A bare HTTP/1.1 client for the watcher's inventory API, over its unix
//! socket or TCP: the request is written by hand so that a test controls
//! every byte (a missing token, an oversized head, a client that stops
//! reading).

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

/// Where the API is.
#[derive(Clone, Debug)]
pub enum At<'a> {
    Unix(&'a Path),
    Tcp(u16),
}

pub trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn connect(at: &At<'_>) -> io::Result<Box<dyn Stream>> {
    Ok(match at {
        At::Unix(p) => {
            let s = UnixStream::connect(p)?;
            s.set_read_timeout(Some(crate::scaled(Duration::from_secs(10))))?;
            Box::new(s)
        }
        At::Tcp(port) => {
            let s = std::net::TcpStream::connect(("127.0.0.1", *port))?;
            s.set_read_timeout(Some(crate::scaled(Duration::from_secs(10))))?;
            Box::new(s)
        }
    })
}

/// The Host a browser would send: a tokenless TCP listener answers only
/// loopback names.
fn host(at: &At<'_>) -> String {
    match at {
        At::Unix(_) => "localhost".into(),
        At::Tcp(port) => format!("127.0.0.1:{port}"),
    }
}

/// An answer: status, head lines (lower-case names), body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` with `extra` head lines, the connection closed after.
pub fn get(at: &At<'_>, path: &str, extra: &[&str]) -> io::Result<Answer> {
    let mut s = connect(at)?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        host(at)
    );
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    read_answer(s)
}

/// Reads a whole answer up to the end of the connection.
pub fn read_answer(s: impl Read) -> io::Result<Answer> {
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r)?;
    let mut body = String::new();
    r.read_to_string(&mut body)?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn read_head(r: &mut impl BufRead) -> io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no status line: {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

/// The event stream, its head read: messages are read from it with
/// `next_event`.
pub struct Events {
    r: BufReader<Box<dyn Stream>>,
}

/// One message of the stream.
#[derive(Debug)]
pub struct Message {
    pub id: Option<u64>,
    pub event: String,
    pub data: serde_json::Value,
}

impl Events {
    pub fn open(at: &At<'_>, path: &str) -> io::Result<Events> {
        let mut s = connect(at)?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", host(at)).as_bytes())?;
        let mut r = BufReader::new(s);
        let (status, _) = read_head(&mut r)?;
        if status != 200 {
            return Err(io::Error::other(format!("the stream answered {status}")));
        }
        Ok(Events { r })
    }

    /// The next message (comments skipped); the body is chunked, so chunk
    /// size lines are skipped too.
    pub fn next_event(&mut self) -> io::Result<Message> {
        let (mut id, mut event, mut data) = (None, String::new(), None);
        let mut line = String::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = l.strip_prefix("id: ") {
                id = v.parse().ok();
            } else if let Some(v) = l.strip_prefix("event: ") {
                event = v.to_string();
            } else if let Some(v) = l.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).map_err(io::Error::other)?);
            } else if l.is_empty()
                && let Some(data) = data.take()
            {
                return Ok(Message { id, event, data });
            }
        }
    }
}
