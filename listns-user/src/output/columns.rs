//! The columns: lsns's thirteen, with lsns's names, meanings and types, then
//! listns's own (ID, HOLDERS, CONTAINER, NAME, CREATOR). How each cell is computed
//! lives in `cells`; table, JSON, tree and `-Q` all read cells from there.

pub use super::cells::{Cells, Value, command, holders_summary, nprocs};
use crate::filter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Ns,
    Type,
    Path,
    Nprocs,
    Pid,
    Ppid,
    Command,
    Uid,
    User,
    Netnsid,
    Nsfs,
    Pns,
    Ons,
    Id,
    Holders,
    Container,
    Name,
    Creator,
}

impl Column {
    /// lsns's columns in lsns's order (`--output-all`, `-H`), then listns's.
    pub const ALL: [Column; 18] = [
        Column::Ns,
        Column::Type,
        Column::Path,
        Column::Nprocs,
        Column::Pid,
        Column::Ppid,
        Column::Command,
        Column::Uid,
        Column::User,
        Column::Netnsid,
        Column::Nsfs,
        Column::Pns,
        Column::Ons,
        Column::Id,
        Column::Holders,
        Column::Container,
        Column::Name,
        Column::Creator,
    ];

    /// lsns's default columns, plus HOLDERS.
    pub const DEFAULT: [Column; 7] = [
        Column::Ns,
        Column::Type,
        Column::Nprocs,
        Column::Pid,
        Column::User,
        Column::Command,
        Column::Holders,
    ];

    /// With `-t net` lsns adds NETNSID and NSFS before COMMAND.
    pub const DEFAULT_NET: [Column; 9] = [
        Column::Ns,
        Column::Type,
        Column::Nprocs,
        Column::Pid,
        Column::User,
        Column::Netnsid,
        Column::Nsfs,
        Column::Command,
        Column::Holders,
    ];

    /// The default columns for `listns NAMESPACE`, whose rows are processes.
    pub const DEFAULT_PROCESSES: [Column; 4] =
        [Column::Pid, Column::Ppid, Column::User, Column::Command];

    pub fn name(self) -> &'static str {
        match self {
            Column::Ns => "NS",
            Column::Type => "TYPE",
            Column::Path => "PATH",
            Column::Nprocs => "NPROCS",
            Column::Pid => "PID",
            Column::Ppid => "PPID",
            Column::Command => "COMMAND",
            Column::Uid => "UID",
            Column::User => "USER",
            Column::Netnsid => "NETNSID",
            Column::Nsfs => "NSFS",
            Column::Pns => "PNS",
            Column::Ons => "ONS",
            Column::Id => "ID",
            Column::Holders => "HOLDERS",
            Column::Container => "CONTAINER",
            Column::Name => "NAME",
            Column::Creator => "CREATOR",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Column::Ns => "namespace identifier (inode number)",
            Column::Type => "kind of namespace",
            Column::Path => "path to the namespace",
            Column::Nprocs => "number of processes in the namespace",
            Column::Pid => "lowest PID in the namespace",
            Column::Ppid => "PPID of the PID",
            Column::Command => "command line of the PID",
            Column::Uid => "UID of the PID (no process: the user namespace's creator)",
            Column::User => "username of the PID (no process: the user namespace's creator)",
            Column::Netnsid => "namespace ID as used by network subsystem",
            Column::Nsfs => "nsfs mountpoint (usually used network subsystem)",
            Column::Pns => "parent namespace identifier (inode number)",
            Column::Ons => "owner namespace identifier (inode number)",
            Column::Id => "64-bit namespace id (NS_GET_ID, Linux 6.18+)",
            Column::Holders => {
                "what keeps it alive: procs, threads, fds, sockets, bind mounts, child namespaces"
            }
            Column::Container => {
                "container of a holding process: name (short id), or runtime:id when unnamed"
            }
            Column::Name => "ip netns names",
            Column::Creator => {
                "who created it, where a watcher saw it (listns --from): comm[pid] and the call"
            }
        }
    }

    pub fn from_name(name: &str) -> Option<Column> {
        Column::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }

    /// JSON key: the name in lowercase, as lsns does.
    pub fn key(self) -> String {
        self.name().to_ascii_lowercase()
    }

    /// The type `-J` gives the cell and `-Q` compares it as (lsns's
    /// SCOLS_JSON_NUMBER columns are numbers).
    pub fn kind(self) -> filter::Kind {
        match self {
            Column::Ns
            | Column::Nprocs
            | Column::Pid
            | Column::Ppid
            | Column::Uid
            | Column::Pns
            | Column::Ons
            | Column::Id => filter::Kind::Number,
            _ => filter::Kind::String,
        }
    }

    /// The column list a `-Q` expression is checked against.
    pub fn filter_columns() -> Vec<filter::Column> {
        Column::ALL
            .iter()
            .map(|c| filter::Column::new(c.name(), c.kind()))
            .collect()
    }

    pub fn right_aligned(self) -> bool {
        matches!(
            self,
            Column::Ns
                | Column::Nprocs
                | Column::Pid
                | Column::Ppid
                | Column::Uid
                | Column::Netnsid
                | Column::Pns
                | Column::Ons
                | Column::Id
        )
    }

    /// Whether a table that is too wide for the terminal may cut this
    /// column: free text only, never an identifier or a number.
    pub fn truncatable(self) -> bool {
        matches!(
            self,
            Column::Command
                | Column::Path
                | Column::User
                | Column::Nsfs
                | Column::Holders
                | Column::Container
                | Column::Name
                | Column::Creator
        )
    }
}

/// Parses the last `-o` list: names replace `defaults`, `+NAMES` append
/// to them, as lsns does. Names match in any case.
pub fn parse_list(list: Option<&str>, defaults: &[Column]) -> Result<Vec<Column>, String> {
    let Some(list) = list else {
        return Ok(defaults.to_vec());
    };
    let (mut cols, list) = match list.strip_prefix('+') {
        Some(rest) => (defaults.to_vec(), rest),
        None => (Vec::new(), list),
    };
    for n in list.split(',') {
        cols.push(
            Column::from_name(n)
                .ok_or_else(|| format!("unknown column: {n} (see --list-columns)"))?,
        );
    }
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_lists() {
        let d = &Column::DEFAULT;
        assert_eq!(parse_list(None, d).unwrap(), d.to_vec());
        assert_eq!(
            parse_list(Some("ns,Holders"), d).unwrap(),
            vec![Column::Ns, Column::Holders]
        );
        let plus = parse_list(Some("+ID,uid"), d).unwrap();
        assert_eq!(plus[..d.len()], d[..]);
        assert_eq!(plus[d.len()..], [Column::Id, Column::Uid]);
        let err = parse_list(Some("NS,bogus"), d).unwrap_err();
        assert!(err.contains("unknown column: bogus"), "{err}");
    }

    #[test]
    fn lsns_columns_come_first_in_lsns_order() {
        let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names[..13],
            [
                "NS", "TYPE", "PATH", "NPROCS", "PID", "PPID", "COMMAND", "UID", "USER", "NETNSID",
                "NSFS", "PNS", "ONS"
            ]
        );
    }

    #[test]
    fn identifiers_are_never_truncated() {
        for c in Column::ALL {
            if c.kind() == filter::Kind::Number || matches!(c, Column::Type | Column::Netnsid) {
                assert!(!c.truncatable(), "{c:?}");
            }
        }
        assert!(Column::Command.truncatable());
    }
}
