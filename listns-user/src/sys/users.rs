//! The user and group databases: names for the USER column, the group of
//! `--api-group`.
//!
//! A dynamically linked listns asks the C library, and so NSS: /etc/passwd,
//! LDAP, systemd's dynamic users. A statically linked one (the release
//! tarball, the container image) must not: glibc loads NSS modules such as
//! `libnss_systemd` with dlopen, which a static binary cannot do safely
//! (it crashes on hosts whose nsswitch.conf names one). It reads
//! /etc/passwd and /etc/group itself instead; a uid that is not there is
//! shown as its number, as for a user no database knows.

use std::sync::OnceLock;

/// The name of `uid`, or None when no user database (as above) has it.
pub fn name_of(uid: u32) -> Option<String> {
    if cfg!(target_feature = "crt-static") {
        static PASSWD: OnceLock<String> = OnceLock::new();
        let text =
            PASSWD.get_or_init(|| std::fs::read_to_string("/etc/passwd").unwrap_or_default());
        from_passwd(text, uid).map(str::to_owned)
    } else {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    }
}

/// The id of group `name` (or `name` itself when it is a number), None
/// when no group database has it.
pub fn group_id(name: &str) -> std::io::Result<Option<u32>> {
    if let Ok(gid) = name.parse() {
        return Ok(Some(gid));
    }
    if cfg!(target_feature = "crt-static") {
        let text = std::fs::read_to_string("/etc/group")?;
        Ok(entries(&text).find(|&(n, _)| n == name).map(|(_, gid)| gid))
    } else {
        Ok(nix::unistd::Group::from_name(name)?.map(|g| g.gid.as_raw()))
    }
}

/// The first entry of passwd(5) text with this uid.
fn from_passwd(text: &str, uid: u32) -> Option<&str> {
    entries(text)
        .find(|&(_, id)| id == uid)
        .map(|(name, _)| name)
}

/// `(name, id)` of each entry of passwd(5) or group(5) text
/// (`name:password:id:...`); comments, NIS `+`/`-` lines and malformed
/// lines are skipped.
fn entries(text: &str) -> impl Iterator<Item = (&str, u32)> {
    text.lines().filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let id = fields.next()?.parse().ok()?;
        (!name.is_empty() && !name.starts_with(['#', '+', '-'])).then_some((name, id))
    })
}

#[cfg(test)]
mod tests {
    use super::{entries, from_passwd};

    const PASSWD: &str = "\
# a comment:x:7:7
root:x:0:0:root:/root:/bin/bash
+nis:x:42:42::/:
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken:x:notanumber:1::/:
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
alias:x:1000:1000::/home/alice:/bin/sh
";

    #[test]
    fn names_from_passwd_text() {
        assert_eq!(from_passwd(PASSWD, 0), Some("root"));
        assert_eq!(from_passwd(PASSWD, 1), Some("daemon"));
        // The first of two entries with one uid, as getpwuid(3) answers.
        assert_eq!(from_passwd(PASSWD, 1000), Some("alice"));
        // Comments, NIS lines and unknown uids have no name.
        assert_eq!(from_passwd(PASSWD, 7), None);
        assert_eq!(from_passwd(PASSWD, 42), None);
        assert_eq!(from_passwd(PASSWD, 54321), None);
        assert_eq!(from_passwd("", 0), None);
    }

    #[test]
    fn group_entries() {
        let group = "root:x:0:\nlistns:x:998:alice,bob\n# x:x:5:\n";
        let all: Vec<_> = entries(group).collect();
        assert_eq!(all, [("root", 0), ("listns", 998)]);
    }
}
