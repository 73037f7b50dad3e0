//! A list option given with `watch` (`listns -J watch`, `listns -t net
//! watch`) would be parsed and silently ignored: clap accepts the top
//! level's options before a subcommand. Every top-level argument that came
//! from the command line is refused instead, with where it belongs.

use std::ffi::OsStr;

use clap::{Arg, ArgMatches, Command, error::ErrorKind, parser::ValueSource};

use super::watch::DEPRECATED;

/// Refuses the top-level arguments given on the command line together
/// with `watch`, naming where each belongs.
pub fn check(cmd: &mut Command, m: &ArgMatches) -> Result<(), clap::Error> {
    let Some(("watch", _)) = m.subcommand() else {
        return Ok(());
    };
    let watch = cmd
        .find_subcommand("watch")
        .expect("listns has a watch subcommand")
        .clone();
    let given: Vec<String> = cmd
        .get_arguments()
        .filter(|a| m.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .map(|a| misplaced(a, m, &watch))
        .collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(cmd.error(ErrorKind::ArgumentConflict, given.join("\n       ")))
}

/// Why `arg`, given before `watch`, is refused, and what to write instead.
fn misplaced(arg: &Arg, m: &ArgMatches, watch: &Command) -> String {
    let id = arg.get_id().as_str();
    let name = spelling(arg);
    let values: Vec<&OsStr> = m.get_raw(id).into_iter().flatten().collect();
    let same = watch
        .get_arguments()
        .find(|w| w.get_id() == arg.get_id() && !w.is_hide_set());
    if let Some(w) = same {
        let mut example = String::from("listns watch ");
        example.push_str(&short_or_long(w));
        if w.get_action().takes_values() && !values.is_empty() {
            let joined: Vec<String> = values.iter().map(|v| v.to_string_lossy().into()).collect();
            example.push(if w.get_long().is_some() && w.get_short().is_none() {
                '='
            } else {
                ' '
            });
            example.push_str(&shell_quote(&joined.join(",")));
        }
        return format!("{name} goes after `watch`: {example}");
    }
    let mut msg = format!(
        "{name} is an option of the list (listns without `watch`); `listns watch` does not take it"
    );
    // The same letter or word under watch means something else.
    let clash = watch.get_arguments().find(|w| {
        (w.get_short().is_some() && w.get_short() == arg.get_short())
            || (w.get_long().is_some() && w.get_long() == arg.get_long())
    });
    if let Some(w) = clash {
        let under = DEPRECATED
            .iter()
            .find(|(old, ..)| *old == w.get_id().as_str())
            .map_or_else(
                || spelling(w),
                |(_, _, new)| format!("the old spelling of {new}"),
            );
        msg.push_str(&format!(
            "; under watch, {} is {under}, another option",
            short_or_long(w)
        ));
    }
    msg
}

/// `-t/--type`, `--from`, or a positional's `NAMESPACE`.
fn spelling(a: &Arg) -> String {
    match (a.get_short(), a.get_long()) {
        (Some(s), Some(l)) => format!("-{s}/--{l}"),
        (Some(s), None) => format!("-{s}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => a
            .get_value_names()
            .and_then(|v| v.first())
            .map_or_else(|| a.get_id().to_string(), |n| n.to_string()),
    }
}

fn short_or_long(a: &Arg) -> String {
    match (a.get_short(), a.get_long()) {
        (Some(s), _) => format!("-{s}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => spelling(a),
    }
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,/:=+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn values_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("net,user"), "net,user");
        assert_eq!(shell_quote("TYPE == \"net\""), "'TYPE == \"net\"'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
