//! Network namespaces that only a netns id names (docs/scan-coverage.md,
//! "Netns ids").
//!
//! Every network namespace keeps a table of ids for its peers; the kernel
//! fills it when a device or a message has to name a peer (a veth whose
//! other end lives there, `ip netns set`), and drops an entry when the peer
//! dies. An id in a table that matches no namespace the scan found names a
//! live netns that the scan cannot open: held by something no scan sees
//! (an fd in flight, a file opened under /proc/PID/net, ...).
//!
//! - The scanner's own netns: its table (`RTM_GETNSID` dump) against the
//!   ids that `netnsid::Collector` learnt for every netns found.
//! - Every other netns found: a netlink socket made in it by a helper
//!   thread that `setns`es there (the thread dies with its netns; the
//!   socket stays in it), its table dumped, and each id matched by asking
//!   that socket for the id of the namespaces found (`NETNSA_FD`),
//!   the scanner's own first, stopping once every id is matched.
//! - For each unmatched id, the devices of the table's netns that link to
//!   it (`RTM_GETLINK` dump, `IFLA_LINK_NETNSID`).
//!
//! No API turns an id into an fd, so such a netns gets no row: it is
//! listed in the scan's `unfound_netns`, once per table that names it.

use std::{
    collections::{BTreeSet, HashSet},
    io,
    os::fd::{AsFd, OwnedFd},
};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage},
    nsid::{NsidAttribute, NsidMessage},
};

use super::netnsid::{Collector, NetnsIds, NetnsidError, Peer};
use crate::{
    inventory::NsKey,
    stats::{NetDevice, ScanStats, UnfoundNetns},
    sys,
};

/// Network namespaces kept open for matching; beyond this many the tables
/// of namespaces other than the scanner's are not read (counted).
pub const KEEP: usize = 4096;

/// Reads the tables and records what matches nothing in `stats`.
pub fn read(nsids: &mut Collector, stats: &mut ScanStats, enter_others: bool) {
    let kept = std::mem::take(&mut nsids.kept);
    let own = std::fs::File::open("/proc/thread-self/ns/net").map(OwnedFd::from);
    let own_inum = own
        .as_ref()
        .ok()
        .and_then(|fd| sys::fstat(fd.as_fd()).ok())
        .map(|(inum, _)| inum);
    let found_ids: HashSet<i32> = nsids
        .found
        .iter()
        .filter_map(|(_, id)| id.map(|i| i as i32))
        .collect();
    // The scanner's own table.
    if let (Some(ids), Some(inum)) = (nsids.socket(), own_inum) {
        match unmatched_in(ids, inum, |_, table| {
            table.retain(|id| !found_ids.contains(id));
            Ok(())
        }) {
            Ok(found) => stats.unfound_netns.extend(found),
            Err(e) => {
                log::warn!("netns id table: {e}");
                stats.nsid_tables_failed += 1;
            }
        }
    }
    let Ok(own) = own else {
        return;
    };
    if !enter_others {
        return;
    }
    if nsids.too_many {
        stats.nsid_tables_failed += 1;
        log::warn!(
            "more than {KEEP} network namespaces: only the scanner's netns id table is read"
        );
        return;
    }
    // Every other table, from a helper thread that enters each netns.
    let others: Vec<&(NsKey, OwnedFd)> = kept
        .iter()
        .filter(|(k, _)| Some(k.inum) != own_inum)
        .collect();
    let (found, failed) = std::thread::scope(|s| {
        s.spawn(|| {
            let mut found = Vec::new();
            let mut failed = 0;
            for (key, fd) in &others {
                let r = nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| NetnsidError::Open(e.into()))
                    .and_then(|()| NetnsIds::open())
                    .and_then(|mut ids| {
                        unmatched_in(&mut ids, key.inum, |ids, table| {
                            match_by_fd(ids, table, &own, &kept)
                        })
                    });
                match r {
                    Ok(u) => found.extend(u),
                    Err(e) => {
                        log::warn!("netns id table of net:[{}]: {e}", key.inum);
                        failed += 1;
                    }
                }
            }
            (found, failed)
        })
        .join()
        .unwrap_or_else(|_| (Vec::new(), 1))
    });
    stats.unfound_netns.extend(found);
    stats.nsid_tables_failed += failed;
}

/// The ids in the table of the netns `ids` was opened in that `unmatched`
/// leaves in place, each with the devices that link to it.
fn unmatched_in(
    ids: &mut NetnsIds,
    inum: u64,
    unmatched: impl FnOnce(&mut NetnsIds, &mut BTreeSet<i32>) -> Result<(), NetnsidError>,
) -> Result<Vec<UnfoundNetns>, NetnsidError> {
    let mut table = dump_ids(ids)?;
    if table.is_empty() {
        return Ok(Vec::new());
    }
    unmatched(ids, &mut table)?;
    if table.is_empty() {
        return Ok(Vec::new());
    }
    let links = dump_links(ids)?;
    Ok(table
        .into_iter()
        .map(|nsid| UnfoundNetns {
            seen_from: inum,
            nsid: nsid as u32,
            links: links
                .iter()
                .filter(|(id, _)| *id == nsid)
                .map(|(_, d)| d.clone())
                .collect(),
        })
        .collect())
}

/// Removes from `table` the ids of the scanner's netns and of the
/// namespaces found, asking in windows until nothing is left.
fn match_by_fd(
    ids: &mut NetnsIds,
    table: &mut BTreeSet<i32>,
    own: &OwnedFd,
    kept: &[(NsKey, OwnedFd)],
) -> Result<(), NetnsidError> {
    let peers = std::iter::once(own).chain(kept.iter().map(|(_, fd)| fd));
    let peers: Vec<Peer<'_>> = peers.map(|fd| Peer::Fd(fd.as_fd())).collect();
    // The scanner's netns alone first: usually the only peer a container
    // has an id for.
    for chunk in std::iter::once(&peers[..1]).chain(peers[1..].chunks(super::netnsid::WINDOW)) {
        if table.is_empty() {
            break;
        }
        for answer in ids.query(chunk)? {
            if let Ok(Some(id)) = answer {
                table.remove(&(id as i32));
            }
        }
    }
    Ok(())
}

/// Every id in the table of the socket's netns (`ip netns list-id`).
fn dump_ids(ids: &mut NetnsIds) -> Result<BTreeSet<i32>, NetnsidError> {
    let msgs = dump(ids, RouteNetlinkMessage::GetNsId(NsidMessage::default()))?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewNsId(m) => m.attributes.iter().find_map(|a| match a {
                NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                _ => None,
            }),
            _ => None,
        })
        .collect())
}

/// (link netns id, device) of every device of the socket's netns that
/// links to a peer netns.
fn dump_links(ids: &mut NetnsIds) -> Result<Vec<(i32, NetDevice)>, NetnsidError> {
    let msgs = dump(ids, RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(m) => {
                let id = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::LinkNetNsId(id) => Some(*id),
                    _ => None,
                })?;
                let name = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                });
                Some((
                    id,
                    NetDevice {
                        ifindex: m.header.index,
                        name: name.unwrap_or_default(),
                    },
                ))
            }
            _ => None,
        })
        .collect())
}

/// Sends one dump request and collects the answers until `NLMSG_DONE`.
/// A message that does not decode is skipped (logged), not fatal.
fn dump(
    ids: &mut NetnsIds,
    payload: RouteNetlinkMessage,
) -> Result<Vec<RouteNetlinkMessage>, NetnsidError> {
    ids.seq = ids.seq.wrapping_add(1);
    let seq = ids.seq;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
    msg.finalize();
    let mut req = vec![0; msg.buffer_len()];
    msg.serialize(&mut req);
    ids.socket.send(&req, 0).map_err(NetnsidError::Send)?;
    // Dump datagrams are at most 32 KiB (netlink_dump's largest skb).
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        let n = match ids.socket.recv(&mut &mut buf[..], 0) {
            Ok(n) => n.min(buf.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(NetnsidError::Recv {
                    asked: 1,
                    answered: 0,
                    source,
                });
            }
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            let len = NetlinkBuffer::new_checked(data)
                .map_err(|e| NetnsidError::Decode(e.to_string()))?
                .length() as usize;
            let raw = &data[..len.min(data.len())];
            data = data.get((len + 3) & !3..).unwrap_or(&[]);
            let msg = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw) {
                Ok(m) => m,
                Err(e) => {
                    log::warn!("a netlink dump message did not decode: {e}");
                    continue;
                }
            };
            if msg.header.sequence_number != seq {
                continue;
            }
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(NetnsidError::Recv {
                        asked: 1,
                        answered: 0,
                        source: e.to_io(),
                    });
                }
                NetlinkPayload::InnerMessage(m) => out.push(m),
                _ => {}
            }
        }
    }
}
