//! The lsns-like table (and `-r` raw output). Cells arrive escaped;
//! widths are terminal columns (a CJK character takes two).

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

use super::{View, columns::Column};

/// Options of the text table.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub noheadings: bool,
    /// One space between columns, no alignment, spaces inside cells as `\x20`.
    pub raw: bool,
    /// Left-align the first column whatever it is (the tree draws in it).
    pub first_left: bool,
}

/// Renders rows of already escaped cells under the columns' headers.
pub fn render_cells(
    out: &mut impl Write,
    cols: &[Column],
    rows: &[Vec<String>],
    style: Style,
) -> io::Result<()> {
    let header: Vec<String> = cols.iter().map(|c| c.name().to_string()).collect();
    let mut all: Vec<&Vec<String>> = Vec::with_capacity(rows.len() + 1);
    if !style.noheadings {
        all.push(&header);
    }
    all.extend(rows.iter());
    if style.raw {
        for row in all {
            let cells: Vec<String> = row.iter().map(|c| c.replace(' ', "\\x20")).collect();
            writeln!(out, "{}", cells.join(" "))?;
        }
        return Ok(());
    }
    let mut widths = vec![0usize; cols.len()];
    for row in &all {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.width());
        }
    }
    let mut line = String::new();
    for row in all {
        line.clear();
        for (i, (cell, col)) in row.iter().zip(cols).enumerate() {
            if i > 0 {
                line.push(' ');
            }
            let pad = widths[i] - cell.width();
            let last = i + 1 == cols.len();
            if col.right_aligned() && !(i == 0 && style.first_left) {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if !last {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Renders namespaces as a table.
pub fn render(out: &mut impl Write, view: &View<'_>, style: Style) -> io::Result<()> {
    let text: Vec<Vec<String>> = view
        .rows
        .iter()
        .map(|(k, ns)| view.row_text(k, ns))
        .collect();
    render_cells(out, view.cols, &text, style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_are_aligned_by_terminal_columns() {
        let rows = vec![
            vec!["名前".to_string(), "1".to_string()],
            vec!["ab".to_string(), "22".to_string()],
        ];
        let style = Style {
            noheadings: true,
            ..Style::default()
        };
        let mut out = Vec::new();
        render_cells(&mut out, &[Column::Command, Column::Ns], &rows, style).unwrap();
        let text = String::from_utf8(out).unwrap();
        // "名前" takes four terminal columns, so "ab" is padded by two.
        assert_eq!(text.lines().collect::<Vec<_>>(), ["名前  1", "ab   22"]);
    }
}
