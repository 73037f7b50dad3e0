//! The `listns` binary: parse the command line, run, print errors in one place.

#![deny(unsafe_code)]

use std::process::ExitCode;

use listns::cli::Command;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (cli, notes) = match listns::cli::parse(argv.iter().cloned()) {
        Ok(parsed) => parsed,
        // Help and version exit 0; a bad command line exits 1, as lsns
        // (125 when it asks to follow a command: see `usage_status`).
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(listns::cli::usage_status(&argv));
        }
    };
    for note in notes {
        listns::output::fit::note(&note);
    }
    let following = matches!(&cli.command, Some(Command::Watch(w)) if w.following());
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
            ExitCode::from(listns::app::failure_status(&err, following))
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
