//! Parsing the command line: the traps of issue 23 (each test fails on
//! the command line before it).

use std::{ffi::OsString, time::Duration};

use clap::{CommandFactory, error::ErrorKind};

use super::{Cli, Command, WatchArgs, manual, parse, parse_ring_bytes, usage_status, wants_help};

fn argv(args: &[&str]) -> Vec<OsString> {
    std::iter::once("listns")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect()
}

/// `listns watch ARGS`.
fn watch(args: &[&str]) -> (WatchArgs, Vec<String>) {
    let mut all = vec!["watch"];
    all.extend_from_slice(args);
    let (cli, notes) = parse(argv(&all)).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    match cli.command {
        Some(Command::Watch(w)) => (w, notes),
        None => panic!("{args:?}: not watch"),
    }
}

/// The error of a refused command line, as printed.
fn refused(args: &[&str]) -> String {
    match parse(argv(args)) {
        Ok(_) => panic!("{args:?} was accepted"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{args:?}: {e}");
            e.to_string()
        }
    }
}

#[test]
fn list_options_before_watch_say_where_they_belong() {
    let e = refused(&["-J", "watch"]);
    assert!(
        e.contains("-J/--json goes after `watch`: listns watch -J"),
        "{e}"
    );
    let e = refused(&["-t", "net", "watch"]);
    assert!(
        e.contains("-t/--type goes after `watch`: listns watch -t net"),
        "{e}"
    );
    let e = refused(&["-t", "net,user", "-t", "ipc", "watch"]);
    assert!(e.contains("listns watch -t net,user,ipc"), "{e}");
    let e = refused(&["-Q", "TYPE == \"net\"", "watch"]);
    assert!(e.contains("listns watch -Q 'TYPE == \"net\"'"), "{e}");
    // Both, one line each.
    let e = refused(&["-J", "--type=net", "watch", "--events-only"]);
    assert!(e.contains("-J/--json") && e.contains("-t/--type"), "{e}");
}

#[test]
fn list_options_that_mean_something_else_under_watch_say_so() {
    let e = refused(&["-o", "NS", "watch"]);
    assert!(
        e.contains("-o/--output is an option of the list")
            && e.contains("under watch, -o is the old spelling of --events-file, another option"),
        "{e}"
    );
    let e = refused(&["-p", "1", "watch"]);
    assert!(
        e.contains("-p/--task is an option of the list")
            && e.contains("under watch, -p is the old spelling of --follow-pid"),
        "{e}"
    );
    let e = refused(&["-n", "watch"]);
    assert!(
        e.contains("-n/--noheadings is an option of the list"),
        "{e}"
    );
}

/// Every top-level argument, not a hand-kept list: each one given before
/// `watch` is refused.
#[test]
fn every_top_level_argument_is_refused_before_watch() {
    let cmd = Cli::command();
    let mut checked = 0;
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version") {
            continue;
        }
        let value = arg
            .get_possible_values()
            .first()
            .map_or("1".to_string(), |v| v.get_name().to_string());
        let mut args: Vec<String> = Vec::new();
        match (arg.get_long(), arg.get_action().takes_values()) {
            (Some(l), true) => args.push(format!("--{l}={value}")),
            (Some(l), false) => args.push(format!("--{l}")),
            (None, _) => args.push(value),
        }
        if id == "token_file" {
            args.push("--from=/x".into());
        }
        args.push("watch".into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(parse(argv(&refs)).is_err(), "{refs:?} was accepted");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} arguments");
    // The same options after watch are fine.
    watch(&["-J", "-t", "net"]);
}

#[test]
fn watch_takes_dash_j_as_the_list_does() {
    assert!(watch(&["-J"]).0.json);
    assert!(watch(&["--json"]).0.json);
    assert!(!watch(&[]).0.json);
}

#[test]
fn events_file_and_follow_pid_with_old_spellings_noted() {
    let (w, notes) = watch(&["--events-file", "/tmp/e"]);
    assert_eq!(w.events_file.as_deref(), Some("/tmp/e".as_ref()));
    assert!(notes.is_empty(), "{notes:?}");
    for old in ["-o", "--output"] {
        let (w, notes) = watch(&[old, "/tmp/e"]);
        assert_eq!(w.events_file.as_deref(), Some("/tmp/e".as_ref()), "{old}");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("-o/--output is deprecated") && notes[0].contains("--events-file"),
            "{notes:?}"
        );
    }
    let (w, notes) = watch(&["--follow-pid", "42"]);
    assert_eq!(w.follow_pid, Some(42));
    assert!(w.following() && notes.is_empty());
    for old in ["-p", "--pid"] {
        let (w, notes) = watch(&[old, "42"]);
        assert_eq!(w.follow_pid, Some(42), "{old}");
        assert!(notes[0].contains("write --follow-pid"), "{notes:?}");
    }
    // Old and new spellings together, or following two things, are refused.
    assert!(parse(argv(&["watch", "-p", "1", "--follow-pid", "2"])).is_err());
    assert!(parse(argv(&["watch", "-o", "a", "--events-file", "b"])).is_err());
    assert!(parse(argv(&["watch", "--follow-pid", "2", "--", "true"])).is_err());
    // Hidden: --help names only the new spellings.
    let help = Cli::command()
        .find_subcommand_mut("watch")
        .unwrap()
        .render_long_help()
        .to_string();
    assert!(help.contains("--events-file") && help.contains("--follow-pid"));
    assert!(
        !help.contains("--output") && !help.contains("--pid "),
        "{help}"
    );
}

#[test]
fn durations_take_units() {
    let (w, _) = watch(&[
        "--duration",
        "500ms",
        "--settle",
        "2s",
        "--forget-after",
        "1m",
    ]);
    assert_eq!(w.duration, Some(Duration::from_millis(500)));
    assert_eq!(w.settle, Duration::from_secs(2));
    assert_eq!(w.forget_after, Duration::from_secs(60));
    // Bare numbers stay seconds; the defaults are what they were.
    let (w, _) = watch(&["--duration", "1.5", "--settle", "3"]);
    assert_eq!(w.duration, Some(Duration::from_millis(1500)));
    assert_eq!(w.settle, Duration::from_secs(3));
    let (w, _) = watch(&[]);
    assert_eq!(w.settle, Duration::from_secs(5));
    assert_eq!(w.forget_after, Duration::from_secs(600));
    assert_eq!(w.duration, None);
    assert!(parse(argv(&["watch", "--duration", "soon"])).is_err());
}

#[test]
fn a_bad_command_line_when_following_is_125() {
    let s = |a: &[&str]| usage_status(&argv(a));
    assert_eq!(s(&["watch", "--bogus", "--", "true"]), 125);
    assert_eq!(s(&["watch", "--follow-pid=3", "--bogus"]), 125);
    assert_eq!(s(&["watch", "--follow-pid", "3"]), 125);
    assert_eq!(s(&["watch", "--bogus"]), 1);
    assert_eq!(s(&["--bogus"]), 1);
    assert_eq!(s(&["--", "watch"]), 1);
}

#[test]
fn help_has_no_readme_pointer_and_lists_examples_and_exit_statuses() {
    let mut cmd = super::command();
    let top = cmd.render_long_help().to_string();
    let watch = cmd
        .find_subcommand_mut("watch")
        .unwrap()
        .render_long_help()
        .to_string();
    for (page, help) in [("listns", &top), ("watch", &watch)] {
        assert!(!help.contains("README"), "{page}: {help}");
        for section in ["EXAMPLES:", "EXIT STATUS:", "ENVIRONMENT:", "FILES:"] {
            assert!(help.contains(section), "{page} lacks {section}");
        }
    }
    for e in manual::EXAMPLES {
        let help = if e.page == manual::Page::List {
            &top
        } else {
            &watch
        };
        assert!(help.contains(e.command), "{} not in --help", e.command);
    }
    assert!(
        watch.contains("\n  125\n") && watch.contains("\n  127\n"),
        "{watch}"
    );
    // Every key -Q takes is listed (keys by hand: a few of each kind).
    for key in [
        "event",
        "ns",
        "type",
        "pid",
        "comm",
        "cgroup_id",
        "hidden",
        "container",
    ] {
        assert!(
            watch.contains(&format!(" {key},")) || watch.contains(&format!(" {key}\n")),
            "-Q key {key} not listed"
        );
    }
}

#[test]
fn default_ring_size_is_valid_and_parses() {
    let d = listns_common::RINGBUF_BYTES;
    assert_eq!(parse_ring_bytes(&d.to_string()), Ok(d));
    assert_eq!(watch(&[]).0.ring_buffer_size, d);
    assert!(parse(argv(&["watch", "--ring-buffer-size", "5000"])).is_err());
}

#[test]
fn help_is_asked_for_in_every_spelling() {
    for yes in [
        &["--help"][..],
        &["-h"],
        &["watch", "--help"],
        &["-nh"],
        &["help", "watch"],
    ] {
        assert!(wants_help(&argv(yes)), "{yes:?}");
    }
    for no in [&["-t", "net"][..], &["watch", "--", "sh", "-h"], &["-J"]] {
        assert!(!wants_help(&argv(no)), "{no:?}");
    }
    // And --help then has the sections.
    let e = parse(argv(&["watch", "--help"])).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::DisplayHelp);
    assert!(e.to_string().contains("EXIT STATUS:"), "{e}");
}
