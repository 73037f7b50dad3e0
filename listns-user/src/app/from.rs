//! `listns --from`: the inventory of a running watcher instead of a scan,
//! rendered by the same code; and the hint that points at it.

use std::path::Path;

use anyhow::Context;

use crate::{
    api::{
        DEFAULT_SOCKET,
        client::{Client, Target},
    },
    inventory::Inventory,
    output::contract::InventoryDocument,
    scan::{Details, Scanner},
    stats::ScanStats,
};

/// The watcher's inventory (`GET /v1/inventory`) and its last scan's counts.
///
/// A scan for the classic view or a positional namespace reads every
/// process's command line (`Details::All`); the watcher reads them only
/// for the processes its views show, and those the tracer saw. Where the
/// watcher is on this host (its unix socket), the missing ones are read
/// here from /proc now; over TCP the rows of other processes show what the
/// watcher knows (their comm at least, where it read their stat).
pub fn inventory(
    from: &str,
    token_file: Option<&Path>,
    details: Details,
    proc_root: &Path,
) -> anyhow::Result<(Inventory, ScanStats)> {
    let client = Client::new(from, token_file)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(fetch(&client, details, proc_root))
}

/// [`inventory`] from a client, in a runtime that runs already.
pub async fn fetch(
    client: &Client,
    details: Details,
    proc_root: &Path,
) -> anyhow::Result<(Inventory, ScanStats)> {
    let body = client.get("/v1/inventory").await?;
    let doc: InventoryDocument = serde_json::from_slice(&body)
        .with_context(|| format!("{} /v1/inventory: not an inventory", client.target()))?;
    let (mut inv, stats) = doc.into_inventory()?;
    if details == Details::All && matches!(client.target(), Target::Unix(_)) {
        Scanner::new(proc_root)
            .details(details)
            .read_details(&mut inv)?;
    }
    Ok((inv, stats))
}

/// One stderr line when a watcher serves the default socket and `--from`
/// was not given: it knows what a scan cannot.
pub fn hint() {
    // Answering, not only there: a watcher killed outright leaves its
    // socket file behind.
    if std::os::unix::net::UnixStream::connect(DEFAULT_SOCKET).is_ok() {
        crate::output::fit::note(&format!(
            "a watcher serves {DEFAULT_SOCKET}: `listns --from` also shows what only it knows \
             (hidden namespaces, who created each one, those gone)"
        ));
    }
}
