//! Lines of the watcher's stream, written out by hand, come out as the
//! local `listns watch` writes them: text, JSON (without `cursor`), and
//! the filters.

use serde_json::json;

use super::*;
use crate::ns::NsType;

fn created() -> Value {
    json!({
        "cursor": 3, "event": "created", "time": "2023-11-14T22:13:20.123456Z",
        "type": "net", "ns": 4026532385u64, "id": 12, "link": "net", "pid": 629,
        "tid": 630, "comm": "unshare", "syscall": "unshare", "flags": ["CLONE_NEWNET"],
        "ppid": 1, "uid": 0, "fd": null, "cgroup_id": 77,
        "container": {"runtime": "podman", "id": "0123456789abcdef", "name": "db"}
    })
}

fn hidden() -> Value {
    json!({
        "cursor": 4, "event": "hidden", "time": "2023-11-14T22:13:21.000001Z",
        "type": "uts", "ns": 4026532001u64, "id": 5, "pid": 12, "comm": "sh\u{fffd}",
        "comm_hex": "7368ff", "syscall": "clone", "created": "2023-11-14T22:13:20.123456Z",
        "container": {"runtime": "podman", "id": "abc", "name": "web"}, "hidden": true
    })
}

fn without_cursor(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("cursor");
    v
}

/// What `lines` print with these options.
fn printed(json: bool, query: Option<&str>, print: WatchFilter, lines: &[Value]) -> String {
    let filter = query.map(|q| stream::event_filter(q).unwrap());
    let mut out = EventWriter::new(Vec::new(), json).with_filter(filter);
    for l in lines {
        write(&mut out, &print, None, l).unwrap();
    }
    String::from_utf8(out.get_mut().clone()).unwrap()
}

#[test]
fn text_lines_are_the_local_ones() {
    let text = printed(false, None, WatchFilter::default(), &[created(), hidden()]);
    assert_eq!(
        text,
        "22:13:20.123456  created  net 4026532385  by unshare pid 629 tid 630 via \
         unshare(CLONE_NEWNET)  in db (0123456789ab)\n\
         22:13:21.000001  HIDDEN   uts 4026532001  alive, but nothing a scan can see holds it;  \
         created by sh\\xff pid 12 via clone at 22:13:20.123456\n"
    );
    let mut hostile = created();
    hostile["comm"] = "x\u{1b}]0;pwned\u{7}".into();
    let text = printed(false, None, WatchFilter::default(), &[hostile]);
    assert!(text.contains("by x\\x1b]0;pwned\\x07 pid 629"), "{text}");
}

#[test]
fn json_lines_are_the_stream_s_without_cursor() {
    let text = printed(true, None, WatchFilter::default(), &[created(), hidden()]);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![without_cursor(created()), without_cursor(hidden())]
    );
}

#[test]
fn filters_apply_as_locally() {
    let both = [created(), hidden()];
    let only = |q: Option<&str>, f: WatchFilter| {
        printed(true, q, f, &both)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        only(Some("PID == 629"), WatchFilter::default()),
        vec![json!("created")]
    );
    assert_eq!(
        only(Some("comm == \"sh\u{fffd}\""), WatchFilter::default()),
        vec![json!("hidden")]
    );
    let types = |t| WatchFilter {
        types: vec![t],
        ..Default::default()
    };
    assert_eq!(only(None, types(NsType::Uts)), vec![json!("hidden")]);
    assert_eq!(only(None, types(NsType::Net)), vec![json!("created")]);
    let container = |c: &str| WatchFilter {
        container: Some(c.into()),
        ..Default::default()
    };
    // No container lookup here: the change's task is in "db" as the
    // watcher said; the verdict's creator is in "web".
    assert_eq!(only(None, container("web")), vec![json!("hidden")]);
    assert_eq!(only(None, container("db")), vec![json!("created")]);
    let mut unknown = created();
    unknown["container"] = Value::Null;
    let lines = printed(true, None, container("db"), &[unknown]);
    assert_eq!(lines, "", "a task in no known container");
}

#[test]
fn a_bad_line_is_an_error() {
    let mut bad = created();
    bad["link"] = "nett".into();
    let mut out = EventWriter::new(Vec::new(), false);
    let e = write(&mut out, &WatchFilter::default(), None, &bad).unwrap_err();
    assert!(
        format!("{e:#}").contains("unknown namespace link \"nett\""),
        "{e:#}"
    );
    let mut bad = hidden();
    bad["time"] = "soon".into();
    let e = write(&mut out, &WatchFilter::default(), None, &bad).unwrap_err();
    assert!(format!("{e:#}").contains("time \"soon\""), "{e:#}");
}
