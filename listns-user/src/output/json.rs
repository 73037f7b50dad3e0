//! `-J`: `{"namespaces": [...], "scan": {...}}`, the contract's
//! `ListDocument`, written row by row as it is serialized. lsns's keys (the
//! column names in lower case), numbers as numbers, an empty cell as
//! `null`; with `-T`, a row's children in the tree nested under
//! `children`, as lsns nests them. Text from outside is carried exactly
//! (see `contract::exact`).

use std::io::{self, Write};

use super::{
    View,
    contract::{ListDocument, Rows},
};
use crate::stats::ScanStats;

pub fn render(out: &mut impl Write, view: &View<'_>, stats: &ScanStats) -> io::Result<()> {
    let doc = ListDocument {
        namespaces: Rows(view),
        scan: stats,
    };
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
    writeln!(out)
}
