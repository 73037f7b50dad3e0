//! `listns [OPTIONS]`: resolve the options, scan, print.

use std::{
    io::{self, BufWriter, Write},
    process::ExitCode,
};

use anyhow::Context;

use crate::{
    cli::ListArgs,
    ns::NsType,
    output::{
        Filter, classic,
        columns::{self, Cells, Column},
        json,
        table::{self, Style},
        tree,
    },
    scan::{Details, Scanner, initial},
};

/// How to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Table,
    Json,
    Tree,
    Classic,
}

/// The resolved options.
#[derive(Clone, Debug)]
pub struct Config {
    pub mode: Mode,
    pub columns: Vec<Column>,
    pub filter: Filter,
    pub style: Style,
    pub proc_root: std::path::PathBuf,
}

impl Config {
    pub fn from_args(args: &ListArgs) -> anyhow::Result<Config> {
        let mode = match (args.json, args.tree, args.classic) {
            (false, false, false) => Mode::Table,
            (true, false, false) => Mode::Json,
            (false, true, false) => Mode::Tree,
            (false, false, true) => Mode::Classic,
            _ => anyhow::bail!("--json, --tree and --classic cannot be combined"),
        };
        let columns = if args.output_all {
            Column::ALL.to_vec()
        } else {
            columns::parse_list(&args.output).map_err(anyhow::Error::msg)?
        };
        let types = args
            .types
            .iter()
            .flat_map(|t| t.split(','))
            .map(|t| {
                NsType::from_name(t.trim()).with_context(|| format!("unknown namespace type: {t}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Config {
            mode,
            columns,
            filter: Filter {
                types,
                pid: args.pid,
            },
            style: Style {
                noheadings: args.noheadings,
                raw: args.raw,
                first_left: false,
            },
            proc_root: args.proc_root.clone(),
        })
    }
}

pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    if args.list_columns {
        for c in Column::ALL {
            println!("{:>10}  {}", c.name(), c.help());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config::from_args(&args)?;
    let details = if config.mode == Mode::Classic {
        Details::All
    } else {
        Details::Representatives
    };
    let (inv, stats) = Scanner::new(&config.proc_root).details(details).scan()?;

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let cells = Cells::new(&inv);
    let rows = config.filter.select(&inv);
    match config.mode {
        Mode::Table => table::render(&mut out, &cells, &config.columns, &rows, config.style)?,
        Mode::Json => json::render(&mut out, &cells, &config.columns, &rows, Some(&stats))?,
        Mode::Tree => tree::render(&mut out, &cells, &config.columns, &rows, config.style)?,
        Mode::Classic => classic::render(&mut out, &inv)?,
    }
    out.flush()?;

    if let Some(line) = stats.summary() {
        eprintln!("listns: {line}");
    }
    let usual = stats.initial.len() == 8
        && stats
            .initial
            .values()
            .all(|s| *s == initial::InitialSource::Kthreadd);
    if !usual {
        eprintln!(
            "listns: initial namespaces from {}",
            initial::describe(&stats.initial)
        );
    }
    Ok(ExitCode::SUCCESS)
}
