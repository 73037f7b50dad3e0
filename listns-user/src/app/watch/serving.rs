//! What `listns watch` serves over HTTP: `--metrics`, and the inventory
//! API on its unix socket and on `--api`.

use anyhow::Context;

use crate::{
    api::Publisher,
    cli::WatchArgs,
    service::{Serving, Telemetry},
};

/// Starts the HTTP server: `--metrics`, and the inventory API on its unix
/// socket (unless `--no-api`) and on `--api`.
pub(super) fn serve(args: &WatchArgs) -> anyhow::Result<Option<Telemetry>> {
    let token = match &args.api_token_file {
        Some(f) => {
            let t = std::fs::read_to_string(f)
                .with_context(|| format!("--api-token-file {}", f.display()))?;
            let t = t.trim().to_string();
            anyhow::ensure!(
                t.len() >= 16 && !t.contains(char::is_whitespace),
                "--api-token-file {}: the token must be one word of at least 16 characters",
                f.display()
            );
            Some(t)
        }
        None => None,
    };
    let default_socket = args.api_socket.as_os_str() == crate::api::DEFAULT_SOCKET;
    // A followed command is a short look at one tree: it serves the API
    // only where it is asked to.
    let following = args.following();
    let serving = Serving {
        metrics: args.metrics,
        socket: (!(args.no_api || following && default_socket && args.api_group.is_none()))
            .then_some((args.api_socket.as_path(), args.api_group.as_deref())),
        socket_optional: default_socket && args.api_group.is_none(),
        api: args.api.map(|a| (a, token)),
        max_gone: args.max_gone,
    };
    if serving.metrics.is_none() && serving.socket.is_none() && serving.api.is_none() {
        return Ok(None);
    }
    let (t, notes) = Telemetry::serve(serving)?;
    for n in notes {
        crate::output::fit::note(&n);
    }
    Ok(Some(t))
}

/// When a request wants a fresher snapshot; never, without the API.
pub(super) async fn wanted(api: Option<&mut Publisher>) {
    match api {
        Some(p) => p.wanted().await,
        None => std::future::pending().await,
    }
}
