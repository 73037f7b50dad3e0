//! The expected rows come from libsmartcols itself: util-linux master
//! (2.43-devel, commit 39465c78) built with meson, its
//! `sample-scols-fromfile -Q EXPR` run over the same five rows, with the
//! columns typed as lsns types them (`json=number` for NS, NPROCS, PID).
//! Where this module deliberately differs, the test says so.

use super::*;

mod errors;

/// The five rows: NS, TYPE, NPROCS, PID, NETNSID, COMMAND. Row 3 is a
/// namespace without processes (empty PID and COMMAND), rows 1 and 5 have
/// an empty NETNSID.
type Fixture = (
    u64,
    &'static str,
    u64,
    Option<u64>,
    Option<&'static str>,
    Option<&'static str>,
);

const ROWS: [Fixture; 5] = [
    (4026531836, "pid", 72, Some(2), None, Some("[kthreadd]")),
    (
        4026531840,
        "net",
        72,
        Some(2),
        Some("0"),
        Some("[kthreadd]"),
    ),
    (4026532177, "net", 0, None, Some("7"), None),
    (
        4026532246,
        "net",
        1,
        Some(4710),
        Some("12"),
        Some("sleep 30"),
    ),
    (
        4026532300,
        "user",
        1,
        Some(4800),
        None,
        Some("unshare --user"),
    ),
];

fn columns() -> Vec<Column> {
    vec![
        Column::new("NS", Kind::Number),
        Column::new("TYPE", Kind::String),
        Column::new("NPROCS", Kind::Number),
        Column::new("PID", Kind::Number),
        Column::new("NETNSID", Kind::String),
        Column::new("COMMAND", Kind::String),
    ]
}

/// Row `i` (0-based) of ROWS; cells come back as strings for the string
/// columns and numbers for the number columns, as lsns's table holds them.
fn row(i: usize) -> impl Fn(&str) -> Option<Cell> {
    move |col: &str| {
        let r = ROWS[i];
        match col {
            "NS" => Some(Cell::Number(r.0)),
            "TYPE" => Some(Cell::Str(r.1.into())),
            "NPROCS" => Some(Cell::Number(r.2)),
            "PID" => r.3.map(Cell::Number),
            "NETNSID" => r.4.map(|s| Cell::Str(s.into())),
            "COMMAND" => r.5.map(|s| Cell::Str(s.into())),
            other => panic!("the filter asked for column {other}, which it did not name"),
        }
    }
}

/// The 1-based numbers of the rows that pass.
fn matching(expr: &str) -> Vec<usize> {
    let f = Query::new(expr, &columns()).unwrap_or_else(|e| panic!("{expr}: {e}"));
    (0..ROWS.len())
        .filter(|&i| f.matches(&row(i)).unwrap_or_else(|e| panic!("{expr}: {e}")))
        .map(|i| i + 1)
        .collect()
}

fn parse_error(expr: &str) -> FilterError {
    match Query::new(expr, &columns()) {
        Ok(f) => panic!("{expr:?} parsed: {f:?}"),
        Err(e) => e,
    }
}

fn eval_error(expr: &str) -> EvalError {
    let f = Query::new(expr, &columns()).unwrap();
    (0..ROWS.len())
        .find_map(|i| f.matches(&row(i)).err())
        .unwrap_or_else(|| panic!("{expr} evaluated without error"))
}

fn check(cases: &[(&str, &[usize])]) {
    for (expr, want) in cases {
        assert_eq!(matching(expr), want.to_vec(), "filter {expr}");
    }
}

#[test]
fn issue_examples() {
    check(&[
        ("NPROCS == 0", &[3]),
        (r#"TYPE == "net" && NETNSID == "7""#, &[3]),
        ("NS == 4026532177", &[3]),
        // lsns.8's example, with TYPE for USER.
        (r#"TYPE != "pid" and NPROCS > 1"#, &[2]),
    ]);
}

#[test]
fn comparisons_and_word_operators() {
    check(&[
        ("NPROCS != 0", &[1, 2, 4, 5]),
        ("NPROCS < 2", &[3, 4, 5]),
        ("NPROCS <= 1", &[3, 4, 5]),
        ("NPROCS > 1", &[1, 2]),
        ("NPROCS >= 72", &[1, 2]),
        ("NS > 4026532000", &[3, 4, 5]),
        ("NPROCS EQ 0", &[3]),
        ("NPROCS eq 0", &[3]),
        ("NPROCS ne 0 AND NPROCS lt 72", &[4, 5]),
        ("NPROCS le 1 and NPROCS GE 1", &[4, 5]),
        ("NPROCS gt 1 OR NPROCS LT 1", &[1, 2, 3]),
        (r#"TYPE == 'net'"#, &[2, 3, 4]),
        (r#"COMMAND == "sleep 30""#, &[4]),
        (r#"COMMAND > "a""#, &[4, 5]),
        ("NPROCS==0&&TYPE==\"net\"", &[3]),
        ("NPROCS\t==\n0", &[3]),
    ]);
}

#[test]
fn column_names_ignore_case() {
    // lsns's column_name_to_id is case-insensitive (libsmartcols' sample is not).
    check(&[
        ("nprocs == 0", &[3]),
        ("Nprocs == 0 && type == \"net\"", &[3]),
    ]);
    let f = Query::new("nprocs == 0 || Type", &columns()).unwrap();
    assert_eq!(f.columns().collect::<Vec<_>>(), ["NPROCS", "TYPE"]);
    assert!(f.uses("type") && !f.uses("PID"));
}

#[test]
fn strings_are_trimmed_and_unescaped() {
    check(&[
        (r#"COMMAND == " sleep 30 ""#, &[4]),
        (r#"COMMAND == 'sleep 30'"#, &[4]),
        (r#"COMMAND =~ "\[kthreadd\]""#, &[1, 2]),
    ]);
}

#[test]
fn precedence_is_bisons_not_the_man_pages() {
    check(&[
        // || and && share one level, left to right: (a || b) && c.
        (r#"NPROCS == 1 || NPROCS == 0 && TYPE == "user""#, &[5]),
        (r#"NPROCS == 1 or NPROCS == 0 and TYPE == "user""#, &[5]),
        (r#"TYPE == "user" && NPROCS == 0 || NPROCS == 1"#, &[4, 5]),
        // Parentheses give the usual reading.
        (r#"NPROCS == 1 || (NPROCS == 0 && TYPE == "user")"#, &[4, 5]),
        // ! binds tightest: (!TYPE) == "net", false == false for every row.
        (r#"! TYPE == "net""#, &[1, 2, 3, 4, 5]),
        (r#"!TYPE == "net""#, &[1, 2, 3, 4, 5]),
        (r#"!(TYPE == "net")"#, &[1, 5]),
        ("not NPROCS == 0", &[1, 2, 4, 5]),
        // Comparisons chain left to right, an expression being a boolean.
        ("NPROCS == 0 == true", &[3]),
        ("NPROCS == 0 == 1", &[3]),
        ("NPROCS > 0 == 1", &[1, 2, 4, 5]),
    ]);
}

#[test]
fn parentheses_and_negation() {
    check(&[
        ("(NPROCS)", &[1, 2, 4, 5]),
        ("(NPROCS == 0) || (PID == 2)", &[1, 2, 3]),
        ("((NPROCS == 0)) || ((PID == 2))", &[1, 2, 3]),
        ("!(NPROCS == 0)", &[1, 2, 4, 5]),
        ("!!NPROCS", &[1, 2, 4, 5]),
        ("! ! NPROCS", &[1, 2, 4, 5]),
        ("NOT NOT NPROCS", &[1, 2, 4, 5]),
        ("!NPROCS", &[3]),
    ]);
}

#[test]
fn bare_operands_are_true_when_not_empty() {
    check(&[
        ("PID", &[1, 2, 4, 5]),
        ("!PID", &[3]),
        ("NETNSID", &[2, 3, 4]),
        ("!NETNSID", &[1, 5]),
        ("true", &[1, 2, 3, 4, 5]),
        ("TRUE && NPROCS == 1", &[4, 5]),
        ("false", &[]),
        ("0", &[]),
        ("1", &[1, 2, 3, 4, 5]),
        (r#""x""#, &[1, 2, 3, 4, 5]),
        (r#""""#, &[]),
        // An empty expression matches everything.
        ("", &[1, 2, 3, 4, 5]),
    ]);
}

#[test]
fn empty_cells() {
    check(&[
        // As numbers an empty cell matches nothing, whatever the operator.
        ("PID == 0", &[]),
        ("PID != 0", &[1, 2, 4, 5]),
        ("NETNSID == 7", &[3]),
        ("NETNSID != 7", &[2, 4]),
        ("NETNSID > 5", &[3, 4]),
        // As strings it sorts first and equals nothing but another empty cell.
        (r#"NETNSID == """#, &[]),
        (r#"NETNSID != "7""#, &[1, 2, 4, 5]),
        (r#"NETNSID < "7""#, &[1, 2, 4, 5]),
        ("NETNSID == COMMAND", &[]),
        (r#"PID == """#, &[]),
        (r#"PID != "5""#, &[1, 2, 3, 4, 5]),
        // As a regex subject it is "".
        (r#"NETNSID =~ "^$""#, &[1, 5]),
        (r#"NETNSID !~ "7""#, &[1, 2, 4, 5]),
    ]);
    // Deliberately different: libsmartcols turns an empty number cell into
    // 0 when it converts it, and answers [3] to each of these.
    check(&[
        (r#"PID == "0""#, &[]),
        ("PID < 1.5", &[]),
        ("PID == false", &[]),
        (r#"PID =~ "^0$""#, &[]),
        (r#"PID =~ "^$""#, &[3]),
    ]);
}

#[test]
fn numbers_against_strings_and_floats() {
    check(&[
        (r#"NS == "4026532177""#, &[3]),
        ("NS > 4026531840.5", &[3, 4, 5]),
        ("NPROCS == 72.0", &[1, 2]),
        ("NETNSID == 12 || NETNSID == 0", &[2, 4]),
        // Two columns: the left one's type. NPROCS as a string is "72".
        ("TYPE == NPROCS", &[]),
        ("NS == PID", &[]),
        ("NPROCS == NPROCS", &[1, 2, 3, 4, 5]),
        // Two literals: the left one's type.
        (r#"1.5 == "1.5""#, &[1, 2, 3, 4, 5]),
        (r#""abc" == 1.5"#, &[]),
        (r#""1.50" == 1.5"#, &[]),
        (r#""abc" == 1"#, &[]),
        ("2 > 10", &[]),
        (r#""2" > "10""#, &[1, 2, 3, 4, 5]),
        (r#""2" > 10"#, &[1, 2, 3, 4, 5]),
        (r#"2 > "10""#, &[]),
        // Booleans: a string is true when it is "1", "true" in any case or
        // starts with y/Y; as a string a boolean is "true" or "false".
        (r#"true == "yes""#, &[1, 2, 3, 4, 5]),
        (
            r#"true == "Yolo" && true == "TRUE" && true == "1""#,
            &[1, 2, 3, 4, 5],
        ),
        (
            r#"false == "no" && false == "x" && false == """#,
            &[1, 2, 3, 4, 5],
        ),
        (r#""yes" == true"#, &[]),
        (r#""true" == true"#, &[1, 2, 3, 4, 5]),
        (r#""" == false"#, &[]),
        ("1 == true && true == 5 && true == 0.5", &[1, 2, 3, 4, 5]),
        ("1.5 == true", &[]),
        ("NPROCS == true", &[1, 2, 4, 5]),
    ]);
}

#[test]
fn sizes() {
    check(&[
        ("NPROCS == 1K", &[]),
        ("NPROCS < 1KiB", &[1, 2, 3, 4, 5]),
        ("NS < 4G", &[1, 2, 3, 4, 5]),
        (
            "1K == 1024 && 1M == 1048576 && 2GiB == 2147483648",
            &[1, 2, 3, 4, 5],
        ),
        ("15E == 17293822569102704640", &[1, 2, 3, 4, 5]),
    ]);
}

#[test]
fn regexes() {
    check(&[
        (r#"COMMAND =~ "^sleep""#, &[4]),
        (r#"COMMAND =~ "SLEEP""#, &[]),
        (r#"COMMAND !~ "thread""#, &[3, 4, 5]),
        (r#"TYPE =~ "^(net|user)$""#, &[2, 3, 4, 5]),
        (r#"NS =~ "^40265321""#, &[3]),
        (r#"NPROCS =~ ("7")"#, &[1, 2]),
        (r#"COMMAND =~ "[[:digit:]]+$""#, &[4]),
        (r#""abc" =~ "b""#, &[1, 2, 3, 4, 5]),
        (
            r#"COMMAND =~ "^sleep" || TYPE =~ "^u" && NPROCS == 1"#,
            &[4, 5],
        ),
    ]);
    // POSIX: . matches a newline.
    let f = Query::new(r#"COMMAND =~ "a.b""#, &columns()).unwrap();
    assert!(
        f.matches(&|_: &str| Some(Cell::Str("a\nb".into())))
            .unwrap()
    );
}

#[test]
fn evaluation_errors_name_the_column_and_value() {
    let row = |c: &str| match c {
        "NETNSID" => Some(Cell::Str("unassigned".into())),
        _ => None,
    };
    let f = Query::new("NETNSID == 7", &columns()).unwrap();
    let e = f.matches(&row).unwrap_err();
    assert_eq!(e.column, "NETNSID");
    assert_eq!(e.value, "unassigned");
    assert_eq!(
        e.to_string(),
        r#"failed to apply filter: column NETNSID holds "unassigned", which is not a number"#
    );
    // Compared as strings it is fine.
    let f = Query::new(r#"NETNSID == "7""#, &columns()).unwrap();
    assert!(!f.matches(&row).unwrap());
    // A string in a number column is parsed, and refused when it is no number.
    let f = Query::new("NPROCS == 3", &columns()).unwrap();
    assert!(f.matches(&|_: &str| Some(Cell::Str(" 3 ".into()))).unwrap());
    assert!(f.matches(&|_: &str| Some(Cell::Str("-3".into()))).is_err());
    assert!(f.matches(&|_: &str| Some(Cell::Str("".into()))).is_err());
    // Short-circuit: the right side is not evaluated when the left decides.
    let f = Query::new("false && NETNSID == 7", &columns()).unwrap();
    assert!(!f.matches(&row).unwrap());
    // A hostile value is escaped in the message.
    let f = Query::new("COMMAND == 5", &columns()).unwrap();
    let e = f
        .matches(&|_: &str| Some(Cell::Str("\x1b]52;c;bad\x07".into())))
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\x1b') && !e.contains('\x07'), "{e}");
    assert!(e.contains(r"\u{1b}]52;c;bad\u{7}"), "{e}");
    assert_eq!(eval_error("NPROCS == TYPE").column, "TYPE");
}

#[test]
fn json_objects_are_rows() {
    let obj: serde_json::Value = serde_json::json!({
        "ns": 4026532177u64, "type": "net", "nprocs": 0, "pid": null,
        "netnsid": "7", "command": null
    });
    let obj = obj.as_object().unwrap();
    let f = Query::new(
        r#"NPROCS == 0 && !PID && TYPE == "net" && NETNSID == 7"#,
        &columns(),
    )
    .unwrap();
    assert!(f.matches(obj).unwrap());
    let f = Query::new("COMMAND || PID", &columns()).unwrap();
    assert!(!f.matches(obj).unwrap());
}
