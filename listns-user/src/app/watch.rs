use std::process::ExitCode;

use crate::cli::WatchArgs;

/// `listns watch`: scan, print, then trace live.
pub fn watch(_args: WatchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the tracer is not built yet")
}
