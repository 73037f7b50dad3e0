//! nsfs bind mounts, read from `/proc/PID/mountinfo` (proc(5)):
//!
//! `36 35 0:4 net:[4026532288] /run/netns/demo rw,relatime shared:5 - nsfs nsfs rw`
//!
//! For nsfs the root field is the namespace (`TYPE:[INODE]`) and the mount
//! point is where it is bound, with space, tab, newline and backslash escaped
//! as octal (`\040`, `\011`, `\012`, `\134`).

use crate::ns::{self, NsType};

/// One nsfs mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsfsMount {
    pub ty: NsType,
    pub inum: u64,
    /// The mount point, unescaped, as raw bytes (it need not be UTF-8).
    pub path: Vec<u8>,
}

/// What a mountinfo file held: its nsfs mounts, and how many lines could
/// not be parsed.
#[derive(Debug, Default)]
pub struct Parsed {
    pub mounts: Vec<NsfsMount>,
    /// Mount points of `proc` mounts, unescaped; not those mounted with
    /// `hidepid=` or `subset=pid`, whose listing can be empty while their
    /// pid namespace is not (systemd's `ProtectProc=`, `ProcSubset=`).
    pub procs: Vec<Vec<u8>>,
    pub bad_lines: usize,
}

/// Parses a whole mountinfo file, keeping the nsfs mounts.
pub fn parse(content: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    for line in content.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(Some(Ok(m))) => out.mounts.push(m),
            Ok(Some(Err(path))) => out.procs.push(path),
            Ok(None) => {}
            Err(()) => out.bad_lines += 1,
        }
    }
    out
}

/// `Ok(None)` for a well-formed line that is neither an nsfs mount nor a
/// `proc` mount (`Ok(Some(Err(mount point)))`).
fn parse_line(line: &[u8]) -> Result<Option<Result<NsfsMount, Vec<u8>>>, ()> {
    let mut fields = line.split(|&b| b == b' ');
    let _id = fields.next().ok_or(())?;
    let _parent = fields.next().ok_or(())?;
    let _dev = fields.next().ok_or(())?;
    let root = fields.next().ok_or(())?;
    let mount_point = fields.next().ok_or(())?;
    let _opts = fields.next().ok_or(())?;
    // Optional fields up to the "-" separator, then fstype.
    let fstype = loop {
        match fields.next() {
            Some(b"-") => break fields.next().ok_or(())?,
            Some(_) => {}
            None => return Err(()),
        }
    };
    if fstype == b"proc" {
        let _source = fields.next();
        let hiding = fields
            .next()
            .unwrap_or_default()
            .split(|&b| b == b',')
            .any(|o| {
                o.starts_with(b"subset=")
                    || (o.starts_with(b"hidepid=") && !matches!(o, b"hidepid=0" | b"hidepid=off"))
            });
        return Ok(if hiding {
            None
        } else {
            Some(Err(unescape(mount_point)))
        });
    }
    if fstype != b"nsfs" {
        return Ok(None);
    }
    let (ty, inum) = ns::parse_link(&unescape(root)).ok_or(())?;
    Ok(Some(Ok(NsfsMount {
        ty,
        inum,
        path: unescape(mount_point),
    })))
}

/// Undoes the kernel's `\ooo` escaping; a backslash not followed by three
/// octal digits is kept as it is.
pub fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && i + 3 < field.len()
            && field[i + 1..=i + 3]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (field[i + 1] - b'0') as u32 * 64
                + (field[i + 2] - b'0') as u32 * 8
                + (field[i + 3] - b'0') as u32;
            if v <= 0xff {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// A cgroup filesystem mount.
#[derive(Debug, PartialEq, Eq)]
pub struct CgroupMount {
    pub mount_point: std::path::PathBuf,
    /// The cgroup mounted there (`/` for the whole hierarchy).
    pub root: std::path::PathBuf,
    /// A v1 hierarchy's super options (its controllers, `name=...`, `rw`);
    /// `None` for cgroup2.
    pub controllers: Option<Vec<String>>,
}

/// The cgroup and cgroup2 mounts of a mountinfo file, in its order.
pub fn cgroup_mounts(content: &[u8]) -> Vec<CgroupMount> {
    use std::os::unix::ffi::OsStringExt;
    let path = |b: &[u8]| std::path::PathBuf::from(std::ffi::OsString::from_vec(unescape(b)));
    let mut out = Vec::new();
    for line in content.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        let (Some(root), Some(point), Some(fstype)) =
            (fields.get(3), fields.get(4), fields.get(sep + 1))
        else {
            continue;
        };
        let controllers = match *fstype {
            b"cgroup2" => None,
            b"cgroup" => Some(
                fields
                    .get(sep + 3)
                    .unwrap_or(&&b""[..])
                    .split(|&b| b == b',')
                    .map(|o| String::from_utf8_lossy(o).into_owned())
                    .collect(),
            ),
            _ => continue,
        };
        out.push(CgroupMount {
            mount_point: path(point),
            root: path(root),
            controllers,
        });
    }
    out
}

/// Whether an nsfs mount point names an `ip netns` entry; gives the name.
pub fn netns_name(path: &[u8]) -> Option<&[u8]> {
    for dir in [&b"/run/netns/"[..], b"/var/run/netns/"] {
        if let Some(name) = path.strip_prefix(dir)
            && !name.is_empty()
            && !name.contains(&b'/')
        {
            return Some(name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As this kind of host has them: v1 controllers (one pair joined),
    /// a named hierarchy and an empty cgroup2 mount.
    #[test]
    fn cgroup_mounts_of_a_hybrid_host() {
        let info = b"\
30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:11 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 /x\\040y /mnt/mem rw - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";
        let m = cgroup_mounts(info);
        let got: Vec<(&str, &str, Option<Vec<&str>>)> = m
            .iter()
            .map(|m| {
                (
                    m.mount_point.to_str().unwrap(),
                    m.root.to_str().unwrap(),
                    m.controllers
                        .as_ref()
                        .map(|c| c.iter().map(String::as_str).collect()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("/sys/fs/cgroup/unified", "/", None),
                (
                    "/sys/fs/cgroup/cpu,cpuacct",
                    "/",
                    Some(vec!["rw", "cpu", "cpuacct"])
                ),
                ("/mnt/mem", "/x y", Some(vec!["rw", "memory"])),
                (
                    "/sys/fs/cgroup/systemd",
                    "/",
                    Some(vec!["rw", "xattr", "name=systemd"])
                ),
            ]
        );
    }

    const SAMPLE: &[u8] = b"\
21 26 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
22 26 0:20 / /run/p0 rw,relatime - proc proc rw,hidepid=0
23 26 0:20 / /run/p1 rw,relatime - proc proc rw,hidepid=invisible
24 26 0:20 / /run/p2 rw,relatime - proc proc rw,subset=pid
412 30 0:4 net:[4026532288] /run/netns/demo rw,nosuid,nodev,noexec,relatime shared:230 - nsfs nsfs rw
413 30 0:4 user:[4026532300] /tmp/my\\040dir/u\\134x rw,relatime - nsfs nsfs rw
414 30 0:4 mnt:[4026532301] /tmp/odd\\9x\\04 rw - nsfs nsfs rw
this line is broken
415 30 0:4 net:[12 /tmp/bad rw - nsfs nsfs rw
416 30 0:4 uts:[4026532302] /tmp/\\377name rw master:1 shared:2 - nsfs nsfs rw
";

    #[test]
    fn finds_nsfs_mounts_with_escapes() {
        let p = parse(SAMPLE);
        assert_eq!(p.bad_lines, 2, "the broken line and the bad root");
        // Not the proc mounts whose listing may hide pids.
        assert_eq!(p.procs, vec![b"/proc".to_vec(), b"/run/p0".to_vec()]);
        let got: Vec<_> = p
            .mounts
            .iter()
            .map(|m| (m.ty, m.inum, m.path.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (NsType::Net, 4026532288, b"/run/netns/demo".to_vec()),
                (NsType::User, 4026532300, b"/tmp/my dir/u\\x".to_vec()),
                (NsType::Mnt, 4026532301, b"/tmp/odd\\9x\\04".to_vec()),
                (NsType::Uts, 4026532302, b"/tmp/\xffname".to_vec()),
            ]
        );
    }

    #[test]
    fn netns_names() {
        assert_eq!(netns_name(b"/run/netns/demo"), Some(&b"demo"[..]));
        assert_eq!(netns_name(b"/var/run/netns/x y"), Some(&b"x y"[..]));
        assert_eq!(netns_name(b"/run/netns/"), None);
        assert_eq!(netns_name(b"/run/netns/a/b"), None);
        assert_eq!(netns_name(b"/tmp/netns/a"), None);
    }
}
