//! The commands the documentation shows, as cases a test runs.
//!
//! The README marks what runs (the convention is in CONTRIBUTING.md,
//! "The README's commands are tests"):
//! - a ```` ```sh ```` block: each line is a command, run on its own;
//!   a line ending in `&` starts a process that is held until the test
//!   ends (then killed);
//! - a ```` ```console ```` block: a transcript; its `$ ` lines run as one
//!   script (so `echo $?` sees the line before), the other lines are the
//!   output the README shows;
//! - `<!-- test: DIRECTIVE -->` lines right above a block: `setup` (runs
//!   before every other block), `expect REGEX` (a line of the output shown
//!   and a line of the real output, stdout and stderr together, match
//!   it), `status N` (the exit status, 0 otherwise), `skip REASON` (not
//!   run; the reason is required);
//! - `# meanwhile: CMD` after a command: CMD runs every half second while
//!   the command runs (what a user does in another terminal).
//!
//! Every block of another kind that shows a `$ ` command is an error, as
//! is a directive that is not right above a block: nothing shown can
//! escape the test by its markup.

use std::{
    io::Read,
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use regex::Regex;

/// One block of commands, from a document or a table in code.
#[derive(Debug, Clone)]
pub struct Case {
    /// Where it comes from: `README.md:57`.
    pub origin: String,
    /// The commands, continuation lines joined.
    pub commands: Vec<String>,
    /// A transcript: the commands run as one script.
    pub transcript: bool,
    /// The output the document shows (transcripts only).
    pub shown: Vec<String>,
    pub expect: Vec<Regex>,
    pub status: i32,
    pub setup: bool,
    pub skip: Option<String>,
}

impl Case {
    /// One command from a table in code (the man page's EXAMPLES): it
    /// must exit 0 and nothing of its output is checked.
    pub fn command(origin: impl Into<String>, command: impl Into<String>) -> Case {
        Case {
            origin: origin.into(),
            commands: vec![command.into()],
            transcript: false,
            shown: Vec::new(),
            expect: Vec::new(),
            status: 0,
            setup: false,
            skip: None,
        }
    }
}

/// The cases of a Markdown document; `name` goes into each origin.
pub fn parse_markdown(name: &str, text: &str) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    let mut pending: Vec<(usize, String)> = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let at = |n: usize| format!("{name}:{}", n + 1);
        if let Some(d) = directive(line) {
            pending.push((i, d.to_string()));
            continue;
        }
        let Some(info) = line.strip_prefix("```") else {
            if let Some((n, d)) = pending.first() {
                bail!(
                    "{}: `<!-- test: {d} -->` is not right above a block",
                    at(*n)
                );
            }
            continue;
        };
        let mut body = Vec::new();
        for (_, l) in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push(l);
        }
        let info = info.trim();
        let runnable = matches!(info, "sh" | "console");
        if !runnable {
            if let Some((n, d)) = pending.first() {
                bail!(
                    "{}: `<!-- test: {d} -->` above a ```{info} block, which never runs",
                    at(*n)
                );
            }
            if let Some(l) = body.iter().find(|l| l.starts_with("$ ")) {
                bail!(
                    "{}: a ```{info} block shows the command `{l}`: make it ```console so that it runs",
                    at(i)
                );
            }
            continue;
        }
        let mut case = Case::command(at(i), String::new());
        case.commands.clear();
        for (n, d) in pending.drain(..) {
            apply(&mut case, &d).with_context(|| at(n))?;
        }
        if info == "console" {
            case.transcript = true;
            read_transcript(&mut case, &body);
        } else {
            case.commands = join_continued(body.iter().copied().filter(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#')
            }));
        }
        ensure!(
            !case.commands.is_empty(),
            "{}: a ```{info} block without a command",
            case.origin
        );
        ensure!(
            case.transcript || case.expect.is_empty(),
            "{}: `expect` above a ```sh block, which shows no output: make it ```console",
            case.origin
        );
        for re in &case.expect {
            ensure!(
                !case.transcript || case.shown.iter().any(|l| re.is_match(l)),
                "{}: `expect {re}` matches no line of the output the block shows",
                case.origin
            );
        }
        cases.push(case);
    }
    if let Some((n, d)) = pending.first() {
        bail!(
            "{name}:{}: `<!-- test: {d} -->` is not right above a block",
            n + 1
        );
    }
    Ok(cases)
}

fn directive(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix("<!-- test:")?
        .strip_suffix("-->")
        .map(str::trim)
}

fn apply(case: &mut Case, d: &str) -> Result<()> {
    let (word, rest) = d.split_once(' ').unwrap_or((d, ""));
    let rest = rest.trim();
    match word {
        "setup" if rest.is_empty() => case.setup = true,
        "skip" if !rest.is_empty() => case.skip = Some(rest.to_string()),
        "status" => case.status = rest.parse().with_context(|| format!("`status {rest}`"))?,
        "expect" if !rest.is_empty() => case
            .expect
            .push(Regex::new(rest).with_context(|| format!("`expect {rest}`"))?),
        _ => bail!("unknown test directive `{d}` (setup, skip REASON, status N, expect REGEX)"),
    }
    Ok(())
}

fn read_transcript(case: &mut Case, body: &[&str]) {
    let mut commands = Vec::new();
    let mut in_command = false;
    for l in body {
        if let Some(c) = l.strip_prefix("$ ") {
            commands.push(c.to_string());
            in_command = c.ends_with('\\');
        } else if in_command {
            commands.push(l.to_string());
            in_command = l.ends_with('\\');
        } else {
            case.shown.push(l.to_string());
        }
    }
    case.commands = join_continued(commands.iter().map(String::as_str));
}

/// Lines ending in `\` joined with the next, as the shell reads them.
fn join_continued<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut open = false;
    for l in lines {
        match out.last_mut() {
            Some(last) if open => {
                last.push('\n');
                last.push_str(l);
            }
            _ => out.push(l.to_string()),
        }
        open = l.ends_with('\\');
    }
    out
}

/// `CMD` from a trailing `# meanwhile: CMD` comment.
pub fn meanwhile(command: &str) -> Option<&str> {
    let (_, m) = command.split_once("# meanwhile:")?;
    Some(m.trim())
}

/// The network namespaces a case's commands make with `ip netns add`.
pub fn netns_added(case: &Case) -> Vec<String> {
    let re = Regex::new(r"\bip netns add ([A-Za-z0-9_.-]+)").unwrap();
    case.commands
        .iter()
        .flat_map(|c| {
            re.captures_iter(c)
                .map(|m| m[1].to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Where the cases run: a PATH whose `listns` is this build's, a scratch
/// working directory, and the processes the cases hold, killed on drop.
pub struct Runner {
    dir: tempfile::TempDir,
    path: std::ffi::OsString,
    held: Vec<Child>,
    /// How long one case may run: the documents bound every command.
    pub timeout: Duration,
}

impl Runner {
    pub fn new(listns: &Path) -> Result<Runner> {
        let dir = tempfile::tempdir()?;
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin)?;
        std::os::unix::fs::symlink(listns, bin.join("listns"))?;
        let mut path = bin.into_os_string();
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        Ok(Runner {
            dir,
            path,
            held: Vec::new(),
            timeout: crate::scaled(Duration::from_secs(60)),
        })
    }

    fn bash(&self, script: &str) -> Command {
        let mut c = Command::new("bash");
        c.args(["-o", "pipefail", "-c", script])
            .current_dir(self.dir.path())
            .env("PATH", &self.path)
            .env_remove("COLUMNS")
            .stdin(Stdio::null())
            .process_group(0);
        c
    }

    /// Runs one case: its exit status and its expected lines.
    pub fn run(&mut self, case: &Case) -> Result<()> {
        let origin = &case.origin;
        if case.transcript {
            let out = self
                .script(&case.commands.join("\n"), case.status)
                .with_context(|| format!("{origin}: {}", case.commands.join("; ")))?;
            for re in &case.expect {
                ensure!(
                    out.lines().any(|l| re.is_match(l)),
                    "{origin}: no line of the output matches `{re}`; it printed:\n{out}"
                );
            }
            return Ok(());
        }
        // Each command on its own, every failure reported.
        let mut failed = Vec::new();
        for c in &case.commands {
            let r = match c.trim_end().strip_suffix('&') {
                Some(held) => self.hold(held),
                None => self.script(c, case.status).map(drop),
            };
            if let Err(e) = r {
                failed.push(format!("{origin}: {c}: {e:#}"));
            }
        }
        ensure!(failed.is_empty(), "{}", failed.join("\n\n"));
        Ok(())
    }

    /// Starts a process the later cases look at; it must still run a
    /// moment later (a misspelt command would not).
    fn hold(&mut self, command: &str) -> Result<()> {
        let mut child = self
            .bash(&format!("exec {command}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = child.try_wait()? {
            bail!("the process to hold exited at once ({status})");
        }
        self.held.push(child);
        Ok(())
    }

    /// Runs a script with stdout and stderr together, the `# meanwhile`
    /// commands beside it, and checks its exit status; its output.
    fn script(&self, script: &str, status: i32) -> Result<String> {
        let mut child = self
            .bash(&format!("exec 2>&1\n{script}"))
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        });
        let meanwhile: Vec<&str> = script.lines().filter_map(meanwhile).collect();
        let (mut ran, mut failed) = (0, Vec::new());
        let end = Instant::now() + self.timeout;
        let mut next = Instant::now();
        let got = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > end {
                kill_group(&mut child);
                bail!(
                    "still running after {:?}: bound it (`--duration 10s`)",
                    self.timeout
                );
            }
            if !meanwhile.is_empty() && Instant::now() >= next {
                for m in &meanwhile {
                    match self
                        .bash(m)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                    {
                        Ok(s) if s.success() => ran += 1,
                        other => failed.push(format!("{m}: {other:?}")),
                    }
                }
                next = Instant::now() + Duration::from_millis(500);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Whatever the script left running in its group goes with it.
        kill_group(&mut child);
        let out = reader.join().unwrap_or_default();
        ensure!(
            failed.is_empty(),
            "`# meanwhile` commands failed: {failed:?}"
        );
        ensure!(
            meanwhile.is_empty() || ran > 0,
            "the `# meanwhile` commands never ran"
        );
        ensure!(
            got.code() == Some(status),
            "{got}, but the document says exit status {status}; it printed:\n{out}"
        );
        Ok(out)
    }
}

fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) on the group this child leads; no memory involved.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
}

impl Drop for Runner {
    fn drop(&mut self) {
        for c in &mut self.held {
            kill_group(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "Intro.\n\
        <!-- test: setup -->\n\
        ```sh\n\
        ip netns add demo   # a named one\n\
        # a comment line\n\
        unshare -n sleep 600 &\n\
        ```\n\
        \n\
        <!-- test: expect ^net \\d+$ -->\n\
        <!-- test: status 3 -->\n\
        ```console\n\
        $ listns -t net \\\n\
          -o TYPE,NS; exit 3\n\
        net 4026532174\n\
        $ echo done\n\
        done\n\
        ```\n\
        <!-- test: skip builds for minutes -->\n\
        ```sh\n\
        cargo build --release\n\
        ```\n\
        ```text\n\
        NS TYPE\n\
        ```\n";

    #[test]
    fn blocks_directives_and_commands() {
        let cases = parse_markdown("DOC", DOC).unwrap();
        assert_eq!(cases.len(), 3);
        let (setup, shown, skipped) = (&cases[0], &cases[1], &cases[2]);
        assert!(setup.setup && !setup.transcript);
        assert_eq!(setup.origin, "DOC:3");
        assert_eq!(
            setup.commands,
            [
                "ip netns add demo   # a named one",
                "unshare -n sleep 600 &"
            ]
        );
        assert_eq!(netns_added(setup), ["demo"]);
        assert!(shown.transcript && !shown.setup);
        // (The `\` line ends of this literal eat the next line's indent.)
        assert_eq!(
            shown.commands,
            ["listns -t net \\\n-o TYPE,NS; exit 3", "echo done"]
        );
        assert_eq!(shown.shown, ["net 4026532174", "done"]);
        assert_eq!(shown.status, 3);
        assert_eq!(shown.expect.len(), 1);
        assert_eq!(skipped.skip.as_deref(), Some("builds for minutes"));
    }

    #[test]
    fn markup_cannot_hide_a_command() {
        let errors = [
            ("```text\n$ listns -J\n```\n", "make it ```console"),
            (
                "<!-- test: expect x -->\n\nSome text.\n",
                "not right above a block",
            ),
            (
                "<!-- test: expect x -->\n```json\n{}\n```\n",
                "which never runs",
            ),
            (
                "<!-- test: skip -->\n```sh\nls\n```\n",
                "unknown test directive",
            ),
            (
                "<!-- test: runs -->\n```sh\nls\n```\n",
                "unknown test directive",
            ),
            (
                "<!-- test: expect ^b$ -->\n```console\n$ echo a\na\n```\n",
                "matches no line",
            ),
            ("```sh\n# only a comment\n```\n", "without a command"),
            ("<!-- test: setup -->\n", "not right above a block"),
            (
                "<!-- test: expect a -->\n```sh\necho a\n```\n",
                "make it ```console",
            ),
        ];
        for (doc, want) in errors {
            let e = format!("{:#}", parse_markdown("D", doc).unwrap_err());
            assert!(e.contains(want), "{doc:?}: {e}");
        }
    }

    #[test]
    fn meanwhile_comment() {
        assert_eq!(
            meanwhile(
                "listns watch --duration 10s   # meanwhile: unshare -u true; ip netns exec demo true"
            ),
            Some("unshare -u true; ip netns exec demo true")
        );
        assert_eq!(meanwhile("listns -J  # all of them"), None);
    }

    /// The runner itself: exit statuses, expected lines, a held process, a
    /// command that does not end, with plain shell commands.
    #[test]
    fn runner_checks_status_output_and_time() {
        let mut r = Runner::new(Path::new("/bin/true")).unwrap();
        r.timeout = Duration::from_secs(2);
        let doc = "<!-- test: expect ^b$ -->\n```console\n$ echo a; echo b >&2\na\nb\n```\n";
        let ok = &parse_markdown("D", doc).unwrap()[0];
        r.run(ok).unwrap();
        let mut wrong = ok.clone();
        wrong.commands = vec!["echo a".into()];
        assert!(
            format!("{:#}", r.run(&wrong).unwrap_err()).contains("no line of the output matches")
        );
        wrong.commands = vec!["echo b; exit 2".into()];
        assert!(
            format!("{:#}", r.run(&wrong).unwrap_err()).contains("document says exit status 0")
        );
        let hang = Case::command("D", "sleep 30");
        assert!(format!("{:#}", r.run(&hang).unwrap_err()).contains("still running"));
        r.run(&Case::command("D", "sleep 30 &")).unwrap();
        let pid = r.held[0].id();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert!(
            r.run(&Case::command("D", "no-such-command-here &"))
                .is_err()
        );
        drop(r);
        let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.contains(") Z "));
        assert!(gone, "a held process outlived the runner");
    }
}
