//! `listns-dist DIR` (what `cargo xtask dist` runs): writes the man pages and
//! the shell completions of `listns`, generated from its clap definitions
//! (`listns::cli::Cli`), so they can never disagree with `--help`:
//!
//! - `DIR/man/man1/listns.1`, and one page per subcommand (`listns-watch.1`);
//! - `DIR/completions/`: `listns.bash`, `_listns` (zsh), `listns.fish`,
//!   `_listns.ps1` (PowerShell), `listns.elv` (Elvish).
//!
//! It lives in the tests crate because that crate already links the
//! `listns` library; xtask does not (it must build before the eBPF
//! toolchain is set up), and the packaging tests run it directly.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{CommandFactory, ValueEnum};
use clap_complete::Shell;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        anyhow::bail!("usage: listns-dist DIR (writes DIR/man/man1 and DIR/completions)");
    };
    let dir = PathBuf::from(dir);
    let cmd = listns::cli::Cli::command();

    let man = dir.join("man/man1");
    std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    clap_mangen::generate_to(cmd.clone(), &man)
        .with_context(|| format!("writing man pages to {}", man.display()))?;

    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)
        .with_context(|| format!("creating {}", completions.display()))?;
    for shell in Shell::value_variants() {
        let path = clap_complete::generate_to(*shell, &mut cmd.clone(), "listns", &completions)
            .with_context(|| format!("writing the {shell} completions"))?;
        println!("{}", path.display());
    }
    for page in std::fs::read_dir(&man)? {
        println!("{}", page?.path().display());
    }
    Ok(())
}
