//! NETNSID: the id that the scanning process's network namespace has
//! assigned to another network namespace ("peer"), as `lsns` shows it.
//!
//! A netns id is local: each network namespace keeps its own table of ids
//! for its peers (`ip netns set NAME ID`, or assigned by the kernel when a
//! veth/macvlan/netlink message needs to name a peer). `lsns`
//! (util-linux, sys-utils/lsns.c `get_netnsid`) asks rtnetlink with one
//! `RTM_GETNSID` request per namespace, naming the peer by an open fd
//! (`NETNSA_FD`), and reads `NETNSA_NSID` from the `RTM_NEWNSID` answer;
//! `NETNSA_NSID_NOT_ASSIGNED` (-1) prints as "unassigned", a failure as
//! nothing. This module does the same with `netlink-packet-route`'s typed
//! NSID messages over one `netlink-sys` socket:
//!
//! - One socket for the whole scan ([`NetnsIds::open`]). The answers are
//!   the ids of the namespace the socket was created in, so open it from the
//!   scanning thread before any `setns`.
//! - A batch API ([`NetnsIds::query`]): requests go out up to [`WINDOW`] at a
//!   time in one `send`, each answer is matched to its request by sequence
//!   number. 500 namespaces cost about 8 sends and 500 receives.
//! - `None` when the peer has no id here, `Some(id)` when it has one, an
//!   error per peer when the kernel refused that one (EINVAL: not a netns
//!   fd; ESRCH: no such pid). Only socket failures fail the whole batch.
//! - A receive timeout bounds every wait: the kernel answers synchronously,
//!   so a missing answer means something is wrong, not slow.
//!
//! Caching per namespace (lsns keys its cache by inode) is the caller's:
//! the scan knows which fds name the same namespace.

use std::{
    collections::HashMap,
    io,
    os::fd::{AsRawFd, BorrowedFd},
    time::Duration,
};

use netlink_packet_core::{
    NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    RouteNetlinkMessage,
    nsid::{NsidAttribute, NsidMessage},
};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

/// Requests sent in one `send` before their answers are read. Each answer
/// takes well under 1 KiB of the socket's receive buffer (default 208 KiB),
/// so a window of this size never overflows it.
pub const WINDOW: usize = 64;

/// How long one answer may take before the batch fails.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);

/// A network namespace to ask about.
#[derive(Clone, Copy, Debug)]
pub enum Peer<'a> {
    /// An open fd of the namespace (nsfs file: /proc/PID/ns/net, a bind
    /// mount such as /run/netns/NAME, or a socket's SIOCGSKNS answer).
    Fd(BorrowedFd<'a>),
    /// The network namespace of a process, by pid in the scanner's pid
    /// namespace. Racy (the pid may be reused); prefer [`Peer::Fd`].
    Pid(u32),
}

/// Why the socket could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum NetnsidError {
    #[error("cannot open a NETLINK_ROUTE socket")]
    Open(#[source] io::Error),
    #[error("cannot send RTM_GETNSID requests")]
    Send(#[source] io::Error),
    #[error("no answer to RTM_GETNSID ({answered} of {asked} answered)")]
    Recv {
        asked: usize,
        answered: usize,
        #[source]
        source: io::Error,
    },
    #[error("a netlink answer could not be decoded: {0}")]
    Decode(String),
}

/// What the kernel said about one peer: its id, `None` when it has none
/// here, or the kernel's error for that peer alone.
pub type Answer = io::Result<Option<u32>>;

/// One rtnetlink socket that answers NSID questions for the namespace it
/// was opened in.
pub struct NetnsIds {
    pub(super) socket: Socket,
    pub(super) seq: u32,
    buf: Vec<u8>,
}

impl NetnsIds {
    /// Opens and binds the socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NetnsidError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetnsidError::Open)?;
        socket.bind_auto().map_err(NetnsidError::Open)?;
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(
                RECV_TIMEOUT.as_secs() as _,
                RECV_TIMEOUT.subsec_micros() as _,
            ),
        )
        .map_err(|e| NetnsidError::Open(e.into()))?;
        Ok(NetnsIds {
            socket,
            seq: 0,
            buf: vec![0; 8192],
        })
    }

    /// The id of one peer: `Ok(None)` when it has none here.
    pub fn get(&mut self, peer: Peer<'_>) -> Result<Option<u32>, NetnsidError> {
        match self.query(&[peer])?.pop() {
            Some(Ok(id)) => Ok(id),
            Some(Err(e)) => Err(NetnsidError::Recv {
                asked: 1,
                answered: 1,
                source: e,
            }),
            None => unreachable!("query answers every peer"),
        }
    }

    /// The ids of many peers, in order. Each entry is `Ok(Some(id))`,
    /// `Ok(None)` (no id assigned) or the kernel's error for that peer.
    pub fn query(&mut self, peers: &[Peer<'_>]) -> Result<Vec<Answer>, NetnsidError> {
        let mut out = Vec::with_capacity(peers.len());
        for chunk in peers.chunks(WINDOW) {
            self.window(chunk, &mut out)?;
        }
        Ok(out)
    }

    fn window(&mut self, peers: &[Peer<'_>], out: &mut Vec<Answer>) -> Result<(), NetnsidError> {
        let first = self.seq.wrapping_add(1);
        let mut req = Vec::new();
        for (i, peer) in peers.iter().enumerate() {
            let msg = request(first.wrapping_add(i as u32), *peer);
            let start = req.len();
            req.resize(start + msg.buffer_len(), 0);
            msg.serialize(&mut req[start..]);
        }
        self.seq = first.wrapping_add(peers.len() as u32 - 1);
        let sent = self.socket.send(&req, 0).map_err(NetnsidError::Send)?;
        if sent != req.len() {
            return Err(NetnsidError::Send(io::Error::other(format!(
                "sent {sent} of {} bytes",
                req.len()
            ))));
        }

        let mut answers: HashMap<u32, Answer> = HashMap::new();
        while answers.len() < peers.len() {
            let n = loop {
                match self.socket.recv(&mut &mut self.buf[..], 0) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(NetnsidError::Recv {
                            asked: peers.len(),
                            answered: answers.len(),
                            source: e,
                        });
                    }
                }
            };
            for (seq, answer) in parse_answers(&self.buf[..n.min(self.buf.len())])? {
                // Answers to an earlier, abandoned batch carry old numbers.
                let offset = seq.wrapping_sub(first) as usize;
                if offset < peers.len() {
                    answers.insert(seq, answer);
                }
            }
        }
        for i in 0..peers.len() {
            let seq = first.wrapping_add(i as u32);
            out.push(answers.remove(&seq).expect("every seq answered"));
        }
        Ok(())
    }
}

/// NETNSID for a scan: network namespaces are handed in with an open fd
/// as the scan opens them, asked in windows of [`WINDOW`] (so that no more
/// than that many fds wait open), and the answers collected.
pub struct Collector {
    /// Opened at the first namespace; `Err` once opening failed.
    ids: Option<Result<NetnsIds, ()>>,
    pending: Vec<(crate::inventory::NsKey, std::os::fd::OwnedFd)>,
    /// The namespaces asked, kept open (up to [`super::nsid_tables::KEEP`])
    /// for matching the netns id tables (`nsid_tables`).
    pub kept: Vec<(crate::inventory::NsKey, std::os::fd::OwnedFd)>,
    /// More namespaces than that were found: the tables are not read.
    pub too_many: bool,
    /// Every namespace asked and its id (`None`: unassigned).
    pub found: Vec<(crate::inventory::NsKey, Option<u32>)>,
    /// Namespaces whose id could not be asked for.
    pub failed: usize,
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector {
    pub fn new() -> Self {
        Collector {
            ids: None,
            pending: Vec::new(),
            kept: Vec::new(),
            too_many: false,
            found: Vec::new(),
            failed: 0,
        }
    }

    /// Asks for the id of the network namespace `fd` is open on.
    pub fn push(&mut self, key: crate::inventory::NsKey, fd: std::os::fd::OwnedFd) {
        self.pending.push((key, fd));
        if self.pending.len() >= WINDOW {
            self.flush();
        }
    }

    /// Asks for what is pending; the fds close.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let ids = self.ids.get_or_insert_with(|| {
            NetnsIds::open().map_err(|e| log::warn!("NETNSID unavailable: {e}"))
        });
        let Ok(ids) = ids else {
            self.failed += pending.len();
            return;
        };
        let peers: Vec<Peer<'_>> = pending
            .iter()
            .map(|(_, fd)| Peer::Fd(std::os::fd::AsFd::as_fd(fd)))
            .collect();
        match ids.query(&peers) {
            Ok(answers) => {
                for ((key, _), answer) in pending.iter().zip(answers) {
                    match answer {
                        Ok(id) => self.found.push((*key, id)),
                        Err(_) => self.failed += 1,
                    }
                }
            }
            Err(e) => {
                log::warn!("NETNSID: {e}");
                self.failed += pending.len();
            }
        }
        if self.kept.len() + pending.len() <= super::nsid_tables::KEEP {
            self.kept.extend(pending);
        } else {
            self.too_many = true;
        }
    }

    /// The socket opened for the scan, if it opened.
    pub fn socket(&mut self) -> Option<&mut NetnsIds> {
        let ids = self.ids.get_or_insert_with(|| {
            NetnsIds::open().map_err(|e| log::warn!("NETNSID unavailable: {e}"))
        });
        ids.as_mut().ok()
    }
}

/// An `RTM_GETNSID` request naming one peer.
fn request(seq: u32, peer: Peer<'_>) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut nsid = NsidMessage::default();
    nsid.attributes.push(match peer {
        Peer::Fd(fd) => NsidAttribute::Fd(fd.as_raw_fd() as u32),
        Peer::Pid(pid) => NsidAttribute::Pid(pid),
    });
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetNsId(nsid)),
    );
    msg.finalize();
    msg
}

/// The (sequence number, answer) pairs in one received datagram. Messages
/// other than `RTM_NEWNSID` and `NLMSG_ERROR` are skipped.
fn parse_answers(mut data: &[u8]) -> Result<Vec<(u32, Answer)>, NetnsidError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = NetlinkBuffer::new_checked(data)
            .map_err(|e| NetnsidError::Decode(e.to_string()))?
            .length() as usize;
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[..len])
            .map_err(|e| NetnsidError::Decode(e.to_string()))?;
        let seq = msg.header.sequence_number;
        match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(m)) => {
                let id = m.attributes.iter().find_map(|a| match a {
                    NsidAttribute::Id(id) => Some(*id),
                    _ => None,
                });
                out.push((seq, Ok(id.and_then(assigned))));
            }
            NetlinkPayload::Error(e) if e.code.is_some() => out.push((seq, Err(e.to_io()))),
            _ => {}
        }
        // Messages are 4-byte aligned within a datagram.
        let step = (len + 3) & !3;
        data = data.get(step..).unwrap_or(&[]);
    }
    Ok(out)
}

/// `NETNSA_NSID_NOT_ASSIGNED` is -1; any negative id means "none".
fn assigned(id: i32) -> Option<u32> {
    u32::try_from(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::ErrorMessage;
    use std::num::NonZeroI32;

    fn answer(seq: u32, payload: NetlinkPayload<RouteNetlinkMessage>) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.sequence_number = seq;
        let mut msg = NetlinkMessage::new(header, payload);
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        buf
    }

    fn newnsid(seq: u32, id: i32) -> Vec<u8> {
        let mut m = NsidMessage::default();
        m.attributes.push(NsidAttribute::Id(id));
        answer(
            seq,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(m)),
        )
    }

    #[test]
    fn request_is_getnsid_with_the_fd() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&f);
        let msg = request(9, Peer::Fd(fd));
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        // nlmsghdr (16) + rtgenmsg padded (4) + one u32 attribute (8).
        assert_eq!(buf.len(), 28);
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), 90); // RTM_GETNSID
        assert_eq!(u32::from_ne_bytes(buf[8..12].try_into().unwrap()), 9);
        assert_eq!(u16::from_ne_bytes([buf[22], buf[23]]), 3); // NETNSA_FD
        assert_eq!(
            i32::from_ne_bytes(buf[24..28].try_into().unwrap()),
            fd.as_raw_fd()
        );
    }

    #[test]
    fn answers_assigned_unassigned_and_errors() {
        let mut data = newnsid(1, 7);
        data.extend(newnsid(2, -1));
        let mut err = ErrorMessage::default();
        err.code = NonZeroI32::new(-libc::EINVAL);
        data.extend(answer(3, NetlinkPayload::Error(err)));
        let got = parse_answers(&data).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, 1);
        assert_eq!(got[0].1.as_ref().unwrap(), &Some(7));
        assert_eq!(got[1].1.as_ref().unwrap(), &None);
        assert_eq!(
            got[2].1.as_ref().unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
    }

    #[test]
    fn truncated_answer_is_a_decode_error() {
        let data = newnsid(1, 7);
        assert!(matches!(
            parse_answers(&data[..10]),
            Err(NetnsidError::Decode(_))
        ));
    }

    #[test]
    fn own_netns_and_a_bad_fd_on_the_live_kernel() {
        // Unprivileged: any user may ask about its own netns. Whether the
        // kernel gives us a NETLINK_ROUTE socket is asked directly.
        let socket = Socket::new(NETLINK_ROUTE).map_err(|e| e.to_string());
        if !listns_skip::require(
            socket.is_ok(),
            format_args!(
                "no NETLINK_ROUTE socket here: {}",
                socket.err().unwrap_or_default()
            ),
        ) {
            return;
        }
        let mut ids = NetnsIds::open().expect("NETLINK_ROUTE works, NetnsIds::open fails");
        let own = std::fs::File::open("/proc/self/ns/net").unwrap();
        let not_ns = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsFd;
        let got = ids
            .query(&[Peer::Fd(own.as_fd()), Peer::Fd(not_ns.as_fd())])
            .unwrap();
        // A namespace has no id for itself unless one was set by hand.
        assert!(got[0].is_ok(), "{:?}", got[0]);
        assert_eq!(
            got[1].as_ref().unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
        // A large batch over several windows answers in order.
        let many: Vec<Peer> = (0..WINDOW * 3 + 5)
            .map(|i| {
                if i % 2 == 0 {
                    Peer::Fd(own.as_fd())
                } else {
                    Peer::Fd(not_ns.as_fd())
                }
            })
            .collect();
        let got = ids.query(&many).unwrap();
        assert_eq!(got.len(), many.len());
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.is_ok(), i % 2 == 0, "entry {i}: {r:?}");
        }
    }
}
