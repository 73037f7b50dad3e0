//! `/proc/PID/mountinfo` (scan/mounts.rs): any bytes parse without a panic,
//! the counts add up, and a line written the way the kernel writes it, for
//! an nsfs mount at any path, reads back as exactly that mount.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use listns::fuzzing::{NsType, NsfsMount, netns_name, parse_mountinfo, unescape_mount_field};

/// fs/proc_namespace.c: `seq_escape(m, s, " \t\n\\")` writes those four as `\ooo`.
fn escape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    for &b in field {
        if b" \t\n\\".contains(&b) {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

#[derive(Arbitrary, Debug)]
struct Mount {
    ty: u8,
    inum: u64,
    path: Vec<u8>,
    /// Optional fields before the "-" (shared:N, master:N, ...).
    tags: Vec<(u8, u32)>,
    id: u32,
    parent: u32,
}

fuzz_target!(|data: &[u8]| {
    // Any bytes.
    let parsed = parse_mountinfo(data);
    let lines = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(parsed.mounts.len() + parsed.bad_lines <= lines);
    for m in &parsed.mounts {
        if let Some(name) = netns_name(&m.path) {
            assert!(!name.is_empty() && !name.contains(&b'/'));
            assert!(m.path.ends_with(name));
        }
    }
    // Unescaping only ever shortens a field.
    assert!(unescape_mount_field(data).len() <= data.len());

    // A kernel-written line reads back as the mount it describes.
    let mut u = Unstructured::new(data);
    let Ok(m) = Mount::arbitrary(&mut u) else {
        return;
    };
    // The kernel never writes a NUL (paths cannot hold one) or an empty mount point.
    if m.path.is_empty() || m.path.contains(&0) {
        return;
    }
    assert_eq!(unescape_mount_field(&escape(&m.path)), m.path);
    let ty = NsType::ALL[m.ty as usize % NsType::ALL.len()];
    let mut line = format!("{} {} 0:4 {ty}:[{}] ", m.id, m.parent, m.inum).into_bytes();
    line.extend(escape(&m.path));
    line.extend_from_slice(b" rw,nosuid,nodev,noexec,relatime");
    for (kind, n) in m.tags.iter().take(4) {
        let tag = ["shared", "master", "propagate_from"][*kind as usize % 3];
        line.extend(format!(" {tag}:{n}").into_bytes());
    }
    line.extend_from_slice(b" - nsfs nsfs rw\n");
    let mut file = b"22 1 0:21 / /proc rw,nosuid - proc proc rw\n".to_vec();
    file.extend(&line);
    let got = parse_mountinfo(&file);
    assert_eq!(got.bad_lines, 0, "{:?}", String::from_utf8_lossy(&line));
    assert_eq!(
        got.mounts,
        vec![NsfsMount {
            ty,
            inum: m.inum,
            path: m.path
        }]
    );
});
