use std::process::ExitCode;

use crate::cli::ListArgs;

/// `listns [OPTIONS]`: scan and print the inventory.
pub fn list(_args: ListArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the scan is not built yet")
}
