//! Fitting a table to the terminal, as lsns does on a terminal: when the
//! natural widths (plus one space between columns) exceed the terminal's,
//! text columns are cut, COMMAND first, then the widest of the others,
//! never below their header. Identifiers and numbers are never cut. When
//! even that is not enough the lines stay longer than the terminal.
//!
//! Widths are terminal columns (unicode-width: a CJK character takes two).

use std::io::IsTerminal;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// One column of a table to fit.
#[derive(Clone, Copy, Debug)]
pub struct Col {
    /// Natural width: its widest cell or header.
    pub width: usize,
    /// It may not be cut below this (its header's width).
    pub min: usize,
    /// Whether it may be cut at all.
    pub cut: bool,
    /// Cut before any other (COMMAND).
    pub first: bool,
}

/// The widths to draw `cols` with so that a line takes at most `limit`
/// terminal columns, where cutting allows.
pub fn fit(cols: &[Col], limit: usize) -> Vec<usize> {
    let mut w: Vec<usize> = cols.iter().map(|c| c.width).collect();
    let total = w.iter().sum::<usize>() + cols.len().saturating_sub(1);
    let Some(mut excess) = total.checked_sub(limit).filter(|e| *e > 0) else {
        return w;
    };
    // COMMAND gives up what it can first.
    for (i, c) in cols.iter().enumerate() {
        if c.cut && c.first {
            let take = excess.min(w[i].saturating_sub(c.min.max(1)));
            w[i] -= take;
            excess -= take;
        }
    }
    // Then the widest text column, one column at a time.
    while excess > 0 {
        let widest = (0..cols.len())
            .filter(|&i| cols[i].cut && w[i] > cols[i].min.max(1))
            .max_by_key(|&i| (w[i], std::cmp::Reverse(i)));
        let Some(i) = widest else { break };
        w[i] -= 1;
        excess -= 1;
    }
    w
}

/// `text` cut to `width` terminal columns, its last one `…` when cut.
pub fn cut(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for ch in text.chars() {
        let cw = ch.width().unwrap_or(0);
        if used + cw + 1 > width {
            break;
        }
        out.push(ch);
        used += cw;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// The width to fit tables to: None when stdout is not a terminal (a pipe
/// gets everything). On a terminal, `COLUMNS` when it holds a positive
/// number (as libsmartcols honours it), else the terminal's own width, else
/// 80 (libsmartcols' default).
pub fn terminal_width() -> Option<usize> {
    width_of(std::io::stdout())
}

/// `line` as lines of at most `width` terminal columns. It is broken where
/// it has two or more spaces (between the parts of an event line) where it
/// can, else at single spaces; each continuation is indented by `indent`
/// columns. A word longer than a continuation line is broken after a `|`
/// or `,` in it, and where even that is not enough cut with `…` (the full
/// form is in --json). `None` (a pipe, a file): the line as is.
pub fn wrap(line: &str, width: Option<usize>, indent: usize) -> String {
    let Some(width) = width.filter(|w| line.width() > *w && *w > indent + 10) else {
        return line.to_string();
    };
    let room = width - indent;
    let mut lines = vec![String::new()];
    for (sep, part) in runs(line, 2) {
        if part.width() <= room {
            place(&mut lines, sep, part, width, indent);
            continue;
        }
        // Too long for any line: it starts one, and is broken at spaces.
        if lines.last().is_some_and(|l| !l.trim().is_empty()) {
            lines.push(" ".repeat(indent));
        }
        for (i, (space, word)) in runs(part, 1).into_iter().enumerate() {
            let space = if i == 0 { sep } else { space };
            for (j, piece) in split_long(word, room).iter().enumerate() {
                place(
                    &mut lines,
                    if j == 0 { space } else { "" },
                    piece,
                    width,
                    indent,
                );
            }
        }
    }
    lines.join("\n")
}

/// Appends `piece` (after `sep`) to the last line, or starts a new one.
fn place(lines: &mut Vec<String>, sep: &str, piece: &str, width: usize, indent: usize) {
    let cur = lines.last_mut().expect("one line at least");
    if cur.trim().is_empty() {
        cur.push_str(piece);
    } else if cur.width() + sep.width() + piece.width() <= width {
        cur.push_str(sep);
        cur.push_str(piece);
    } else {
        lines.push(format!("{:indent$}{piece}", ""));
    }
}

/// The parts of `line` between runs of at least `min` spaces, each with the
/// run before it (shorter runs stay inside a part).
fn runs(line: &str, min: usize) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let (mut sep_start, mut part_start) = (0, 0);
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            let run_end = bytes[i..]
                .iter()
                .position(|&b| b != b' ')
                .map_or(bytes.len(), |n| i + n);
            if run_end - i >= min {
                if part_start < i {
                    out.push((&line[sep_start..part_start], &line[part_start..i]));
                }
                sep_start = i;
                part_start = run_end;
            }
            i = run_end;
        } else {
            i += 1;
        }
    }
    if part_start < line.len() {
        out.push((&line[sep_start..part_start], &line[part_start..]));
    }
    out
}

/// A word too long for a line, in pieces of at most `room` columns,
/// broken after `|` or `,`; a piece with no such place is cut with `…`.
fn split_long(word: &str, room: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for part in word.split_inclusive(['|', ',']) {
        if !cur.is_empty() && cur.width() + part.width() > room {
            out.push(std::mem::take(&mut cur));
        }
        cur.push_str(part);
    }
    out.push(cur);
    out.into_iter().map(|p| cut(&p, room)).collect()
}

/// Prints `listns: NOTE` on stderr, wrapped to the terminal when stderr
/// is one (continuations indented under the note's text).
pub fn note(text: &str) {
    let line = format!("listns: {text}");
    eprintln!("{}", wrap(&line, stderr_width(), 8));
}

/// The width of the terminal stderr is, as [`terminal_width`] for stdout.
fn stderr_width() -> Option<usize> {
    width_of(std::io::stderr())
}

/// `COLUMNS` when set, else the terminal's width (80 if it cannot be
/// asked); None when `stream` is not a terminal.
fn width_of(stream: impl std::os::fd::AsFd + IsTerminal) -> Option<usize> {
    if !stream.is_terminal() {
        return None;
    }
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    Some(terminal_size::terminal_size_of(&stream).map_or(80, |(w, _)| w.0 as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_and_pipes_are_left_alone() {
        let line = "12:00:00.000000  created  net 4026532000  by unshare pid 5";
        assert_eq!(wrap(line, Some(100), 26), line);
        let long = "x ".repeat(80);
        assert_eq!(wrap(&long, None, 26), long);
    }

    #[test]
    fn long_lines_wrap_under_the_indent_within_the_width() {
        let line = "22:13:20.123456  created  net,uts,ipc 4026532387,..385,..386  left net \
                    4026531840  by unshare pid 5 via unshare(CLONE_NEWNET|CLONE_NEWUTS|CLONE_NEWIPC)";
        let got = wrap(line, Some(100), 26);
        assert_eq!(
            got,
            format!(
                "22:13:20.123456  created  net,uts,ipc 4026532387,..385,..386  left net 4026531840\n\
                 {:26}by unshare pid 5 via unshare(CLONE_NEWNET|CLONE_NEWUTS|CLONE_NEWIPC)",
                ""
            )
        );
        for l in got.lines() {
            assert!(l.width() <= 100, "{l:?}");
        }
        // Nothing is lost: the words are all there, in order.
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(words(&got), words(line));
    }

    #[test]
    fn a_part_longer_than_a_line_starts_one() {
        let line = "12:31:42.890861  created  uts,ipc,mnt,net,pid 4026532176,..310,..175,..312,..311  \
                    by unshare pid 31026 via \
                    unshare(CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWPID|CLONE_NEWUTS|CLONE_NEWIPC)";
        assert_eq!(
            wrap(line, Some(100), 26),
            format!(
                "12:31:42.890861  created  uts,ipc,mnt,net,pid 4026532176,..310,..175,..312,..311\n\
                 {0:26}by unshare pid 31026 via\n\
                 {0:26}unshare(CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWPID|CLONE_NEWUTS|CLONE_NEWIPC)",
                ""
            )
        );
    }

    #[test]
    fn a_word_longer_than_a_line_breaks_after_a_bar_or_is_cut() {
        let flags = "via clone(CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|\
                     CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWTIME)";
        let got = wrap(
            &format!("12:00:00.000000  created  net 1  {flags}"),
            Some(60),
            26,
        );
        for l in got.lines() {
            assert!(l.width() <= 60, "{l:?}\n{got}");
        }
        assert!(got.contains("CLONE_NEWTIME)"), "{got}");
        assert!(!got.contains('…'), "{got}");
        let got = wrap(
            &format!("12:00:00.000000  created  {}", "a".repeat(90)),
            Some(60),
            26,
        );
        let last = got.lines().last().unwrap();
        assert!(last.ends_with('…') && last.width() == 60, "{got}");
    }

    fn col(width: usize, min: usize, cut: bool, first: bool) -> Col {
        Col {
            width,
            min,
            cut,
            first,
        }
    }

    #[test]
    fn fitting_tables_are_left_alone() {
        let cols = [col(10, 2, false, false), col(20, 7, true, true)];
        assert_eq!(fit(&cols, 31), [10, 20]);
        assert_eq!(fit(&cols, 200), [10, 20]);
    }

    #[test]
    fn command_goes_first_then_the_widest_text() {
        // NS, COMMAND (400), HOLDERS (30), USER (8); limit 100.
        let cols = [
            col(10, 2, false, false),
            col(400, 7, true, true),
            col(30, 7, true, false),
            col(8, 4, true, false),
        ];
        let w = fit(&cols, 100);
        assert_eq!(w, [10, 49, 30, 8]);
        assert_eq!(w.iter().sum::<usize>() + 3, 100);
        // Narrower: COMMAND down to its header, then HOLDERS, then both.
        let w = fit(&cols, 40);
        assert_eq!(w, [10, 7, 12, 8]);
        let w = fit(&cols, 32);
        assert_eq!(w, [10, 7, 7, 5]);
        assert_eq!(w.iter().sum::<usize>() + 3, 32);
    }

    #[test]
    fn identifiers_are_never_cut_even_when_the_line_stays_too_long() {
        let cols = [col(10, 2, false, false), col(10, 2, false, false)];
        assert_eq!(fit(&cols, 5), [10, 10]);
        let cols = [col(10, 2, false, false), col(30, 7, true, true)];
        assert_eq!(fit(&cols, 5), [10, 7]);
    }

    #[test]
    fn cutting_counts_terminal_columns_and_marks_the_cut() {
        assert_eq!(cut("sleep 600", 20), "sleep 600");
        assert_eq!(cut("sleep 600", 9), "sleep 600");
        assert_eq!(cut("sleep 600", 6), "sleep…");
        // Each CJK character takes two columns: never half of one.
        assert_eq!(cut("名前名前", 5), "名前…");
        assert_eq!(cut("名前名前", 4), "名…");
        assert_eq!(cut("└─sleep", 4), "└─s…");
    }
}
