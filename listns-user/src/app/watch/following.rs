//! The following half of `listns watch` (`-- COMMAND`, `--follow-pid PID`):
//! starting or attaching to the followed process, waiting for the fate of
//! its namespaces once it exited, and the summary.

use std::time::{Duration, Instant};

use super::{Watch, next_batch, sleep_until};
use crate::{
    app::follow::Followee,
    cli::WatchArgs,
    output::{events, fit, summary::Subject},
};

impl Watch {
    /// Runs the command, or attaches to `--follow-pid`, with the kernel following it.
    pub(super) fn follow(&mut self, args: &WatchArgs) -> anyhow::Result<Followee> {
        let tracer = self.tracer.as_mut().expect("following starts the tracer");
        let mut insert = |pid| tracer.follow(pid).map_err(anyhow::Error::from);
        let f = match args.follow_pid {
            Some(pid) => Followee::attach(pid, insert)?,
            None => Followee::spawn(&args.command, &mut insert)?,
        };
        fit::note(&format!("following pid {} and its descendants", f.pid));
        Ok(f)
    }

    /// After the followed process exited: keeps going until the fate of
    /// every namespace its tree touched is known (gone, hidden, or held by
    /// something), for at most `limit`.
    pub(super) async fn settle(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        // Its last exits are in the ring buffer already.
        if let Some(t) = self.tracer.as_mut() {
            let batch = t.drain_now();
            self.on_batch(batch)?;
        }
        // Records were lost and the rescan that makes up for them has not
        // run yet: run it now, or the summary would show the holders of
        // processes whose exits were lost (alive, held by a dead process).
        if self.loss_rescan.is_some() {
            self.on_loss_rescan()?;
        }
        let Some(followed) = &self.followed else {
            return Ok(());
        };
        self.lifecycle
            .check_soon(&followed.undecided(&self.inv), Instant::now());
        while self
            .followed
            .as_ref()
            .is_some_and(|f| !f.undecided(&self.inv).is_empty())
        {
            tokio::select! {
                batch = next_batch(&mut self.tracer) => self.on_batch(batch?)?,
                _ = sleep_until(self.lifecycle.next_due().map(tokio::time::Instant::from_std)) => self.on_lifecycle()?,
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        Ok(())
    }

    pub(super) fn summary(&mut self, subject: &Subject) -> anyhow::Result<()> {
        if let Some(f) = &self.followed {
            // The summary names what the filters let through.
            let shown = f.only(|k| self.print.type_ok(k.ty));
            self.out
                .summary(subject, &shown, &self.inv, events::now_ns())?;
        }
        self.out.flush()?;
        Ok(())
    }
}
