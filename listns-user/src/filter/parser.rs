//! Text to tree: pest reads the tokens (grammar.pest), its Pratt parser
//! applies filter-parser.y's precedence, and the literals are decoded as
//! filter-scanner.l and filter-param.c decode them.

use std::sync::LazyLock;

use pest::{
    Parser as _,
    error::{ErrorVariant, InputLocation},
    iterators::{Pair, Pairs},
    pratt_parser::{Assoc, Op as PrattOp, PrattParser},
};

use super::{FilterError, FilterErrorKind};

/// libsmartcols' SCOLS_FILTER_MAX_EXPRSZ.
pub const MAX_EXPR_BYTES: usize = 1024;
/// SCOLS_FILTER_MAX_NODES: operands and operators together.
pub const MAX_NODES: usize = 256;
/// Nesting of parentheses; bison gives up ("memory exhausted") a little
/// above this (YYMAXDEPTH 256).
pub const MAX_DEPTH: usize = 250;

#[derive(pest_derive::Parser)]
#[grammar = "filter/grammar.pest"]
struct Grammar;

/// A literal value.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Lit {
    Str(String),
    Num(u64),
    Float(f64),
    Bool(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BinOp {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Reg,
    NReg,
}

/// The parsed expression; `pos` is a byte offset into the source.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Ast {
    Holder {
        name: String,
        pos: usize,
    },
    Lit {
        lit: Lit,
        pos: usize,
    },
    Not {
        inner: Box<Ast>,
        pos: usize,
    },
    Binary {
        op: BinOp,
        left: Box<Ast>,
        right: Box<Ast>,
        pos: usize,
    },
}

impl Ast {
    fn nodes(&self) -> usize {
        match self {
            Ast::Holder { .. } | Ast::Lit { .. } => 1,
            Ast::Not { inner, .. } => 1 + inner.nodes(),
            Ast::Binary { left, right, .. } => 1 + left.nodes() + right.nodes(),
        }
    }
}

/// filter-parser.y: `%left T_OR T_AND` then `%left T_EQ ... T_NEG`; a later
/// `.op` binds tighter.
static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(PrattOp::infix(Rule::and, Assoc::Left) | PrattOp::infix(Rule::or, Assoc::Left))
        .op(PrattOp::infix(Rule::eq, Assoc::Left)
            | PrattOp::infix(Rule::ne, Assoc::Left)
            | PrattOp::infix(Rule::lt, Assoc::Left)
            | PrattOp::infix(Rule::le, Assoc::Left)
            | PrattOp::infix(Rule::gt, Assoc::Left)
            | PrattOp::infix(Rule::ge, Assoc::Left)
            | PrattOp::infix(Rule::reg, Assoc::Left)
            | PrattOp::infix(Rule::nreg, Assoc::Left))
        .op(PrattOp::prefix(Rule::not))
});

/// Parses `src`; `None` for an empty expression (which matches everything).
pub(super) fn parse(src: &str) -> Result<Option<Ast>, FilterError> {
    let err = |pos, kind| FilterError {
        expr: src.to_string(),
        pos,
        kind,
    };
    if src.is_empty() {
        return Ok(None);
    }
    if src.len() > MAX_EXPR_BYTES {
        return Err(err(None, FilterErrorKind::TooLong));
    }
    if let Some(pos) = too_deep(src) {
        return Err(err(Some(pos), FilterErrorKind::TooDeep));
    }
    let mut pairs = Grammar::parse(Rule::filter, src).map_err(|e| syntax_error(src, e))?;
    let expr = pairs
        .next()
        .and_then(|f| f.into_inner().next())
        .expect("the grammar's filter rule holds one expr");
    let ast = build(expr.into_inner(), src)?;
    if ast.nodes() > MAX_NODES {
        return Err(err(None, FilterErrorKind::TooManyNodes));
    }
    Ok(Some(ast))
}

/// Where the parentheses first nest deeper than MAX_DEPTH (outside strings).
fn too_deep(src: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote = None;
    for (i, c) in src.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q || c == '\n' => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
            }
            (None, ')') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn build(pairs: Pairs<'_, Rule>, src: &str) -> Result<Ast, FilterError> {
    PRATT
        .map_primary(|p| operand(p, src))
        .map_prefix(|not, rhs| {
            Ok(Ast::Not {
                inner: Box::new(rhs?),
                pos: not.as_span().start(),
            })
        })
        .map_infix(|lhs, op, rhs| {
            let (left, right) = (lhs?, rhs?);
            let pos = op.as_span().start();
            let op = match op.as_rule() {
                Rule::and => BinOp::And,
                Rule::or => BinOp::Or,
                Rule::eq => BinOp::Eq,
                Rule::ne => BinOp::Ne,
                Rule::lt => BinOp::Lt,
                Rule::le => BinOp::Le,
                Rule::gt => BinOp::Gt,
                Rule::ge => BinOp::Ge,
                Rule::reg => BinOp::Reg,
                Rule::nreg => BinOp::NReg,
                r => unreachable!("not an infix rule: {r:?}"),
            };
            if matches!(op, BinOp::Reg | BinOp::NReg) {
                check_regex_sides(&left, &right, pos, src)?;
            }
            Ok(Ast::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
                pos,
            })
        })
        .parse(pairs)
}

/// libsmartcols compiles only a string literal as the pattern, and can
/// match only a column or a string against it (anything else fails when it
/// is evaluated); refuse the rest up front.
fn check_regex_sides(left: &Ast, right: &Ast, pos: usize, src: &str) -> Result<(), FilterError> {
    let fail = |at: usize, expected: &str, found: &Ast| FilterError {
        expr: src.to_string(),
        pos: Some(at),
        kind: FilterErrorKind::Syntax {
            expected: expected.to_string(),
            found: describe_ast(found),
            hint: None,
        },
    };
    if !matches!(
        right,
        Ast::Lit {
            lit: Lit::Str(_),
            ..
        }
    ) {
        let at = start_of(right);
        return Err(fail(at, "a string pattern after =~ or !~", right));
    }
    match left {
        Ast::Holder { .. }
        | Ast::Lit {
            lit: Lit::Str(_), ..
        } => Ok(()),
        _ => Err(fail(pos, "a column or a string before =~ or !~", left)),
    }
}

fn start_of(a: &Ast) -> usize {
    match a {
        Ast::Holder { pos, .. } | Ast::Lit { pos, .. } | Ast::Not { pos, .. } => *pos,
        Ast::Binary { left, .. } => start_of(left),
    }
}

fn describe_ast(a: &Ast) -> String {
    match a {
        Ast::Holder { name, .. } => format!("column {name}"),
        Ast::Lit {
            lit: Lit::Str(_), ..
        } => "a string".into(),
        Ast::Lit {
            lit: Lit::Num(_), ..
        } => "a number".into(),
        Ast::Lit {
            lit: Lit::Float(_), ..
        } => "a float".into(),
        Ast::Lit {
            lit: Lit::Bool(_), ..
        } => "a boolean".into(),
        Ast::Not { .. } | Ast::Binary { .. } => "an expression".into(),
    }
}

fn operand(p: Pair<'_, Rule>, src: &str) -> Result<Ast, FilterError> {
    let pos = p.as_span().start();
    let text = p.as_str();
    let too_large = || FilterError {
        expr: src.to_string(),
        pos: Some(pos),
        kind: FilterErrorKind::NumberTooLarge(text.to_string()),
    };
    let lit = match p.as_rule() {
        Rule::group => {
            let expr = p.into_inner().next().expect("group holds an expr");
            return build(expr.into_inner(), src);
        }
        Rule::holder => {
            return Ok(Ast::Holder {
                name: text.to_string(),
                pos,
            });
        }
        Rule::integer => Lit::Num(text.parse().map_err(|_| too_large())?),
        Rule::size => Lit::Num(size(text).ok_or_else(too_large)?),
        Rule::float => Lit::Float(text.parse().map_err(|_| too_large())?),
        Rule::boolean => Lit::Bool(text.starts_with(['t', 'T'])),
        Rule::string => {
            let inner = p.into_inner().next().map_or("", |t| t.as_str());
            Lit::Str(trim_c_space(inner).to_string())
        }
        r => unreachable!("not an operand rule: {r:?}"),
    };
    Ok(Ast::Lit { lit, pos })
}

/// `10K`, `3MiB`: strtosize's binary multipliers.
fn size(text: &str) -> Option<u64> {
    let digits = text.trim_end_matches("iB");
    let (num, unit) = digits.split_at(digits.len() - 1);
    let power = "KMGTPEZY".find(unit)? as u32 + 1;
    num.parse::<u64>()
        .ok()?
        .checked_mul(1024u64.checked_pow(power)?)
}

/// What filter-param.c's ltrim/rtrim_whitespace remove (C isspace).
pub(super) fn trim_c_space(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
}

fn syntax_error(src: &str, e: pest::error::Error<Rule>) -> FilterError {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let positives = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let rest = &src[pos..];
    let mut hint = None;
    let expected;
    if let Some(q @ ('"' | '\'')) = rest.chars().next()
        && !rest[1..].split('\n').next().unwrap_or("").contains(q)
    {
        expected = format!("a closing {q} on the same line");
        hint = Some("strings have no escapes and cannot span lines");
    } else {
        expected = describe_expected(&positives);
        let prev = src[..pos]
            .trim_end_matches([' ', '\t', '\n'])
            .chars()
            .last();
        hint = hint.or(if rest.starts_with('=') {
            Some("compare with == or eq")
        } else if rest.starts_with('&') || rest.starts_with('|') {
            Some("the logical operators are && and ||, or and and or")
        } else if rest.starts_with('.') && prev.is_some_and(|c| c.is_ascii_digit()) {
            Some("a float has digits on both sides of the point, as 1.5")
        } else if prev.is_some_and(|c| c.is_ascii_digit())
            && src[..pos].ends_with(|c: char| c.is_ascii_digit())
            && rest.starts_with(|c: char| c.is_ascii_alphabetic())
        {
            Some("a number ends where its digits end; sizes are written 1K or 1KiB")
        } else if rest.starts_with(|c: char| c.is_ascii_alphabetic()) && is_mixed_case_keyword(rest)
        {
            Some("operators and true/false are all lower case or all upper case")
        } else {
            None
        });
    }
    FilterError {
        expr: src.to_string(),
        pos: Some(pos),
        kind: FilterErrorKind::Syntax {
            expected,
            found: describe_found(rest),
            hint,
        },
    }
}

fn is_mixed_case_keyword(rest: &str) -> bool {
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "_.%:/-".contains(*c))
        .collect();
    let lower = word.to_ascii_lowercase();
    [
        "and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "true", "false",
    ]
    .contains(&lower.as_str())
        && word != lower
        && word != word.to_ascii_uppercase()
}

/// The token at the error, as a person would name it.
fn describe_found(rest: &str) -> String {
    let Some(c) = rest.chars().next() else {
        return "the end of the filter".into();
    };
    let token: String = if c.is_ascii_alphabetic() {
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "_.%:/-".contains(*c))
            .collect()
    } else if c.is_ascii_digit() {
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect()
    } else {
        let two: String = rest.chars().take(2).collect();
        if ["==", "!=", "<=", ">=", "=~", "!~", "&&", "||"].contains(&two.as_str()) {
            two
        } else {
            c.to_string()
        }
    };
    format!("'{}'", escape_controls(&token))
}

/// Control and invisible characters as escapes; quotes as they are.
fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\'' | '\\' => c.to_string(),
            c => c.escape_debug().to_string(),
        })
        .collect()
}

/// pest's expected rules, grouped the way a person reads the grammar.
fn describe_expected(positives: &[Rule]) -> String {
    let has = |rs: &[Rule]| positives.iter().any(|p| rs.contains(p));
    let mut parts = Vec::new();
    if has(&[
        Rule::holder,
        Rule::integer,
        Rule::size,
        Rule::float,
        Rule::string,
        Rule::boolean,
        Rule::group,
        Rule::not,
        Rule::operand,
    ]) {
        parts.push("a column name, a number, a string, true, false, '!' or '('");
    }
    if has(&[
        Rule::and,
        Rule::or,
        Rule::eq,
        Rule::ne,
        Rule::lt,
        Rule::le,
        Rule::gt,
        Rule::ge,
        Rule::reg,
        Rule::nreg,
        Rule::infix,
    ]) {
        parts.push("an operator (== != < <= > >= =~ !~ && ||)");
    }
    if has(&[Rule::close]) {
        parts.push("')'");
    }
    if has(&[Rule::EOI]) {
        parts.push("the end of the filter");
    }
    match parts.len() {
        0 => "a valid filter expression".into(),
        1 => parts[0].into(),
        n => format!("{} or {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}
