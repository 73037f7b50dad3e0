//! lsns parity: each test sets up a case for real (an fd-held netns, a
//! socket-held netns, a user/pid pair, two bind mounts of one netns, a long
//! command line in a 100-column terminal), runs the built `listns` and
//! asserts what lsns's documentation promises; where the installed lsns
//! (2.38) behaves the same, its output is compared too. Root is needed;
//! without it each test says why and passes, except under CI. Run with
//! `--test-threads=1`.

use std::{
    collections::BTreeSet,
    io::Read,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use listns_skip::require_root;
use listns_tests::{NetnsGuard, listns_bin, ns_inode, run, wait_for};
use serde_json::Value;
use unicode_width::UnicodeWidthStr;

mod parity_support;
use parity_support::*;

#[test]
fn namespaces_no_process_is_in_have_no_pid_command_or_path() {
    if !require_root() {
        return;
    }
    let (holder, fd_ns) = fd_held_netns("lsns-parity-fd");
    let (sock, sock_ns) = socket_held_netns();
    // lsns: the creator uid of the owning user namespace (root's here),
    // named as the password database names it (a bare number where it
    // has no entry, as in the kernel-matrix guests).
    let root = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(0))
        .ok()
        .flatten()
        .map_or("0".to_string(), |u| u.name);
    for (inum, holds) in [(fd_ns, "fd"), (sock_ns, "socket")] {
        let cols = "TYPE,NPROCS,PID,PPID,COMMAND,PATH,UID,USER,HOLDERS";
        let v = row(inum, cols);
        assert_eq!(v["type"], "net");
        assert_eq!(v["nprocs"], 0);
        for k in ["pid", "ppid", "command", "path"] {
            assert_eq!(v[k], Value::Null, "{k} of {inum}: {v}");
        }
        assert_eq!(
            (v["uid"].as_u64(), v["user"].as_str()),
            (Some(0), Some(root.as_str()))
        );
        // In JSON, HOLDERS is the list of holders.
        let kinds: Vec<&str> = v["holders"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["kind"].as_str())
            .collect();
        assert_eq!(kinds, [holds], "{v}");
        // The table: four empty cells between NPROCS and UID.
        let q = format!("NS == {inum}");
        let line = ok(&["-n", "-r", "-o", cols, "-Q", &q]);
        let cells: Vec<&str> = line.trim_end().split(' ').collect();
        assert_eq!(
            cells[..8],
            ["net", "0", "", "", "", "", "0", root.as_str()],
            "{line}"
        );
        // HOLDERS still knows the process that holds it.
        let full = json(&["-Q", &q]);
        let h = &full["namespaces"][0]["holders"][0];
        let pid = if inum == fd_ns {
            holder.pid()
        } else {
            std::process::id()
        };
        assert_eq!(h["pid"], pid, "{full}");
    }
    // Neither holder's command line shows anywhere near those rows.
    let table = ok(&["-o", "NS,COMMAND", "-P"]);
    assert!(!table.contains("sleep 637"), "{table}");
    drop(sock);
}

#[test]
fn persistent_and_task_select_as_lsns() {
    if !require_root() {
        return;
    }
    let (holder, fd_ns) = fd_held_netns("lsns-parity-p");
    let (sock, sock_ns) = socket_held_netns();
    let persistent = inodes(&["-P"]);
    assert!(persistent.contains(&fd_ns) && persistent.contains(&sock_ns));
    // -P is NPROCS == 0, whatever holds the namespace.
    assert_eq!(persistent, inodes(&["-Q", "NPROCS == 0"]));
    assert_eq!(persistent, inodes(&["-Q", "nprocs == 0"]));
    let err = fails(&["-P", "-p", "1"]);
    assert!(err.contains("cannot be used with"), "{err}");
    // -p: the eight namespaces the process is in, not the one its fd holds.
    let pid = holder.pid().to_string();
    let mine = inodes(&["-p", &pid]);
    assert!(!mine.contains(&fd_ns));
    let own: BTreeSet<u64> = ["mnt", "net", "pid", "user", "uts", "ipc", "cgroup", "time"]
        .iter()
        .map(|t| ns_inode(format!("/proc/{pid}/ns/{t}")))
        .filter(|&i| i != 0)
        .collect();
    assert_eq!(mine, own);
    // The installed lsns agrees on -p. lsns reads every process before
    // choosing one and can fail when another test's process vanishes
    // meanwhile: a failed run is retried, and its error shown.
    let mut said = Vec::new();
    let theirs: BTreeSet<u64> = (0..5)
        .find_map(|_| {
            let lsns = Command::new("lsns")
                .args(["-n", "-r", "-o", "NS", "-p", &pid])
                .output()
                .expect("lsns");
            let got: BTreeSet<u64> = String::from_utf8_lossy(&lsns.stdout)
                .lines()
                .filter_map(|l| l.parse().ok())
                .collect();
            said.push(format!(
                "{}: {}",
                lsns.status,
                String::from_utf8_lossy(&lsns.stderr).trim()
            ));
            (lsns.status.success() && !got.is_empty()).then_some(got)
        })
        .unwrap_or_default();
    assert_eq!(mine, theirs, "lsns -p {pid}: {said:?}");
    drop(sock);
}

#[test]
fn filter_expressions_choose_rows_over_any_column() {
    if !require_root() {
        return;
    }
    let (holder, fd_ns) = fd_held_netns("lsns-parity-q");
    let q = format!("NS == {fd_ns}");
    assert_eq!(inodes(&["-Q", &q]), BTreeSet::from([fd_ns]));
    // Columns that are not shown can be filtered on, and stay hidden.
    let v = json(&["-o", "NS", "-Q", "HOLDERS =~ \"fds:\" && TYPE == \"net\""]);
    let list = v["namespaces"].as_array().unwrap();
    assert!(list.iter().any(|n| n["ns"] == fd_ns), "{v}");
    assert!(
        list.iter()
            .all(|n| n.get("nprocs").is_none() && n.get("pid").is_none())
    );
    let lines = ok(&["-n", "-o", "NS", "-Q", "NPROCS == 0"]);
    assert!(lines.lines().all(|l| l.split_whitespace().count() == 1));
    assert!(lines.lines().any(|l| l.trim() == fd_ns.to_string()));
    // Nothing matches: no header, no rows; JSON an empty list.
    assert_eq!(ok(&["-Q", "false"]), "");
    assert_eq!(json(&["-Q", "false"])["namespaces"], serde_json::json!([]));
    // Errors exit 1 and say what is wrong.
    let err = fails(&["-Q", "FOO == 1"]);
    assert!(err.contains("FOO") && err.contains("NPROCS"), "{err}");
    let err = fails(&["-Q", "NPROCS =="]);
    assert!(err.contains("at character 10"), "{err}");
    let err = fails(&["-Q", "COMMAND == 5"]);
    assert!(
        err.contains("failed to apply filter") && err.contains("COMMAND"),
        "{err}"
    );
    drop(holder);
}

#[test]
fn user_and_pid_namespaces_as_lsns_relates_and_draws_them() {
    if !require_root() {
        return;
    }
    let up = user_pid_pair();
    let (me_user, me_pid) = (
        ns_inode("/proc/self/ns/user"),
        ns_inode("/proc/self/ns/pid"),
    );
    let (child, pid_ns) = (up.user.to_string(), up.pid_ns.to_string());
    // PNS and ONS, through the positional namespace (tests/ts/lsns/ioctl_ns).
    let users = ok(&["-t", "user", "-n", "-o", "NS,PNS,ONS", &child]);
    let expect = format!("{} {me_user} {me_user}", up.user);
    let lines: BTreeSet<String> = users
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, BTreeSet::from([expect]));
    let pids = ok(&["-t", "pid", "-n", "-o", "NS,PNS,ONS", &pid_ns]);
    let lsns = Command::new("lsns")
        .args(["-t", "pid", "-n", "-o", "NS,PNS,ONS", &pid_ns])
        .output()
        .unwrap();
    assert_eq!(
        cells(&pids),
        cells(&String::from_utf8_lossy(&lsns.stdout)),
        "as lsns 2.38"
    );
    assert_eq!(
        pids.split_whitespace().collect::<Vec<_>>(),
        [pid_ns.as_str(), &me_pid.to_string(), &child]
    );
    // Owner tree: the new user namespace under ours, its pid namespace under it.
    let owner = depths(&ok(&["-n", "-o", "NS,TYPE", "-T"]));
    let depth = |d: &[(u64, usize)], ns| d.iter().find(|(n, _)| *n == ns).map(|(_, d)| *d);
    assert_eq!(depth(&owner, me_user), Some(0));
    assert_eq!(depth(&owner, up.user), Some(1));
    assert_eq!(depth(&owner, up.pid_ns), Some(2));
    let v = json(&["-o", "NS", "-T"]);
    let root = v["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["ns"] == me_user)
        .expect("our user namespace is a root");
    let kid = root["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["ns"] == up.user)
        .expect("nested under it");
    assert!(
        kid["children"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["ns"] == up.pid_ns)
    );
    // Parent tree: pid namespace under our pid namespace, other types roots.
    let parent = depths(&ok(&["-n", "-o", "NS,TYPE", "--tree=parent"]));
    assert_eq!(depth(&parent, up.user), Some(1));
    assert_eq!(depth(&parent, up.pid_ns), Some(1));
    assert_eq!(depth(&parent, me_pid), Some(0));
    assert_eq!(depth(&parent, ns_inode("/proc/self/ns/net")), Some(0));
    assert_eq!(parent, depths(&ok(&["-n", "-o", "NS,TYPE", "-Tparent"])));
    // Default: the process tree in COMMAND, as lsns 2.38 draws it.
    let cols = ["-n", "-o", "NS,TYPE,COMMAND"];
    let pick = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(&child) || l.starts_with(&pid_ns))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let mine = pick(&ok(&cols));
    assert_eq!(mine.len(), 2, "{mine:?}");
    // Box lines in a UTF-8 locale, ASCII otherwise (the guests have none).
    assert!(
        ["└─", "├─", "`-", "|-"]
            .iter()
            .any(|l| mine[1].contains(&format!("{l}sleep 600"))),
        "{mine:?}"
    );
    let lsns = Command::new("lsns").args(cols).output().unwrap();
    assert_eq!(mine, pick(&String::from_utf8_lossy(&lsns.stdout)));
    // -l: no tree anywhere; -l with -T is refused; -T takes no separate word.
    let flat = ok(&["-l"]);
    assert!(!flat.contains('─') && !flat.contains("`-"), "{flat}");
    assert!(fails(&["-l", "-T"]).contains("cannot be used with"));
    assert!(fails(&["-T", "owner"]).contains("invalid namespace argument: 'owner'"));
    fails(&["-Tbogus"]);
    // Positional: one row per process in it, by inode or by 64-bit id.
    let procs = ok(&["-n", "-l", "-o", "PID,PPID,USER,COMMAND", &child]);
    let lsns = Command::new("lsns")
        .args(["-n", "-l", "-o", "PID,PPID,USER,COMMAND", &child])
        .output()
        .unwrap();
    assert_eq!(
        cells(&procs),
        cells(&String::from_utf8_lossy(&lsns.stdout)),
        "as lsns 2.38"
    );
    let pids: Vec<u32> = procs
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(pids, [up.unshare, up.sleep]);
    let v = json(&["-Tprocess", &child]);
    let top = &v["namespaces"];
    assert_eq!(
        (top[0]["pid"].as_u64(), top[1].is_null()),
        (Some(up.unshare as u64), true)
    );
    assert_eq!(top[0]["children"][0]["pid"], up.sleep, "{v}");
    assert_eq!(top[0]["children"][0]["ns"], up.user);
    let tree = ok(&["-n", &child]);
    assert!(
        tree.lines()
            .nth(1)
            .is_some_and(|l| l.contains("└─sleep 600") || l.contains("`-sleep 600")),
        "{tree}"
    );
    if let Some(id) = row(up.user, "ID")["id"].as_u64() {
        let by_id = ok(&["-n", "-l", "-o", "PID,PPID,USER,COMMAND", &id.to_string()]);
        assert_eq!(by_id, procs);
    }
    assert!(fails(&["999"]).contains("not found namespace: 999"));
    assert!(fails(&["-p", "1", &child]).contains("cannot be used with"));
}

#[test]
fn positional_namespace_without_processes_prints_nothing() {
    if !require_root() {
        return;
    }
    let (_holder, fd_ns) = fd_held_netns("lsns-parity-pos");
    let out = listns(&[&fd_ns.to_string()]);
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn two_bind_mounts_of_one_netns() {
    if !require_root() {
        return;
    }
    let _guard = NetnsGuard::new("lsns-parity-bind");
    let first = "/run/netns/lsns-parity-bind";
    let dir = tempfile::tempdir().unwrap();
    let second = dir.path().join("again");
    std::fs::write(&second, b"").unwrap();
    let second_s = second.to_str().unwrap().to_string();
    run("mount", &["--bind", first, &second_s]);
    let _mounts = Mounts {
        _dir: dir,
        mounts: vec![second.clone()],
    };
    // A process in it, so that lsns 2.38 lists it too.
    let _p = Proc::cmd("ip", &["netns", "exec", "lsns-parity-bind", "sleep", "600"]);
    let inum = ns_inode(first);
    let q = format!("NS == {inum}");
    wait_for(Duration::from_secs(5), || {
        (ok(&["-n", "-r", "-o", "NPROCS", "-Q", &q]).trim() == "1").then_some(())
    })
    .expect("the sleep is in it");
    // One path per line, each once; on one line with -W and -r.
    let mut both = vec![first.to_string(), second_s.clone()];
    both.sort();
    let lines: Vec<String> = ok(&["-n", "-o", "NSFS", "-Q", &q])
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(lines, both);
    assert_eq!(
        ok(&["-n", "-W", "-o", "NSFS", "-Q", &q]).trim(),
        both.join(",")
    );
    assert_eq!(
        ok(&["-n", "-r", "-o", "NSFS", "-Q", &q]).trim(),
        both.join(",")
    );
    let lsns = Command::new("lsns")
        .args(["-n", "-W", "-o", "NS,NSFS", "-t", "net"])
        .output()
        .unwrap();
    let theirs = String::from_utf8_lossy(&lsns.stdout)
        .lines()
        .find(|l| l.starts_with(&inum.to_string()))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
    assert_eq!(
        theirs,
        Some(format!("{inum} {}", both.join(","))),
        "as lsns 2.38"
    );
}

#[test]
fn default_columns_and_the_column_list() {
    if !require_root() {
        return;
    }
    let header = |args: &[&str]| -> Vec<String> {
        ok(args)
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let net = header(&["-t", "net"]);
    assert_eq!(
        net,
        [
            "NS", "TYPE", "NPROCS", "PID", "USER", "NETNSID", "NSFS", "COMMAND", "HOLDERS"
        ]
    );
    let all = header(&["--output-all", "-r"]);
    assert_eq!(
        all[..13],
        [
            "NS", "TYPE", "PATH", "NPROCS", "PID", "PPID", "COMMAND", "UID", "USER", "NETNSID",
            "NSFS", "PNS", "ONS"
        ]
    );
    // The last -o counts, as in lsns.
    assert_eq!(header(&["-o", "PID", "-o", "NS,TYPE"]), ["NS", "TYPE"]);
    let cols = ok(&["-H"]);
    assert!(
        cols.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..2] == ["NS", "<integer>"])
    );
    let v: Value = serde_json::from_str(&ok(&["-H", "-J"])).unwrap();
    let list = v["lsns-columns"].as_array().unwrap();
    assert_eq!(list[0]["holder"], "NS");
    assert_eq!(list[0]["type"], "<integer>");
    // PNS and ONS are 0 where there is none (the initial user namespace).
    let init_user = ns_inode("/proc/2/ns/user");
    let v = row(init_user, "PNS,ONS");
    assert_eq!((v["pns"].as_u64(), v["ons"].as_u64()), (Some(0), Some(0)));
}

#[test]
fn the_table_fits_a_100_column_terminal() {
    if !require_root() {
        return;
    }
    // A 400-character command line, first in a uts namespace of its own;
    // `read` waits on the open pipe without forking (nothing left behind).
    let long = "x".repeat(400);
    let p = Proc(
        Command::new("unshare")
            .args(["-u", "sh", "-c", "read x", &long])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let uts = format!("/proc/{}/ns/uts", p.pid());
    let mine = ns_inode("/proc/self/ns/uts");
    wait_for(Duration::from_secs(5), || {
        (ns_inode(&uts) != mine).then_some(())
    })
    .expect("its own uts namespace");
    let pid = p.pid().to_string();
    let text = on_terminal(100, &[]);
    let row = text
        .lines()
        .find(|l| l.contains(&format!(" {pid} ")))
        .unwrap_or_else(|| panic!("its row is listed:\n{text}"));
    assert!(
        row.contains("sh -c read x xxx") && row.contains('…'),
        "{row}"
    );
    for line in text.lines() {
        assert!(line.width() <= 100, "{} columns: {line}", line.width());
    }
    // -u: nothing cut; a pipe: nothing cut either.
    assert!(on_terminal(100, &["-u"]).lines().any(|l| l.contains(&long)));
    assert!(ok(&[]).lines().any(|l| l.contains(&long)));
    assert!(Path::new(&uts).exists());
}

#[test]
fn watch_filter_prints_only_matching_events() {
    if !require_root() {
        return;
    }
    // A misspelt key fails before any program is loaded.
    let out = listns(&["watch", "--json", "-Q", "evnt == \"created\""]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown column evnt"), "{err}");
    assert!(out.stdout.is_empty());
    let unloaded = || {
        listns_tests::kernel::listns_prog_ids()
            .is_empty()
            .then_some(())
    };
    wait_for(Duration::from_secs(10), unloaded).expect("no tracer of an earlier test left");
    // Killed on drop should an assertion fail first.
    let mut w = Proc(
        Command::new(listns_bin())
            .args([
                "watch",
                "--json",
                "-Q",
                "event == \"created\" && type == \"uts\"",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("listns watch"),
    );
    let all = listns_tests::watch::programs();
    let attached = wait_for(Duration::from_secs(30), || {
        (listns_tests::kernel::listns_prog_ids().len() == all).then_some(())
    });
    // Its programs are attached one after the other: give the last one and
    // the start-up scan a moment (longer where emulation is slow).
    std::thread::sleep(listns_tests::scaled(Duration::from_secs(1)));
    // One unshare makes a uts and an ipc namespace; only the first may show.
    let made = Command::new("unshare")
        .args([
            "-u",
            "-i",
            "sh",
            "-c",
            "cat /proc/self/ns/uts >/dev/null; echo $$",
        ])
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8_lossy(&made.stdout)
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(listns_tests::scaled(Duration::from_millis(500)));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(w.pid() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut text = String::new();
    w.0.stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(w.0.wait().unwrap().success());
    attached.expect("the programs were attached");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(
        lines
            .iter()
            .all(|v| v["event"] == "created" && v["type"] == "uts"),
        "{text}"
    );
    assert!(
        lines.iter().any(|v| v["pid"] == pid),
        "the uts namespace of pid {pid} is reported:\n{text}"
    );
}
