//! `listns-dist DIR` (what `cargo xtask dist` runs): writes the man pages and
//! the shell completions of `listns`, generated from its clap definitions
//! (`listns::cli::Cli`), so they can never disagree with `--help`:
//!
//! - `DIR/man/man1/listns.1`, and one page per subcommand (`listns-watch.1`),
//!   with clap_mangen's sections and listns's own after the options
//!   (EXAMPLES, FILTER KEYS, EXIT STATUS, ENVIRONMENT, FILES: the same
//!   `listns::cli::manual::sections` that `--help` prints);
//! - `DIR/completions/`: `listns.bash`, `_listns` (zsh), `listns.fish`,
//!   `_listns.ps1` (PowerShell), `listns.elv` (Elvish).
//!
//! It lives in the tests crate because that crate already links the
//! `listns` library; xtask does not (it must build before the eBPF
//! toolchain is set up), and the packaging tests run it directly.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{CommandFactory, ValueEnum};
use clap_complete::Shell;
use listns::cli::manual::{self, Page};

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        anyhow::bail!("usage: listns-dist DIR (writes DIR/man/man1 and DIR/completions)");
    };
    let dir = PathBuf::from(dir);
    let cmd = listns::cli::Cli::command();

    let man = dir.join("man/man1");
    std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    man_pages(cmd.clone(), &man)
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

/// `listns.1` and `listns-watch.1`: clap_mangen's page, with listns's own
/// sections before VERSION.
fn man_pages(cmd: clap::Command, dir: &Path) -> Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let watch = cmd
        .find_subcommand("watch")
        .context("no watch subcommand")?
        .clone();
    for (page, cmd) in [(Page::List, cmd), (Page::Watch, watch)] {
        let man = clap_mangen::Man::new(cmd);
        let mut roff = Vec::new();
        man.render(&mut roff)?;
        let mut roff = String::from_utf8(roff)?;
        let at = roff.find("\n.SH VERSION").map_or(roff.len(), |i| i + 1);
        roff.insert_str(at, &sections(page));
        let path = dir.join(man.get_filename());
        std::fs::write(&path, roff).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The sections of `page` in roff: each item a tagged paragraph, its term
/// in bold (a term-less item is a plain paragraph).
fn sections(page: Page) -> String {
    let mut out = String::new();
    for s in manual::sections(page) {
        out.push_str(&format!(".SH {}\n", s.title));
        for (term, text) in &s.items {
            if term.is_empty() {
                out.push_str(&format!(".PP\n{}\n", roff_text(text)));
            } else {
                out.push_str(&format!(
                    ".TP\n\\fB{}\\fR\n{}\n",
                    roff_text(term),
                    roff_text(text)
                ));
            }
        }
    }
    out
}

/// Text for a roff text line: backslashes, dashes and apostrophes escaped,
/// and nothing a line could start a request with.
fn roff_text(text: &str) -> String {
    let t = text
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\(aq");
    format!("\\&{t}")
}
