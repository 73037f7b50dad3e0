//! The `listns` binary: parse the command line, run, print errors in one place.

#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use listns::cli::{Cli, Command};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match Cli::try_parse_from(listns::cli::lsns_argv(std::env::args_os())) {
        Ok(cli) => cli,
        // Help and version exit 0; a bad command line exits 1, as lsns.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Command::Watch(args)) => listns::app::watch(args),
        None => listns::app::list(cli.list),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("listns: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
