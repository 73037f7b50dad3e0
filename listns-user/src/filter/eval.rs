//! Tree to answer: column names resolved, comparison types fixed once (as
//! filter-expr.c's guess_expr_datatype), values converted as
//! filter-param.c's *_cast functions do, then each row evaluated.

use std::cmp::Ordering;

use regex::{Regex, RegexBuilder};

use super::{
    Cell, Column, EvalError, FilterError, FilterErrorKind, Kind, Row,
    parser::{Ast, BinOp, Lit, trim_c_space},
};

/// SCOLS_FILTER_MAX_REGSZ.
const MAX_REGEX_BYTES: usize = 256;

/// A value of one kind; `None` where it stands for an empty cell.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Data {
    Str(String),
    Num(u64),
    Float(f64),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug)]
pub(super) enum Node {
    /// Index into the filter's column list.
    Holder(usize),
    /// Already converted to the type of the comparison it sits in.
    Lit(Data),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cmp {
        op: CmpOp,
        kind: Kind,
        left: Box<Node>,
        right: Box<Node>,
    },
    Regex {
        negate: bool,
        subject: Box<Node>,
        re: Regex,
    },
}

/// Resolves column names (case-insensitively, all unknown ones reported
/// together), fixes comparison types and compiles regexes. Returns the
/// tree and the columns it uses.
pub(super) fn bind(
    ast: Ast,
    columns: &[Column],
    src: &str,
) -> Result<(Node, Vec<Column>), FilterError> {
    let mut b = Binder {
        columns,
        src,
        used: Vec::new(),
        unknown: Vec::new(),
    };
    let node = b.node(ast, None)?;
    if let Some((_, pos)) = b.unknown.first() {
        let mut unknown: Vec<String> = Vec::new();
        for (n, _) in &b.unknown {
            if !unknown.iter().any(|u| u.eq_ignore_ascii_case(n)) {
                unknown.push(n.clone());
            }
        }
        return Err(FilterError {
            expr: src.to_string(),
            pos: Some(*pos),
            kind: FilterErrorKind::UnknownColumns {
                unknown,
                known: columns.iter().map(|c| c.name.clone()).collect(),
            },
        });
    }
    Ok((node, b.used))
}

struct Binder<'a> {
    columns: &'a [Column],
    src: &'a str,
    used: Vec<Column>,
    unknown: Vec<(String, usize)>,
}

impl Binder<'_> {
    fn error(&self, pos: usize, kind: FilterErrorKind) -> FilterError {
        FilterError {
            expr: self.src.to_string(),
            pos: Some(pos),
            kind,
        }
    }

    fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    fn kind(&self, a: &Ast) -> Kind {
        match a {
            // An unknown column is reported later; any kind does meanwhile.
            Ast::Holder { name, .. } => self.column(name).map_or(Kind::String, |c| c.kind),
            Ast::Lit { lit, .. } => lit_data(lit).kind(),
            Ast::Not { .. } | Ast::Binary { .. } => Kind::Boolean,
        }
    }

    /// `want`: the comparison type when this node is one side of one.
    fn node(&mut self, a: Ast, want: Option<Kind>) -> Result<Node, FilterError> {
        Ok(match a {
            Ast::Holder { name, pos } => match self.column(&name).cloned() {
                Some(col) => {
                    let i = match self.used.iter().position(|u| u.name == col.name) {
                        Some(i) => i,
                        None => {
                            self.used.push(col);
                            self.used.len() - 1
                        }
                    };
                    Node::Holder(i)
                }
                None => {
                    self.unknown.push((name, pos));
                    Node::Holder(usize::MAX)
                }
            },
            Ast::Lit { lit, pos } => {
                let data = lit_data(&lit);
                match want {
                    None => Node::Lit(data),
                    Some(k) => Node::Lit(cast(data.clone(), k).map_err(|wanted| {
                        self.error(
                            pos,
                            FilterErrorKind::Syntax {
                                expected: wanted.to_string(),
                                found: format!("{data}"),
                                hint: Some("the other side makes this comparison one of numbers"),
                            },
                        )
                    })?),
                }
            }
            Ast::Not { inner, .. } => Node::Not(Box::new(self.node(*inner, None)?)),
            Ast::Binary {
                op, left, right, ..
            } => match op {
                BinOp::And => Node::And(
                    Box::new(self.node(*left, None)?),
                    Box::new(self.node(*right, None)?),
                ),
                BinOp::Or => Node::Or(
                    Box::new(self.node(*left, None)?),
                    Box::new(self.node(*right, None)?),
                ),
                BinOp::Reg | BinOp::NReg => {
                    let Ast::Lit {
                        lit: Lit::Str(pattern),
                        pos: ppos,
                    } = *right
                    else {
                        unreachable!("the parser admits only a string pattern")
                    };
                    let re = self.regex(&pattern, ppos)?;
                    Node::Regex {
                        negate: op == BinOp::NReg,
                        subject: Box::new(self.node(*left, Some(Kind::String))?),
                        re,
                    }
                }
                cmp => {
                    let kind = comparison_kind(
                        self.kind(&left),
                        self.kind(&right),
                        matches!(*left, Ast::Holder { .. })
                            && !matches!(*right, Ast::Holder { .. }),
                    );
                    Node::Cmp {
                        op: match cmp {
                            BinOp::Eq => CmpOp::Eq,
                            BinOp::Ne => CmpOp::Ne,
                            BinOp::Lt => CmpOp::Lt,
                            BinOp::Le => CmpOp::Le,
                            BinOp::Gt => CmpOp::Gt,
                            _ => CmpOp::Ge,
                        },
                        kind,
                        left: Box::new(self.node(*left, Some(kind))?),
                        right: Box::new(self.node(*right, Some(kind))?),
                    }
                }
            },
        })
    }

    fn regex(&self, pattern: &str, pos: usize) -> Result<Regex, FilterError> {
        if pattern.len() > MAX_REGEX_BYTES {
            return Err(self.error(
                pos,
                FilterErrorKind::Regex(format!(
                    "regular expression longer than {MAX_REGEX_BYTES} bytes"
                )),
            ));
        }
        RegexBuilder::new(pattern)
            .dot_matches_new_line(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                let msg = match e {
                    regex::Error::Syntax(s) => s.lines().last().unwrap_or("").trim().to_string(),
                    other => other.to_string(),
                };
                self.error(
                    pos,
                    FilterErrorKind::Regex(format!("bad regular expression: {msg}")),
                )
            })
    }
}

/// filter-expr.c guess_expr_datatype: the type both sides agree on; else
/// the literal's (or expression's) over the column's; else the left side's;
/// and a float anywhere turns a number comparison into a float one.
pub(super) fn comparison_kind(l: Kind, r: Kind, only_left_is_column: bool) -> Kind {
    if l == r {
        return l;
    }
    let t = if only_left_is_column { r } else { l };
    if t == Kind::Number && (l == Kind::Float || r == Kind::Float) {
        Kind::Float
    } else {
        t
    }
}

fn lit_data(lit: &Lit) -> Data {
    match lit {
        Lit::Str(s) => Data::Str(s.clone()),
        Lit::Num(n) => Data::Num(*n),
        Lit::Float(f) => Data::Float(*f),
        Lit::Bool(b) => Data::Bool(*b),
    }
}

impl Data {
    pub(super) fn kind(&self) -> Kind {
        match self {
            Data::Str(_) => Kind::String,
            Data::Num(_) => Kind::Number,
            Data::Float(_) => Kind::Float,
            Data::Bool(_) => Kind::Boolean,
        }
    }

    fn truth(&self) -> bool {
        match self {
            Data::Str(s) => !s.is_empty(),
            Data::Num(n) => *n != 0,
            Data::Float(f) => *f != 0.0,
            Data::Bool(b) => *b,
        }
    }
}

impl std::fmt::Display for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Data::Str(s) => write!(f, "\"{}\"", s.escape_debug()),
            Data::Num(n) => write!(f, "{n}"),
            Data::Float(x) => f.write_str(&format_g(*x)),
            Data::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Converts as filter-param.c's string_cast, u64_cast, float_cast and
/// bool_cast do. The error names what the value is not.
pub(super) fn cast(d: Data, to: Kind) -> Result<Data, &'static str> {
    Ok(match (d, to) {
        (d, to) if d.kind() == to => d,
        (Data::Str(s), Kind::Number) => Data::Num(parse_u64(&s).ok_or("a number")?),
        (Data::Str(s), Kind::Float) => Data::Float(parse_float(&s).ok_or("a number")?),
        (Data::Str(s), _) => {
            Data::Bool(s == "1" || s.eq_ignore_ascii_case("true") || s.starts_with(['y', 'Y']))
        }
        (Data::Num(n), Kind::String) => Data::Str(n.to_string()),
        (Data::Num(n), Kind::Float) => Data::Float(n as f64),
        (Data::Num(n), _) => Data::Bool(n > 0),
        (Data::Float(x), Kind::String) => Data::Str(format_g(x)),
        (Data::Float(x), Kind::Number) => Data::Num(x as u64),
        (Data::Float(x), _) => Data::Bool(x > 0.0),
        (Data::Bool(b), Kind::String) => Data::Str(b.to_string()),
        (Data::Bool(b), Kind::Number) => Data::Num(b as u64),
        (Data::Bool(b), _) => Data::Float(if b { 1.0 } else { 0.0 }),
    })
}

/// ul_strtou64 in base 10: an optional '+', then digits only.
fn parse_u64(s: &str) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// ul_strtold: the whole string must be a number.
fn parse_float(s: &str) -> Option<f64> {
    s.parse().ok()
}

/// printf's `%g` (six significant digits), as libsmartcols prints a float
/// it compares as a string.
pub(super) fn format_g(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan"
        } else if x > 0.0 {
            "inf"
        } else {
            "-inf"
        }
        .into();
    }
    let sci = format!("{x:.5e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is a number");
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mantissa), exp.abs())
    } else {
        strip(&format!("{x:.*}", (5 - exp) as usize))
    }
}

/// Whether the row passes.
pub(super) fn truth(
    node: &Node,
    cols: &[Column],
    row: &(impl Row + ?Sized),
) -> Result<bool, EvalError> {
    Ok(match node {
        Node::Holder(i) => fetch(*i, cols, row, None)?.is_some_and(|d| d.truth()),
        Node::Lit(d) => d.truth(),
        Node::Not(n) => !truth(n, cols, row)?,
        Node::And(l, r) => truth(l, cols, row)? && truth(r, cols, row)?,
        Node::Or(l, r) => truth(l, cols, row)? || truth(r, cols, row)?,
        Node::Cmp {
            op,
            kind,
            left,
            right,
        } => {
            let l = value(left, *kind, cols, row)?;
            let r = value(right, *kind, cols, row)?;
            compare(*op, *kind, l.as_ref(), r.as_ref())
        }
        Node::Regex {
            negate,
            subject,
            re,
        } => {
            let s = match value(subject, Kind::String, cols, row)? {
                Some(Data::Str(s)) => s,
                _ => String::new(),
            };
            re.is_match(&s) != *negate
        }
    })
}

/// A comparison side in the comparison's type; `None` for an empty cell.
fn value(
    node: &Node,
    kind: Kind,
    cols: &[Column],
    row: &(impl Row + ?Sized),
) -> Result<Option<Data>, EvalError> {
    match node {
        Node::Holder(i) => fetch(*i, cols, row, Some(kind)),
        Node::Lit(d) => Ok(Some(d.clone())),
        other => Ok(Some(
            cast(Data::Bool(truth(other, cols, row)?), kind).expect("booleans convert to anything"),
        )),
    }
}

/// A column's cell, in the column's type, then in `to`.
fn fetch(
    i: usize,
    cols: &[Column],
    row: &(impl Row + ?Sized),
    to: Option<Kind>,
) -> Result<Option<Data>, EvalError> {
    let col = &cols[i];
    let Some(cell) = row.cell(&col.name) else {
        return Ok(None);
    };
    let raw = match cell {
        Cell::Str(s) => Data::Str(trim_c_space(&s).to_string()),
        Cell::Number(n) => Data::Num(n),
        Cell::Float(x) => Data::Float(x),
        Cell::Bool(b) => Data::Bool(b),
    };
    let fail = |d: &Data, wanted| EvalError {
        column: col.name.clone(),
        value: match d {
            Data::Str(s) => s.clone(),
            other => other.to_string(),
        },
        wanted,
    };
    let own = cast(raw.clone(), col.kind).map_err(|w| fail(&raw, w))?;
    match to {
        None => Ok(Some(own)),
        Some(k) => cast(own.clone(), k).map(Some).map_err(|w| fail(&own, w)),
    }
}

/// filter-param.c's string_opers (strcmp, an empty cell below everything)
/// and u64/float/bool_opers (an empty side matches nothing).
fn compare(op: CmpOp, kind: Kind, l: Option<&Data>, r: Option<&Data>) -> bool {
    if kind == Kind::String {
        let ord = match (l, r) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => str_of(a).cmp(str_of(b)),
        };
        return match op {
            CmpOp::Eq => ord.is_eq(),
            CmpOp::Ne => ord.is_ne(),
            CmpOp::Lt => ord.is_lt(),
            CmpOp::Le => ord.is_le(),
            CmpOp::Gt => ord.is_gt(),
            CmpOp::Ge => ord.is_ge(),
        };
    }
    let (Some(a), Some(b)) = (l, r) else {
        return false;
    };
    match (a, b) {
        (Data::Num(a), Data::Num(b)) => apply(op, a, b),
        (Data::Float(a), Data::Float(b)) => apply(op, a, b),
        (Data::Bool(a), Data::Bool(b)) => apply(op, a, b),
        _ => unreachable!("both sides were converted to {kind:?}"),
    }
}

fn str_of(d: &Data) -> &str {
    match d {
        Data::Str(s) => s,
        _ => unreachable!("string comparisons convert both sides to strings"),
    }
}

/// C's operators: with NaN only `!=` holds.
fn apply<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}
