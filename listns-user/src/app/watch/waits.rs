//! What the watch loop waits on: each resolves when its source has
//! something, and never when there is no such source.

use super::Followee;
use crate::trace::{Batch, TraceError, Tracer};

/// The tracer's next batch; never, without a tracer.
pub(super) async fn next_batch(tracer: &mut Option<Tracer>) -> Result<Batch, TraceError> {
    match tracer {
        Some(t) => t.next_batch().await,
        None => std::future::pending().await,
    }
}

/// When the followed process exits; never, when nothing is followed.
pub(super) async fn exited(f: Option<&Followee>) -> std::io::Result<()> {
    match f {
        Some(f) => f.exited().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`; forever without one.
pub(super) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
