//! The `/v1` endpoints: each parses its query, takes the snapshot (or the
//! event ring) and writes one contract object. A bad request gets a 400
//! with an `ApiError` saying what was wrong and where.

use std::collections::HashMap;

use hyper::StatusCode;
use serde::Serialize;

use super::{Kept, Shared};
use crate::{
    filter::{self, EvalError},
    inventory::{Inventory, NsKey, State},
    ns::NsType,
    output::{
        Rows, Selection, TreeMode, View,
        columns::{self, Column},
        contract::{
            ApiError, EventPage, Gone, GoneList, ListDocument, NamespaceDetail, NamespaceRow,
            RawEvents, Verdict,
        },
    },
};

/// Most events one page of `/v1/events` returns.
pub const PAGE_MAX: usize = 10_000;

/// An answer: a status and a JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Reply {
    fn ok(value: &impl Serialize) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: serde_json::to_vec(value).expect("contract objects serialize"),
        }
    }

    pub fn error(status: StatusCode, error: impl Into<String>, param: Option<&str>) -> Reply {
        Self::error_at(status, error, param, None)
    }

    fn error_at(
        status: StatusCode,
        error: impl Into<String>,
        param: Option<&str>,
        position: Option<usize>,
    ) -> Reply {
        let e = ApiError {
            error: error.into(),
            param: param.map(String::from),
            position,
        };
        Reply {
            status,
            body: serde_json::to_vec(&e).expect("an error serializes"),
        }
    }
}

/// A query string's parameters; each may appear once, and only those an
/// endpoint names.
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(query: Option<&str>, known: &[&str]) -> Result<Params, Reply> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if !known.contains(&k.as_ref()) {
                let what = if known.is_empty() {
                    "this endpoint takes no parameters".to_string()
                } else {
                    format!("known: {}", known.join(", "))
                };
                return Err(bad(&k, format!("unknown parameter {k:?} ({what})")));
            }
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(bad(&k, format!("parameter {k:?} given twice")));
            }
        }
        Ok(Params(map))
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// A number parameter.
    pub fn number<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, Reply> {
        self.get(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| bad(k, format!("{k}={v:?} is not a number")))
            })
            .transpose()
    }
}

fn bad(param: &str, error: impl Into<String>) -> Reply {
    Reply::error(StatusCode::BAD_REQUEST, error, Some(param))
}

fn filter_error(e: filter::FilterError) -> Reply {
    Reply::error_at(
        StatusCode::BAD_REQUEST,
        e.to_string(),
        Some("filter"),
        e.column(),
    )
}

fn eval_error(e: EvalError) -> Reply {
    bad("filter", e.to_string())
}

/// `type=net,uts`.
fn types(p: &Params) -> Result<Vec<NsType>, Reply> {
    let Some(list) = p.get("type") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(|t| {
            NsType::from_name(t).ok_or_else(|| {
                let known: Vec<&str> = NsType::ALL.iter().map(|t| t.name()).collect();
                bad(
                    "type",
                    format!("unknown namespace type {t:?} (known: {})", known.join(", ")),
                )
            })
        })
        .collect()
}

/// `GET /v1/namespaces`: the `-J` document of the live inventory (the
/// namespaces alive; those found gone are `/v1/gone`'s).
pub fn namespaces(inv: &Inventory, stats: &crate::stats::ScanStats, p: &Params) -> Reply {
    match namespaces_doc(inv, stats, p) {
        Ok(r) | Err(r) => r,
    }
}

fn namespaces_doc(
    inv: &Inventory,
    stats: &crate::stats::ScanStats,
    p: &Params,
) -> Result<Reply, Reply> {
    let selection = Selection {
        types: types(p)?,
        pid: p.number("pid")?,
        persistent: false,
        // The gone ones (thousands after a burst of sandboxes) are
        // `/v1/gone`'s.
        alive: true,
    };
    let cols =
        columns::parse_list(p.get("columns"), &Column::ALL).map_err(|e| bad("columns", e))?;
    let query = p
        .get("filter")
        .map(|expr| filter::Query::new(expr, &Column::filter_columns()))
        .transpose()
        .map_err(filter_error)?;
    let tree = p
        .get("tree")
        .map(|t| match t {
            "process" => Ok(TreeMode::Process),
            "parent" => Ok(TreeMode::Parent),
            "owner" => Ok(TreeMode::Owner),
            _ => Err(bad(
                "tree",
                format!("tree={t:?}: one of process, parent, owner"),
            )),
        })
        .transpose()?;
    let view = View::build(
        inv,
        &selection,
        &cols,
        Rows::Namespaces(tree),
        query.as_ref(),
    )
    .map_err(eval_error)?;
    Ok(Reply::ok(&ListDocument {
        namespaces: crate::output::contract::Rows(&view),
        scan: stats,
    }))
}

/// `GET /v1/inventory`: everything the watcher knows, as `listns --from`
/// reads it.
pub fn inventory(inv: &Inventory, stats: &crate::stats::ScanStats) -> Reply {
    Reply::ok(&crate::output::contract::InventoryDocument::new(inv, stats))
}

/// The namespace `{id}` names: `TYPE:INODE`, or a number that is its id
/// or its inode (refused when it is one namespace's id and another's
/// inode).
pub fn find(inv: &Inventory, id: &str) -> Result<NsKey, Reply> {
    let param = Some("id");
    let not_found = || {
        Reply::error(
            StatusCode::NOT_FOUND,
            format!("no namespace {id} in the inventory"),
            param,
        )
    };
    if let Some((ty, inum)) = id.split_once(':') {
        let ty = NsType::from_name(ty)
            .ok_or_else(|| bad("id", format!("{id:?}: unknown namespace type {ty:?}")))?;
        let inum: u64 = inum
            .parse()
            .map_err(|_| bad("id", format!("{id:?}: the inode is not a number")))?;
        // The live one first, then any remembered gone one.
        let mut found: Vec<_> = inv
            .iter()
            .filter(|(k, _)| k.ty == ty && k.inum == inum)
            .collect();
        found.sort_by_key(|(_, ns)| matches!(ns.state, State::Gone { .. }));
        return found.first().map(|(k, _)| **k).ok_or_else(not_found);
    }
    let n: u64 = id.parse().map_err(|_| {
        bad(
            "id",
            format!("{id:?} is not a namespace id, an inode or TYPE:INODE (net:4026531840)"),
        )
    })?;
    let by_id = inv.iter().map(|(k, _)| *k).find(|k| k.id == Some(n));
    let by_inode = inv.iter().map(|(k, _)| *k).find(|k| k.inum == n);
    match (by_id, by_inode) {
        (Some(a), Some(b)) if a != b => Err(bad(
            "id",
            format!(
                "{n} is both the id of {}:[{}] and the inode of {}:[{}]; ask for {}:{}",
                a.ty, a.inum, b.ty, b.inum, b.ty, b.inum
            ),
        )),
        (Some(k), _) | (None, Some(k)) => Ok(k),
        (None, None) => Err(not_found()),
    }
}

/// `GET /v1/namespaces/{id}`.
pub fn detail(shared: &Shared, inv: &Inventory, id: &str) -> Reply {
    let key = match find(inv, id) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let selection = Selection {
        types: vec![key.ty],
        ..Selection::default()
    };
    let mut view = View::new(inv, &selection, &Column::ALL);
    let chosen: Vec<bool> = view.rows.iter().map(|(k, _)| **k == key).collect();
    view.retain(|i| chosen[i]);
    let procs = View::build(
        inv,
        &Selection::default(),
        &Column::DEFAULT_PROCESSES,
        Rows::Processes { key, tree: false },
        None,
    )
    .expect("no query, no evaluation error");
    let (history, history_dropped) = shared.history(&key);
    let Some(i) = (0..view.rows.len()).next() else {
        return Reply::error(
            StatusCode::NOT_FOUND,
            format!("no namespace {id}"),
            Some("id"),
        );
    };
    Reply::ok(&NamespaceDetail {
        namespace: NamespaceRow::of_view(&view, i),
        processes: (0..procs.rows.len())
            .map(|i| NamespaceRow::of_view(&procs, i))
            .collect(),
        history: raw(&history),
        history_dropped,
    })
}

fn raw(kept: &[Kept]) -> RawEvents<'_> {
    RawEvents(kept.iter().map(Kept::raw).collect())
}

/// `since=`: a cursor, or an RFC 3339 time.
enum Since {
    Cursor(u64),
    Time(u64),
}

fn since(p: &Params) -> Result<Option<Since>, Reply> {
    let Some(v) = p.get("since") else {
        return Ok(None);
    };
    if let Ok(c) = v.parse() {
        return Ok(Some(Since::Cursor(c)));
    }
    let t = humantime::parse_rfc3339_weak(v).map_err(|e| {
        bad(
            "since",
            format!("since={v:?} is neither a cursor nor an RFC 3339 time ({e})"),
        )
    })?;
    let ns = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Ok(Some(Since::Time(ns)))
}

/// `GET /v1/gone`: the namespaces found dead, newest first.
pub fn gone(shared: &Shared, p: &Params) -> Reply {
    let since = match since(p) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let remembered = shared.gone();
    let list: Vec<Gone<'_>> = remembered
        .iter()
        .filter_map(|(k, ns, cursor)| {
            let State::Gone { since_ns } = ns.state else {
                return None;
            };
            let keep = match since {
                None => true,
                Some(Since::Time(t)) => since_ns > t,
                Some(Since::Cursor(c)) => cursor.is_some_and(|g| g > c),
            };
            keep.then(|| Gone {
                cursor: *cursor,
                verdict: Verdict::new(k, ns, since_ns),
                lifetime_ms: ns
                    .origin
                    .as_ref()
                    .map(|o| since_ns.saturating_sub(o.time_ns) as f64 / 1e6),
            })
        })
        .collect();
    Reply::ok(&GoneList { gone: list })
}

/// `GET /v1/events`: replay from the ring.
pub fn events(shared: &Shared, p: &Params) -> Reply {
    let page = || -> Result<Reply, Reply> {
        let since = match since(p)? {
            None => 0,
            Some(Since::Cursor(c)) => c,
            Some(Since::Time(_)) => {
                return Err(bad("since", "events take a cursor as since=, not a time"));
            }
        };
        let limit = p.number::<usize>("limit")?.unwrap_or(1_000).min(PAGE_MAX);
        check_cursor(shared, since)?;
        let r = shared.replay(since, limit);
        let next = r.events.last().map_or(since, |k| k.cursor);
        Ok(Reply::ok(&EventPage {
            events: raw(&r.events),
            next,
            dropped: r.dropped,
        }))
    };
    match page() {
        Ok(r) | Err(r) => r,
    }
}

/// A cursor this watcher never gave out is an error (a restarted watcher
/// counts from 1 again).
pub fn check_cursor(shared: &Shared, since: u64) -> Result<(), Reply> {
    let last = shared.last_cursor();
    if since > last {
        return Err(bad(
            "since",
            format!(
                "cursor {since} is ahead of this watcher's last event ({last}): it was restarted? \
                 ask again with since=0"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
