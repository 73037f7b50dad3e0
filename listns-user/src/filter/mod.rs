//! `-Q/--filter EXPR`: libsmartcols filter expressions (scols-filter(5)), as
//! lsns 2.40+ takes them, over any row that can hand out cells by column
//! name: table rows, `-J` objects, watch events.
//!
//! ```
//! use listns::filter::{Cell, Column, Kind, Query};
//!
//! let columns = [Column::new("NPROCS", Kind::Number), Column::new("TYPE", Kind::String)];
//! let f = Query::new(r#"nprocs == 0 && TYPE == "net""#, &columns).unwrap();
//! let row = |col: &str| match col {
//!     "NPROCS" => Some(Cell::Number(0)),
//!     "TYPE" => Some(Cell::Str("net".into())),
//!     _ => None,
//! };
//! assert!(f.matches(&row).unwrap());
//! ```
//!
//! What libsmartcols does, and so what this does (checked against
//! libsmartcols built from util-linux master, 2.43-devel, with its
//! `sample-scols-fromfile` and against lsns itself):
//!
//! - Grammar: `grammar.pest` follows filter-scanner.l token for token.
//!   Operators `==` `!=` `<` `<=` `>` `>=` (and `eq` `ne` `lt` `le` `gt` `ge`,
//!   all lower or all upper case), `=~` `!~` (POSIX extended regex, unanchored
//!   search; the right side must be a string literal), `&&` `||` `!` (`and`
//!   `or` `not`), parentheses; values are column names, unsigned integers
//!   (with `K`..`Y` or `KiB`..`YiB`, powers of 1024), floats (`1.5`: digits on
//!   both sides, no exponent), `"strings"` and `'strings'` (no escapes, no
//!   newlines, surrounding blanks trimmed) and `true`/`false`
//!   (`TRUE`/`FALSE`). There is no NULL literal: `NULL` is a column name.
//! - Precedence (filter-parser.y's `%left` lines, not what the man page
//!   says): `||` and `&&` share the lowest level and group left to right, so
//!   `a || b && c` is `(a || b) && c`; all comparisons share the next level,
//!   left to right (`a == b == c` is `(a == b) == c`); `!` binds tightest, so
//!   `! TYPE == "net"` is `(!TYPE) == "net"` (true for every row!) and
//!   `!(TYPE == "net")` is the negation.
//! - A bare operand is true when it is not empty: a non-empty string, a
//!   number other than 0, `true`.
//! - Column names match case-insensitively (lsns's column_name_to_id).
//! - Types: a column has its declared [`Kind`] (lsns: NS, NPROCS, PID, PPID,
//!   UID, PNS, ONS are numbers, the rest strings). A comparison is done in one
//!   type: both sides' if they agree; otherwise the literal's type when the
//!   other side is a column (`NS == "4026531836"` compares strings,
//!   `NETNSID == 7` compares numbers); otherwise the left side's; a float on
//!   either side of a number comparison makes it a float comparison. The other
//!   side is converted: numbers print as decimals, floats as `%g`, booleans as
//!   `true`/`false`; strings parse as decimal numbers (an error when they are
//!   not: lsns stops with "failed to apply filter") or as booleans (`1`,
//!   `true`, or anything starting with `y`/`Y`).
//! - Empty cells ([`Row::cell`] gives `None`; JSON `null`): a bare empty cell
//!   is false; compared as a number, float or boolean it matches nothing,
//!   with any operator (`PID != 0` is false for an empty PID); compared as a
//!   string it sorts before every string and equals only another empty cell
//!   (`NETNSID != "7"` is true for an empty NETNSID, `NETNSID == ""` false);
//!   as a regex subject it is the empty string.
//! - Limits: 1024 bytes of expression, 256 operands and operators, 256 bytes
//!   of regex; an empty expression matches every row.
//!
//! Deliberate differences, each where libsmartcols' answer is an accident:
//! - An empty *number* cell stays empty when a comparison converts it; in
//!   libsmartcols it becomes 0 then, so `PID == "0"`, `PID < 1.5` and
//!   `PID == false` are true for a namespace without processes there.
//! - Errors instead of silent surprises: an integer above 2^64-1 (libsmartcols
//!   clamps it), an unterminated string or a stray character such as a lone
//!   `=` (flex echoes it to stdout and drops it), a regex whose left side is
//!   not a column or string (libsmartcols fails when it evaluates it), and
//!   more than 250 nested parentheses.
//! - Regexes are the `regex` crate's: POSIX classes (`[[:digit:]]`), `.`
//!   matching newlines and unanchored search behave as in glibc, but
//!   backreferences are refused and Perl classes such as `\d` work.

mod eval;
mod parser;
#[cfg(test)]
mod tests;

use std::fmt;

pub use parser::MAX_EXPR_BYTES;

/// A column's type, as libsmartcols' SCOLS_DATA_* (lsns sets it through the
/// column's JSON type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Number,
    Float,
    Boolean,
}

/// A column a filter may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// As the output spells it (`NPROCS`); the expression may use any case.
    pub name: String,
    pub kind: Kind,
}

impl Column {
    pub fn new(name: impl Into<String>, kind: Kind) -> Column {
        Column {
            name: name.into(),
            kind,
        }
    }
}

/// One cell's value. An empty cell is `None` where a cell is asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Str(String),
    Number(u64),
    Float(f64),
    Bool(bool),
}

/// Anything that hands out cells by column name: a table row, a JSON
/// object, a watch event.
pub trait Row {
    /// The cell of `column` (named as in the [`Column`] list the filter was
    /// made with), `None` when it is empty.
    fn cell(&self, column: &str) -> Option<Cell>;
}

impl<F: Fn(&str) -> Option<Cell>> Row for F {
    fn cell(&self, column: &str) -> Option<Cell> {
        self(column)
    }
}

/// A `-J` object: keys are the column names in lower case, as lsns writes
/// them. `null` is an empty cell; arrays and objects compare as their JSON
/// text.
impl Row for serde_json::Map<String, serde_json::Value> {
    fn cell(&self, column: &str) -> Option<Cell> {
        use serde_json::Value;
        let v = self
            .get(&column.to_ascii_lowercase())
            .or_else(|| self.get(column))?;
        match v {
            Value::Null => None,
            Value::Bool(b) => Some(Cell::Bool(*b)),
            Value::Number(n) => Some(match n.as_u64() {
                Some(u) => Cell::Number(u),
                None => Cell::Float(n.as_f64().unwrap_or(f64::NAN)),
            }),
            Value::String(s) => Some(Cell::Str(s.clone())),
            other => Some(Cell::Str(other.to_string())),
        }
    }
}

/// A query (`-Q`): a parsed filter expression, its column names resolved.
#[derive(Debug)]
pub struct Query {
    source: String,
    root: Option<eval::Node>,
    columns: Vec<Column>,
}

impl Query {
    /// Parses `expr` and resolves its column names against `columns`.
    pub fn new(expr: &str, columns: &[Column]) -> Result<Query, FilterError> {
        let ast = parser::parse(expr)?;
        let (root, used) = match ast {
            None => (None, Vec::new()),
            Some(ast) => {
                let (node, used) = eval::bind(ast, columns, expr)?;
                (Some(node), used)
            }
        };
        Ok(Query {
            source: expr.to_string(),
            root,
            columns: used,
        })
    }

    /// Whether `row` passes. An error when a cell cannot be converted to the
    /// type the comparison needs (lsns stops with "failed to apply filter").
    pub fn matches(&self, row: &(impl Row + ?Sized)) -> Result<bool, EvalError> {
        match &self.root {
            None => Ok(true),
            Some(node) => eval::truth(node, &self.columns, row),
        }
    }

    /// The columns the expression names (each once, as the column list
    /// spells them): what a row must be able to produce, shown or not.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    /// Whether the expression names this column (any case).
    pub fn uses(&self, column: &str) -> bool {
        self.columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(column))
    }

    /// The expression as given.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// The expression.
    pub expr: String,
    /// Byte offset of the problem, when it has a place.
    pub pos: Option<usize>,
    pub kind: FilterErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterErrorKind {
    /// Syntax: what was expected there, and what was found.
    Syntax {
        expected: String,
        found: String,
        hint: Option<&'static str>,
    },
    TooLong,
    TooManyNodes,
    TooDeep,
    NumberTooLarge(String),
    UnknownColumns {
        unknown: Vec<String>,
        known: Vec<String>,
    },
    Regex(String),
}

impl FilterError {
    /// The expression with a caret under the problem, for a terminal.
    pub fn caret(&self) -> Option<String> {
        let pos = self.pos?;
        let before = self.expr.get(..pos)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.expr[pos..]
            .find('\n')
            .map_or(self.expr.len(), |i| pos + i);
        let line = &self.expr[line_start..line_end];
        let col = self.expr[line_start..pos].chars().count();
        Some(format!("  {}\n  {}^", line.escape_debug(), " ".repeat(col)))
    }

    /// 1-based character column of the problem.
    pub fn column(&self) -> Option<usize> {
        Some(self.expr.get(..self.pos?)?.chars().count() + 1)
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to parse filter \"{}\"", self.expr.escape_debug())?;
        if let Some(c) = self.column() {
            write!(f, " at character {c}")?;
        }
        f.write_str(": ")?;
        match &self.kind {
            FilterErrorKind::Syntax {
                expected,
                found,
                hint,
            } => {
                write!(f, "expected {expected}, found {found}")?;
                if let Some(h) = hint {
                    write!(f, " ({h})")?;
                }
                Ok(())
            }
            FilterErrorKind::TooLong => write!(f, "longer than {MAX_EXPR_BYTES} bytes"),
            FilterErrorKind::TooManyNodes => {
                write!(f, "more than {} operands and operators", parser::MAX_NODES)
            }
            FilterErrorKind::TooDeep => {
                write!(f, "parentheses nested deeper than {}", parser::MAX_DEPTH)
            }
            FilterErrorKind::NumberTooLarge(t) => {
                write!(f, "{t} is larger than 18446744073709551615")
            }
            FilterErrorKind::UnknownColumns { unknown, known } => write!(
                f,
                "unknown column{} {} (known: {})",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                known.join(", ")
            ),
            FilterErrorKind::Regex(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for FilterError {}

/// Why a row could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to apply filter: column {column} holds {value:?}, which is not {wanted}")]
pub struct EvalError {
    pub column: String,
    pub value: String,
    pub wanted: &'static str,
}
