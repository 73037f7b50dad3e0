//! The client: where `--from` points, the event-stream format from bytes,
//! and real exchanges with a small HTTP server on a unix socket.

use std::convert::Infallible;

use http_body_util::Full;
use hyper::service::service_fn;

use super::*;

#[test]
fn from_is_a_socket_path_or_an_http_url() {
    assert_eq!(
        Target::parse("/run/listns/api.sock").unwrap(),
        Target::Unix("/run/listns/api.sock".into())
    );
    assert_eq!(
        Target::parse("api.sock").unwrap(),
        Target::Unix("api.sock".into())
    );
    assert_eq!(
        Target::parse("http://10.0.0.5:7878").unwrap(),
        Target::Tcp {
            host: "10.0.0.5".into(),
            port: 7878,
            prefix: String::new()
        }
    );
    let v6 = Target::parse("http://[::1]:7878/listns/").unwrap();
    assert_eq!(
        v6,
        Target::Tcp {
            host: "::1".into(),
            port: 7878,
            prefix: "/listns".into()
        }
    );
    assert_eq!(v6.to_string(), "http://[::1]:7878/listns");
    for (bad, why) in [
        ("https://host:1", "TLS is not supported"),
        ("http://host", "give the port"),
        ("http://user@host:1", "only http://HOST:PORT"),
        ("", "give a socket path"),
    ] {
        let e = Target::parse(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

fn parse(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut p = SseParser::default();
    let mut out = Vec::new();
    for c in chunks {
        p.feed(c).unwrap();
        while let Some(ev) = p.next_event() {
            out.push(ev);
        }
    }
    out
}

fn ev(id: &str, event: &str, data: &str) -> SseEvent {
    SseEvent {
        id: Some(id.into()),
        event: Some(event.into()),
        data: data.into(),
    }
}

#[test]
fn server_sent_events_from_bytes() {
    let stream = b"id: 7\nevent: created\ndata: {\"cursor\":7}\n\n: keep-alive\n\nid: 8\r\nevent: gone\r\ndata: {\"a\":\r\ndata:1}\r\n\r\n";
    let want = vec![
        ev("7", "created", "{\"cursor\":7}"),
        ev("8", "gone", "{\"a\":\n1}"),
    ];
    assert_eq!(parse(&[stream]), want);
    // The same bytes cut anywhere, even between CR and LF, give the same.
    for cut in 1..stream.len() {
        let (a, b) = stream.split_at(cut);
        assert_eq!(parse(&[a, b]), want, "cut at {cut}");
    }
    // One byte at a time, and lone CRs as line ends.
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(parse(&bytes), want);
    assert_eq!(
        parse(&[b"event: cut\rdata: {\"error\": \"too slow\"}\r\r"]),
        vec![SseEvent {
            id: None,
            event: Some("cut".into()),
            data: "{\"error\": \"too slow\"}".into()
        }]
    );
    // No data, no event; an unfinished event waits.
    assert_eq!(parse(&[b"event: x\n\nid: 9\ndata: y\n"]), vec![]);
    let mut p = SseParser::default();
    let long = vec![b'x'; MAX_SSE_LINE + 1];
    assert!(p.feed(&long).unwrap_err().contains("longer than"));
}

#[test]
fn error_answers_say_why() {
    let body = br#"{"error": "unknown type 'nett'", "param": "type"}"#;
    assert_eq!(error_text(body), "unknown type 'nett' (in type)");
    let body = br#"{"error": "bad filter", "param": "filter", "position": 4}"#;
    assert_eq!(error_text(body), "bad filter (in filter, at 4)");
    assert_eq!(error_text(b"not json\x1b[2J"), "not json\\x1b[2J");
    assert_eq!(error_text(b""), "the watcher gave no reason");
}

/// A server on a unix socket in a temporary directory that answers:
/// `/ok` 200 "hello"; `/bad` 400 with an ApiError; `/secret` 401 unless
/// the bearer token is "s3cret"; `/stream` two events, then the end.
async fn server(dir: &Path) -> PathBuf {
    let path = dir.join("api.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let reply = |status: u16, body: &'static [u8]| {
                        Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from(body)))
                            .unwrap()
                    };
                    let auth = req.headers().get(header::AUTHORIZATION).cloned();
                    let ok_auth = auth.as_ref().is_some_and(|a| a == "Bearer s3cret");
                    Ok::<_, Infallible>(match req.uri().path() {
                        "/ok" => reply(200, b"hello"),
                        "/bad" => reply(400, br#"{"error":"unknown type 'nett'","param":"type"}"#),
                        "/secret" if ok_auth => reply(200, b"in"),
                        "/secret" => reply(401, br#"{"error":"a bearer token is needed"}"#),
                        "/stream" => reply(
                            200,
                            b": keep-alive\n\nid: 1\nevent: created\ndata: {\"cursor\":1}\n\n\
                              id: 2\nevent: gone\ndata: {\"cursor\":2}\n\n",
                        ),
                        _ => reply(404, br#"{"error":"no such path"}"#),
                    })
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), service)
                    .await;
            });
        }
    });
    path
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn exchanges_with_a_server_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let path = server(dir.path()).await;
        let from = path.to_str().unwrap();
        let c = Client::new(from, None).unwrap();
        assert_eq!(&c.get("/ok").await.unwrap()[..], b"hello");
        let e = c.get_at_most("/ok", 3).await.unwrap_err().to_string();
        assert!(e.ends_with("/ok: the answer is larger than 3 bytes"), "{e}");
        let e = c.get("/bad?type=nett").await.unwrap_err().to_string();
        assert_eq!(
            e,
            format!("{from} /bad?type=nett: unknown type 'nett' (in type) (400 Bad Request)")
        );
        let e = c.get("/secret").await.unwrap_err().to_string();
        assert!(e.contains("the watcher wants a bearer token"), "{e}");

        let token = dir.path().join("token");
        std::fs::write(&token, "  s3cret\n").unwrap();
        let c = Client::new(from, Some(&token)).unwrap();
        assert_eq!(&c.get("/secret").await.unwrap()[..], b"in");
        std::fs::write(&token, "wrong").unwrap();
        let c = Client::new(from, Some(&token)).unwrap();
        let e = c.get("/secret").await.unwrap_err().to_string();
        assert!(e.contains("refused the token"), "{e}");

        let c = Client::new(from, None).unwrap();
        let mut s = c.stream("/stream").await.unwrap();
        let a = s.next().await.unwrap().unwrap();
        let b = s.next().await.unwrap().unwrap();
        assert_eq!(
            (a.id.as_deref(), a.data.as_str()),
            (Some("1"), "{\"cursor\":1}")
        );
        assert_eq!(
            (b.event.as_deref(), b.data.as_str()),
            (Some("gone"), "{\"cursor\":2}")
        );
        assert_eq!(s.next().await.unwrap(), None, "the stream ended");

        let gone = dir.path().join("nothing.sock");
        let e = Client::new(gone.to_str().unwrap(), None)
            .unwrap()
            .get("/ok")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "no watcher serves {}: start one with `listns watch`",
                gone.display()
            )
        );
    });
}

#[test]
fn token_files_are_read_with_care() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t");
    std::fs::write(&f, " \n").unwrap();
    let e = Client::new("http://127.0.0.1:1", Some(&f))
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("the file is empty"), "{e}");
    std::fs::write(&f, "two words").unwrap();
    let e = Client::new("http://127.0.0.1:1", Some(&f))
        .unwrap_err()
        .to_string();
    assert!(e.contains("one word of printable ASCII"), "{e}");
    let e = Client::new("http://127.0.0.1:1", Some(&dir.path().join("none")))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--token-file "), "{e}");
}
