//! The lsns-like table, and `-r` raw output.
//!
//! Table: cells escaped for the terminal (`sanitize`), aligned by terminal
//! columns, the tree drawn in its column, NSFS one path per line unless
//! `-W`, and fitted to the terminal (`fit`) when stdout is one. A listing
//! without rows prints nothing, not even the header, as lsns.
//!
//! Raw: one space between cells, no alignment, one line per row, and every
//! byte that is blank, a backslash, not printable ASCII or a control
//! character written as `\xNN`, as libsmartcols does (tree lines included),
//! so that a line always splits on spaces into its cells.

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

use super::{View, columns::Column, fit, tree};

/// Options of the text table.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub noheadings: bool,
    /// `-r`: one space between cells, no alignment, lsns's raw escaping.
    pub raw: bool,
    /// `-W`: no cell takes more than one line (NSFS joined by `,`), and
    /// NSFS is never cut.
    pub nowrap: bool,
    /// Fit lines to this many terminal columns (a terminal, without `-u`).
    pub width: Option<usize>,
    /// Tree lines in ASCII (the locale is not UTF-8).
    pub ascii: bool,
}

/// Renders a view as a table.
pub fn render(out: &mut impl Write, view: &View<'_>, style: Style) -> io::Result<()> {
    if view.rows.is_empty() {
        return Ok(());
    }
    let order = tree::layout(view, style.ascii);
    if style.raw {
        return render_raw(out, view, &order, style);
    }
    let cols = view.cols;
    let header: Vec<Vec<String>> = cols.iter().map(|c| vec![c.name().to_string()]).collect();
    let mut grid: Vec<Vec<Vec<String>>> = Vec::with_capacity(order.len() + 1);
    if !style.noheadings {
        grid.push(header);
    }
    for (row, prefix) in &order {
        let cells = cols
            .iter()
            .map(|&c| {
                let v = view.cell(*row, c);
                let mut lines = if style.nowrap {
                    vec![v.display()]
                } else {
                    v.display_lines()
                };
                if view.tree == Some(c) {
                    lines[0].insert_str(0, prefix);
                }
                lines
            })
            .collect();
        grid.push(cells);
    }
    let natural: Vec<fit::Col> = cols
        .iter()
        .enumerate()
        .map(|(i, &c)| fit::Col {
            width: grid
                .iter()
                .flat_map(|r| r[i].iter().map(|l| l.width()))
                .max()
                .unwrap_or(0),
            min: c.name().len(),
            cut: c.truncatable() && !(style.nowrap && c == Column::Nsfs),
            first: c == Column::Command,
        })
        .collect();
    let widths = match style.width {
        Some(limit) => fit::fit(&natural, limit),
        None => natural.iter().map(|c| c.width).collect(),
    };
    // The tree column is left-aligned, whatever the column.
    let left = |i: usize| !cols[i].right_aligned() || view.tree == Some(cols[i]);
    let mut line = String::new();
    for cells in &grid {
        let height = cells.iter().map(Vec::len).max().unwrap_or(1);
        for l in 0..height {
            line.clear();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                let text = fit::cut(cell.get(l).map_or("", String::as_str), widths[i]);
                let pad = widths[i].saturating_sub(text.width());
                if left(i) {
                    line.push_str(&text);
                    line.extend(std::iter::repeat_n(' ', pad));
                } else {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(&text);
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

fn render_raw(
    out: &mut impl Write,
    view: &View<'_>,
    order: &[(usize, String)],
    style: Style,
) -> io::Result<()> {
    let cols = view.cols;
    if !style.noheadings {
        let names: Vec<&str> = cols.iter().map(|c| c.name()).collect();
        writeln!(out, "{}", names.join(" "))?;
    }
    for (row, prefix) in order {
        let mut line = Vec::new();
        for (i, &c) in cols.iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            let mut bytes = view.cell(*row, c).bytes().unwrap_or_default();
            if view.tree == Some(c) {
                bytes.splice(0..0, prefix.bytes());
            }
            raw_escape(&mut line, &bytes);
        }
        line.push(b'\n');
        out.write_all(&line)?;
    }
    Ok(())
}

/// libsmartcols' raw encoding (`fputs_nonblank`): blanks, backslashes,
/// bytes outside printable ASCII and control characters as `\xNN`.
pub fn raw_escape(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == b' ' || b == b'\t' || b == b'\\' || !(0x21..0x7f).contains(&b) {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_escapes_as_libsmartcols() {
        let mut out = Vec::new();
        raw_escape(&mut out, "a b\\c\x1b└─é".as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\x20b\\x5cc\\x1b\\xe2\\x94\\x94\\xe2\\x94\\x80\\xc3\\xa9"
        );
    }
}
