//! Reading a test run's output: the marker lines /init prints (see
//! `initramfs::INIT`) and the test runners' summaries, from a guest's
//! console or the host's output.

/// Marker lines the guest's /init prints (see `initramfs::INIT`).
pub(super) const M_KERNEL: &str = "LISTNS-VM-KERNEL: ";
pub(super) const M_BEGIN: &str = "LISTNS-VM-BEGIN: ";
pub(super) const M_END: &str = "LISTNS-VM-END: ";
const M_DONE: &str = "LISTNS-VM-DONE: ";
/// Lines a bench prints for the reader (its progress and its table).
pub(super) const M_BENCH: &str = "LISTNS-BENCH: ";

/// Per-executable results parsed from a console or an output stream.
#[derive(Default)]
pub(super) struct Parsed {
    pub(super) kernel: Option<String>,
    pub(super) done: Option<bool>,
    /// (name, rc, summary line) per test executable.
    pub(super) ends: Vec<(String, i32, Option<String>)>,
    current: Option<(String, Option<String>)>,
    /// Lines worth showing: skips and notes from the tests, failures.
    pub(super) notable: Vec<String>,
    /// What benches printed after [`M_BENCH`].
    pub(super) bench: Vec<String>,
    in_failures: bool,
}

impl Parsed {
    pub(super) fn line(&mut self, line: &str) {
        if let Some(k) = line.strip_prefix(M_KERNEL) {
            self.kernel = Some(k.trim().to_string());
        } else if let Some(name) = line.strip_prefix(M_BEGIN) {
            self.current = Some((name.trim().to_string(), None));
            self.in_failures = false;
        } else if let Some(rest) = line.strip_prefix(M_END) {
            let rc = rest
                .rsplit_once("rc=")
                .and_then(|(_, rc)| rc.trim().parse().ok())
                .unwrap_or(-1);
            let (name, summary) = self
                .current
                .take()
                .unwrap_or_else(|| (rest.to_string(), None));
            self.ends.push((name, rc, summary));
            self.in_failures = false;
        } else if let Some(b) = line.strip_prefix(M_BENCH) {
            self.bench.push(b.to_string());
        } else if let Some(v) = line.strip_prefix(M_DONE) {
            self.done = Some(v.trim() == "PASS");
        } else if line.starts_with("test result: ") {
            if let Some((_, s)) = self.current.as_mut() {
                *s = Some(line.to_string());
            }
            self.in_failures = false;
        } else if line == "failures:" {
            self.in_failures = true;
            self.notable.push(line.to_string());
        } else if self.in_failures
            || line.starts_with("SKIP")
            || line.starts_with("NOTE")
            || line.contains("panicked at")
            || line.contains("Kernel panic")
            || line.ends_with("... FAILED")
        {
            self.notable.push(line.to_string());
        }
    }

    pub(super) fn results(&self) -> Vec<(String, String)> {
        self.ends
            .iter()
            .map(|(name, rc, summary)| {
                let s = summary.clone().unwrap_or_else(|| format!("exit code {rc}"));
                (name.clone(), s)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_without_verdict_is_not_a_pass() {
        let mut p = Parsed::default();
        for l in [
            "LISTNS-VM-KERNEL: 6.1.0-57-cloud-amd64",
            "LISTNS-VM-BEGIN: trace",
            "test result: ok. 6 passed; 0 failed",
            "LISTNS-VM-END: trace rc=0",
        ] {
            p.line(l);
        }
        assert_eq!(p.done, None);
        assert_eq!(
            p.results(),
            vec![("trace".into(), "test result: ok. 6 passed; 0 failed".into())]
        );
        p.line("LISTNS-VM-DONE: FAIL");
        assert_eq!(p.done, Some(false));
    }
}
