//! `--classic`: the view of the original listns.py. First each `ip netns`
//! entry (PID `--`), then for each process (thread-group leaders) one row per
//! namespace type in which it is not in the host's initial namespace.
//! PID right-aligned in 10 columns, two spaces, the namespace left-aligned
//! in 20, two spaces, the command (cut at 60 characters). `**` marks a
//! network namespace that also has an `ip netns` name; `[docker] ` (or the
//! other runtime's name) goes before the command of a containerised process.

use std::io::{self, Write};

use super::sanitize::escape_bytes;
use crate::{
    inventory::{Holder, Inventory},
    ns::NsType,
};

pub fn render(out: &mut impl Write, inv: &Inventory) -> io::Result<()> {
    writeln!(out, "{:>10}  {:20}  Thread/Command", "PID", "Namespace")?;
    for (key, ns) in inv.iter() {
        if key.ty != NsType::Net {
            continue;
        }
        for name in &ns.netns_names {
            writeln!(
                out,
                "{:>10}  {:20}  created by ip netns add {}",
                "--",
                format!("net:[{}]", key.inum),
                escape_bytes(name.as_bytes())
            )?;
        }
    }
    // pid -> [(type, inode, named)] from every namespace's own-link holders.
    let mut rows: std::collections::BTreeMap<u32, Vec<(NsType, u64, bool)>> = Default::default();
    for (key, ns) in inv.iter() {
        if inv.is_initial(key) {
            continue;
        }
        let named = key.ty == NsType::Net && !ns.netns_names.is_empty();
        for h in &ns.holders {
            if let Holder::Process { pid, link } = h
                && *link == key.ty.name()
            {
                rows.entry(*pid)
                    .or_default()
                    .push((key.ty, key.inum, named));
            }
        }
    }
    for (pid, mut list) in rows {
        list.sort();
        let Some(p) = inv.processes.get(&pid) else {
            continue;
        };
        let raw = if p.cmdline.is_empty() {
            p.comm.as_bytes().to_vec()
        } else {
            super::columns::command(p)
        };
        let cmd: String = escape_bytes(&raw).chars().take(60).collect();
        let mark = p
            .container
            .as_ref()
            .map(|c| format!("[{}] ", c.runtime))
            .unwrap_or_default();
        for (ty, inum, named) in list {
            let ns = format!("{ty}:[{inum}]{}", if named { "**" } else { "" });
            writeln!(out, "{pid:>10}  {ns:20}  {mark}{cmd}")?;
        }
    }
    Ok(())
}
