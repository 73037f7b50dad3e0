//! Refused expressions: where, what was expected, what was found; and
//! the limits libsmartcols sets.

use super::{columns, matching, parse_error};
use crate::filter::{FilterErrorKind, MAX_EXPR_BYTES, eval};

/// (expression, byte offset of the error, a piece of its message).
const BAD: &[(&str, usize, &str)] = &[
    (
        "NPROCS ==",
        9,
        "expected a column name, a number, a string, true, false, '!' or '(', found the end of the filter",
    ),
    (" == 0", 1, "found '=='"),
    (
        "NPROCS == 0)",
        11,
        "expected an operator (== != < <= > >= =~ !~ && ||) or the end of the filter, found ')'",
    ),
    (
        "(NPROCS == 0",
        12,
        "an operator (== != < <= > >= =~ !~ && ||) or ')', found the end",
    ),
    ("NPROCS ** 0", 7, "found '*'"),
    ("NPROCS = 0", 7, "found '=' (compare with == or eq)"),
    (
        "NPROCS == 1y0",
        11,
        "found 'y0' (a number ends where its digits end",
    ),
    (
        "NPROCS == 0 . 5",
        12,
        "found '.' (a float has digits on both sides",
    ),
    ("NS >= 4.026532177e9", 17, "found 'e9'"),
    (
        "NPROCS Eq 0",
        7,
        "found 'Eq' (operators and true/false are all lower case or all upper case)",
    ),
    ("NPROCS & 1", 7, "(the logical operators are && and ||"),
    ("NPROCS == 0 andTYPE == 1", 12, "found 'andTYPE'"),
    ("NPROCS\r== 0", 6, r"found '\r'"),
    ("_x", 0, "found '_'"),
    (" ", 1, "found the end of the filter"),
    ("NPROCS == 0 && !", 16, "found the end"),
    ("!= 1", 0, "found '!='"),
    (
        r#"COMMAND == "abc"#,
        11,
        "expected a closing \" on the same line, found '\"' (strings have no escapes",
    ),
    (
        "COMMAND == 'ab\nc'",
        11,
        "expected a closing ' on the same line",
    ),
    (
        r#"NPROCS =~ 7"#,
        10,
        "expected a string pattern after =~ or !~, found a number",
    ),
    (
        r#"NPROCS =~ !"x""#,
        10,
        "expected a string pattern after =~ or !~, found an expression",
    ),
    (
        r#"5 =~ "5""#,
        2,
        "expected a column or a string before =~ or !~, found a number",
    ),
    (
        r#"NPROCS == 0 =~ "t""#,
        12,
        "before =~ or !~, found an expression",
    ),
    (r#"1 == "abc""#, 5, r#"expected a number, found "abc""#),
    (r#"NPROCS =~ "(""#, 10, "unclosed group"),
    (
        "NPROCS == 99999999999999999999",
        10,
        "99999999999999999999 is larger than 18446744073709551615",
    ),
    ("NPROCS == 16E", 10, "16E is larger than"),
    ("NPROCS == 1ZiB", 10, "1ZiB is larger than"),
    ("NPROCS == 1Y", 10, "1Y is larger than"),
];

#[test]
fn bad_input_says_where_and_what() {
    for (expr, pos, msg) in BAD {
        let e = parse_error(expr);
        assert_eq!(e.pos, Some(*pos), "{expr:?}: {e}");
        let text = e.to_string();
        assert!(text.contains(msg), "{expr:?}:\n  got  {text}\n  want {msg}");
        assert!(text.starts_with("failed to parse filter \""), "{text}");
    }
    let e = parse_error("NPROCS == 1y0");
    assert_eq!(
        e.to_string(),
        "failed to parse filter \"NPROCS == 1y0\" at character 12: expected an operator \
         (== != < <= > >= =~ !~ && ||) or the end of the filter, found 'y0' (a number ends \
         where its digits end; sizes are written 1K or 1KiB)"
    );
    assert_eq!(e.caret().unwrap(), "  NPROCS == 1y0\n             ^");
    assert_eq!(e.column(), Some(12));
}

#[test]
fn unknown_columns_are_all_listed_against_the_known_ones() {
    let e = parse_error("FOO == 1 || NPROCS || bar || foo || True || NULL");
    assert_eq!(e.pos, Some(0));
    assert_eq!(
        e.kind,
        FilterErrorKind::UnknownColumns {
            unknown: vec!["FOO".into(), "bar".into(), "True".into(), "NULL".into()],
            known: columns().into_iter().map(|c| c.name).collect(),
        }
    );
    assert!(e.to_string().ends_with(
        "unknown columns FOO, bar, True, NULL (known: NS, TYPE, NPROCS, PID, NETNSID, COMMAND)"
    ));
    let e = parse_error("USER == \"root\"");
    assert!(
        e.to_string().contains(": unknown column USER (known: "),
        "{e}"
    );
    // Keywords are not columns; words that merely start with one are.
    assert!(
        parse_error("android")
            .to_string()
            .contains("unknown column android")
    );
    assert!(
        parse_error("a.b-c:d/e%f_g")
            .to_string()
            .contains("unknown column a.b-c:d/e%f_g")
    );
}

#[test]
fn limits() {
    let long = format!("NPROCS == 1{}", " ".repeat(MAX_EXPR_BYTES));
    assert_eq!(parse_error(&long).kind, FilterErrorKind::TooLong);

    // 256 nodes pass (127 ORs of 128 operands, plus one NOT), 257 do not.
    let ors = |n: usize| format!("NS{}", "||NS".repeat(n));
    assert_eq!(matching(&format!("!({})", ors(127))), Vec::<usize>::new());
    assert_eq!(parse_error(&ors(128)).kind, FilterErrorKind::TooManyNodes);

    // Nesting: 250 levels parse (and do not exhaust a test thread's stack).
    let nest = |n: usize| format!("{}NPROCS{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(matching(&nest(250)), [1, 2, 4, 5]);
    let e = parse_error(&nest(251));
    assert_eq!((e.kind, e.pos), (FilterErrorKind::TooDeep, Some(250)));
    // Parentheses inside strings do not count.
    let quoted = format!("COMMAND == \"{}\"", "(".repeat(300));
    assert_eq!(matching(&quoted), Vec::<usize>::new());

    let re = format!("COMMAND =~ \"{}\"", "a".repeat(257));
    assert!(
        parse_error(&re)
            .to_string()
            .contains("longer than 256 bytes")
    );
}

#[test]
fn percent_g_formatting() {
    for (x, want) in [
        (0.0, "0"),
        (1.5, "1.5"),
        (100.0, "100"),
        (123456.0, "123456"),
        (1234567.0, "1.23457e+06"),
        (4026531836.0, "4.02653e+09"),
        (0.0001, "0.0001"),
        (0.00001234, "1.234e-05"),
        (2.0 / 3.0, "0.666667"),
        (999999.5, "1e+06"),
    ] {
        assert_eq!(eval::format_g(x), want, "{x}");
    }
}
