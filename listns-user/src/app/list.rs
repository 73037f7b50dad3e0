//! `listns [OPTIONS] [NAMESPACE]`: resolve the options, scan, print.

use std::{
    io::{self, BufWriter, Write},
    process::ExitCode,
};

use anyhow::{Context, bail};

use super::from;

use crate::{
    cli::ListArgs,
    filter,
    inventory::{Inventory, NsKey},
    ns::NsType,
    output::{
        Rows, Selection, TreeMode, View, classic,
        columns::{self, Column},
        contract::{ColumnInfo, ColumnList},
        fit, json,
        table::{self, Style},
    },
    scan::{Details, Scanner},
    stats::{InitialSource, describe},
};

/// How to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Table,
    Json,
    Classic,
}

/// The resolved options.
#[derive(Debug)]
pub struct Config {
    pub mode: Mode,
    pub columns: Vec<Column>,
    pub filter: Selection,
    /// `-Q`, parsed and checked against the columns.
    pub query: Option<filter::Query>,
    /// The tree to draw: lsns's process tree unless `-l` or `-T`.
    pub tree: Option<TreeMode>,
    /// Whether `-T` was given (JSON nests only then).
    pub explicit_tree: bool,
    /// The positional namespace (an inode or an id).
    pub namespace: Option<u64>,
    pub style: Style,
    pub proc_root: std::path::PathBuf,
}

impl Config {
    pub fn from_args(args: &ListArgs) -> anyhow::Result<Config> {
        let mode = if args.json {
            Mode::Json
        } else if args.classic {
            Mode::Classic
        } else {
            Mode::Table
        };
        let namespace = match &args.namespace {
            Some(s) => Some(
                s.parse::<u64>()
                    .ok()
                    .with_context(|| format!("invalid namespace argument: '{s}'"))?,
            ),
            None => None,
        };
        let mut defaults: Vec<Column> = if namespace.is_some() {
            Column::DEFAULT_PROCESSES.to_vec()
        } else if args.types.contains(&NsType::Net) {
            Column::DEFAULT_NET.to_vec()
        } else {
            Column::DEFAULT.to_vec()
        };
        // From a watcher, who created each namespace is shown too (before
        // HOLDERS, the last column).
        if args.from.is_some() && namespace.is_none() {
            defaults.insert(defaults.len() - 1, Column::Creator);
        }
        let columns = if args.output_all {
            Column::ALL.to_vec()
        } else {
            columns::parse_list(args.output.last().map(String::as_str), &defaults)
                .map_err(anyhow::Error::msg)?
        };
        let query = match &args.filter {
            Some(expr) => Some(filter::Query::new(expr, &Column::filter_columns()).map_err(
                |e| match e.caret() {
                    Some(caret) => anyhow::anyhow!("{e}\n{caret}"),
                    None => anyhow::anyhow!("{e}"),
                },
            )?),
            None => None,
        };
        let tree = match (args.tree, args.list) {
            (Some(t), _) => Some(t),
            (None, true) => None,
            (None, false) => Some(TreeMode::Process),
        };
        let width = if args.notruncate || args.raw {
            None
        } else {
            fit::terminal_width()
        };
        Ok(Config {
            mode,
            columns,
            filter: Selection {
                types: args.types.clone(),
                pid: args.pid,
                persistent: args.persistent,
                ..Selection::default()
            },
            query,
            tree,
            explicit_tree: args.tree.is_some(),
            namespace,
            style: Style {
                noheadings: args.noheadings,
                raw: args.raw,
                nowrap: args.nowrap || args.raw,
                width,
                ascii: !crate::output::tree::locale_is_utf8(|k| std::env::var(k).ok()),
            },
            proc_root: args.proc_root.clone(),
        })
    }
}

pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    if args.list_columns {
        list_columns(&mut io::stdout().lock(), args.json, args.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.json_schema {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &crate::output::contract::schema())
            .map_err(io::Error::from)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config::from_args(&args)?;
    // Rows of processes show every process's command line.
    let details = if config.mode == Mode::Classic || config.namespace.is_some() {
        Details::All
    } else {
        Details::Representatives
    };
    let (inv, stats) = match &args.from {
        // The watcher's inventory, rendered as a scan's is.
        Some(from) => {
            from::inventory(from, args.token_file.as_deref(), details, &config.proc_root)?
        }
        None => {
            if let Some(partial) = crate::scan::host::check(&config.proc_root) {
                fit::note(&partial.to_string());
            }
            from::hint();
            let scanned = Scanner::new(&config.proc_root)
                .details(details)
                .source(args.scan)
                .scan()?;
            if let Some(why) = &scanned.1.pass_note {
                fit::note(&format!(
                    "the kernel's iterators did not run ({why}): read /proc instead"
                ));
            }
            scanned
        }
    };

    let rows = match config.namespace {
        Some(n) => Rows::Processes {
            key: find_namespace(&inv, n, &config.filter.types)?,
            // lsns draws a process tree here unless -l or another -T.
            tree: config.tree == Some(TreeMode::Process),
        },
        None => Rows::Namespaces(config.tree),
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if config.mode == Mode::Classic {
        classic::render(&mut out, &inv)?;
    } else {
        let mut view = View::build(
            &inv,
            &config.filter,
            &config.columns,
            rows,
            config.query.as_ref(),
        )?;
        if config.mode == Mode::Json {
            if !config.explicit_tree {
                view.flatten();
            }
            json::render(&mut out, &view, &stats)?;
        } else {
            table::render(&mut out, &view, config.style)?;
        }
        // The process ends here: freeing tens of thousands of entries one
        // by one would only delay the exit (the last 20 ms of a
        // 10,000-process `-J` in the profile); the kernel takes the memory
        // back at once.
        std::mem::forget(view);
    }
    out.flush()?;
    std::mem::forget(inv);

    if let Some(line) = stats.summary() {
        fit::note(&line);
    }
    let usual = stats.initial.len() == 8
        && stats
            .initial
            .values()
            .all(|s| *s == InitialSource::Kthreadd);
    if !usual {
        fit::note(&format!(
            "initial namespaces from {}",
            describe(&stats.initial)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The namespace a positional argument names: its inode, as lsns takes
/// it, or its 64-bit id. A number that is the inode of one namespace and
/// the id of another is refused.
pub fn find_namespace(inv: &Inventory, n: u64, types: &[NsType]) -> anyhow::Result<NsKey> {
    let wanted = |k: &NsKey| types.is_empty() || types.contains(&k.ty);
    let by_inode = inv
        .iter()
        .map(|(k, _)| *k)
        .find(|k| k.inum == n && wanted(k));
    let by_id = inv
        .iter()
        .map(|(k, _)| *k)
        .find(|k| k.id == Some(n) && wanted(k));
    match (by_inode, by_id) {
        (Some(a), Some(b)) if a != b => bail!(
            "{n} is both the inode of {}:[{}] and the id of {}:[{}]; ask with -Q 'NS == {n}' or -Q 'ID == {n}'",
            a.ty,
            a.inum,
            b.ty,
            b.inum
        ),
        (Some(k), _) | (None, Some(k)) => Ok(k),
        (None, None) => bail!("not found namespace: {n}"),
    }
}

/// `-H`: every column with its type and description, as lsns prints them
/// (`{"lsns-columns": [...]}` with `-J`, raw escaping with `-r`).
pub fn list_columns(out: &mut impl Write, json: bool, raw: bool) -> io::Result<()> {
    let ty = |c: Column| match c.kind() {
        filter::Kind::Number => "<integer>",
        _ => "<string>",
    };
    if json {
        let list = ColumnList {
            columns: Column::ALL
                .iter()
                .map(|&c| ColumnInfo {
                    holder: c.name(),
                    ty: ty(c),
                    description: c.help(),
                })
                .collect(),
        };
        serde_json::to_writer_pretty(&mut *out, &list).map_err(io::Error::from)?;
        return writeln!(out);
    }
    let name_w = Column::ALL
        .iter()
        .map(|c| c.name().len())
        .max()
        .unwrap_or(0);
    for c in Column::ALL {
        if raw {
            let mut line = Vec::new();
            for (i, cell) in [c.name(), ty(c), c.help()].iter().enumerate() {
                if i > 0 {
                    line.push(b' ');
                }
                table::raw_escape(&mut line, cell.as_bytes());
            }
            line.push(b'\n');
            out.write_all(&line)?;
        } else {
            writeln!(out, "{:>name_w$} {:<9} {}", c.name(), ty(c), c.help())?;
        }
    }
    Ok(())
}
