//! `listns [OPTIONS]`: resolve the options, scan, print.

use std::{
    io::{self, BufWriter, Write},
    process::ExitCode,
};

use crate::{
    cli::ListArgs,
    output::{
        Filter, View, classic,
        columns::{self, Column},
        json,
        table::{self, Style},
        tree,
    },
    scan::{Details, Scanner},
    stats::{InitialSource, describe},
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
        // clap's "mode" group lets at most one of these through.
        let mode = if args.json {
            Mode::Json
        } else if args.tree {
            Mode::Tree
        } else if args.classic {
            Mode::Classic
        } else {
            Mode::Table
        };
        let columns = if args.output_all {
            Column::ALL.to_vec()
        } else {
            columns::parse_list(&args.output).map_err(anyhow::Error::msg)?
        };
        Ok(Config {
            mode,
            columns,
            filter: Filter {
                types: args.types.clone(),
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
    let view = View::new(&inv, &config.filter, &config.columns);
    match config.mode {
        Mode::Table => table::render(&mut out, &view, config.style)?,
        Mode::Json => json::render(&mut out, &view, Some(&stats))?,
        Mode::Tree => tree::render(&mut out, &view, config.style)?,
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
            .all(|s| *s == InitialSource::Kthreadd);
    if !usual {
        eprintln!(
            "listns: initial namespaces from {}",
            describe(&stats.initial)
        );
    }
    Ok(ExitCode::SUCCESS)
}
