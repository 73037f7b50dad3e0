//! `GET /v1/events/stream`: Server-Sent Events. The kept events after
//! `since` first, then each event as the loop publishes it, and a comment
//! every [`KEEP_ALIVE`] so that proxies and clients see the stream alive.
//!
//! A client that cannot keep up is cut off, never waited for: the loop
//! broadcasts without blocking, and a stream that has fallen
//! [`STREAM_BACKLOG`](super::state::STREAM_BACKLOG) events behind (in the
//! broadcast, or in the frames its connection has not written) gets a last
//! `cut` event, is counted, and its connection is closed.

use std::{
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
    time::Duration,
};

use hyper::body::{Body, Bytes, Frame};
use tokio::sync::{Notify, broadcast::error::RecvError, mpsc};

use super::{Kept, Shared, state::STREAM_BACKLOG};
use crate::output::contract::ApiError;

pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a replay may wait for a client to take its frames.
const REPLAY_PATIENCE: Duration = Duration::from_secs(10);

/// The response body: frames the forwarder made, in order.
pub struct SseBody(mpsc::Receiver<Bytes>);

impl Body for SseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|f| f.map(|b| Ok(Frame::data(b))))
    }
}

/// One event as an SSE message: its cursor as the id, its kind as the
/// event name, its JSON (one line) as the data.
pub fn frame(k: &Kept) -> Bytes {
    let json = k.raw().get();
    let name = event_name(json).unwrap_or("message");
    Bytes::from(format!("id: {}\nevent: {name}\ndata: {json}\n\n", k.cursor))
}

/// The `event` key of a kept event (`{"cursor":N,"event":"created",...}`).
fn event_name(json: &str) -> Option<&str> {
    let rest = &json[json.find(r#""event":""#)? + 9..];
    Some(&rest[..rest.find('"')?])
}

/// Starts the stream: a task on the server's runtime forwards events into
/// the body. `cut` is notified when the client fell behind, so that the
/// connection is closed even while a write to it is stuck.
pub fn start(shared: Arc<Shared>, since: Option<u64>, cut: Arc<Notify>) -> SseBody {
    let (tx, rx) = mpsc::channel(STREAM_BACKLOG);
    tokio::spawn(async move {
        if let Err(why) = forward(&shared, since, &tx).await {
            shared.cut.fetch_add(1, Ordering::Relaxed);
            let e = ApiError {
                error: why,
                param: None,
                position: None,
            };
            let json = serde_json::to_string(&e).expect("an error serializes");
            let _ = tx.try_send(Bytes::from(format!("event: cut\ndata: {json}\n\n")));
            cut.notify_one();
        }
    });
    SseBody(rx)
}

/// Forwards until the client goes (`Ok`) or falls behind (`Err`: why).
async fn forward(
    shared: &Shared,
    since: Option<u64>,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), String> {
    let behind = || {
        format!(
            "this stream fell {STREAM_BACKLOG} events behind: cut off so that the watcher never waits for it \
             (resume with since=<the last id you read>)"
        )
    };
    let (mut live, upto) = shared.subscribe();
    let _ = tx
        .send(Bytes::from_static(b": listns event stream\n\n"))
        .await;
    if let Some(mut after) = since {
        // Replay what the ring kept, up to where the live stream starts.
        loop {
            let page = shared.replay(after, 1_000);
            if page.dropped > 0 {
                let note = format!(
                    ": {} events after {after} are no longer kept\n\n",
                    page.dropped
                );
                let _ = tx.send(Bytes::from(note)).await;
            }
            let mut more = false;
            for k in page.events.iter().filter(|k| k.cursor <= upto) {
                match tokio::time::timeout(REPLAY_PATIENCE, tx.send(frame(k))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Ok(()),
                    Err(_) => return Err(behind()),
                }
                after = k.cursor;
                more = true;
            }
            if !more || after >= upto {
                break;
            }
        }
    }
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.tick().await;
    loop {
        tokio::select! {
            r = live.recv() => match r {
                Ok(k) => {
                    if let Err(e) = tx.try_send(frame(&k)) {
                        return match e {
                            mpsc::error::TrySendError::Full(_) => Err(behind()),
                            mpsc::error::TrySendError::Closed(_) => Ok(()),
                        };
                    }
                }
                Err(RecvError::Lagged(_)) => return Err(behind()),
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = keep_alive.tick() => {
                if tx.try_send(Bytes::from_static(b": keep-alive\n\n")).is_err() && tx.is_closed() {
                    return Ok(());
                }
            }
            _ = tx.closed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_as_a_message() {
        let k = Kept::new(
            7,
            super::super::record::Record::Rescan(crate::output::contract::Rescan {
                time: crate::output::contract::Time(0),
                namespaces: 3,
                discovered: 1,
            }),
        );
        assert_eq!(
            std::str::from_utf8(&frame(&k)).unwrap(),
            "id: 7\nevent: rescan\ndata: {\"cursor\":7,\"event\":\"rescan\",\
             \"time\":\"1970-01-01T00:00:00.000000Z\",\"namespaces\":3,\"discovered\":1}\n\n"
        );
    }
}
