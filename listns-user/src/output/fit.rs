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
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    Some(terminal_size::terminal_size_of(&stdout).map_or(80, |(w, _)| w.0 as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

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
