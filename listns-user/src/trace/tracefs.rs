//! Tracepoints are attached through tracefs, which is not always mounted
//! (it is not on a fresh machine of the kind listns is developed on). A
//! root user expects the tool to mount it and say so.

use std::path::Path;

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

fn has_events(dir: &str) -> bool {
    Path::new(dir).join("events").is_dir()
}

/// Makes sure tracefs is reachable; returns what the user should be told.
/// Failing to mount it is not fatal: raw tracepoints (the fork hook) work
/// without it, and the hooks that need it are reported when they fail.
pub fn ensure_mounted() -> Option<String> {
    if has_events(TRACEFS) || has_events(DEBUGFS_TRACING) {
        return None;
    }
    let res = nix::mount::mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    );
    Some(match res {
        Ok(()) if has_events(TRACEFS) => {
            format!("tracefs was not mounted; mounted it at {TRACEFS}")
        }
        Ok(()) => format!("mounted tracefs at {TRACEFS}, but it has no events directory"),
        Err(e) => format!(
            "tracefs is not mounted and mounting it at {TRACEFS} failed ({e}); \
             tracepoint hooks will fail to attach"
        ),
    })
}
