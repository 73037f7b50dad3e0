//! The OpenAPI 3.1 document of the inventory API (`/v1/openapi.json`),
//! built from the one JSON contract: the contract's JSON Schema
//! ([`contract::schema`]) gives `components.schemas` (its `$defs`, each
//! `#/$defs/X` reference rewritten to `#/components/schemas/X`), and each
//! endpoint answers with one of those types. `cargo xtask schema` commits
//! it as `schema/openapi.json`; the packaging tests run a real validator
//! (openapi-spec-validator) on that file.

use serde_json::{Value, json};

use crate::output::contract;

/// Where the contract's types are in the document.
const SCHEMAS: &str = "#/components/schemas/";

/// The whole document, as the watcher serves it.
pub fn document() -> Value {
    let mut schemas = contract::schema()
        .get_mut("$defs")
        .map(Value::take)
        .unwrap_or_else(|| json!({}));
    rewrite_refs(&mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "listns inventory API",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "What a running `listns watch` knows: the live namespace inventory, \
                        the namespaces gone, and its events.",
            "description": "Served by `listns watch` on a unix socket (default \
                            `/run/listns/api.sock`, mode 0600, 0660 with `--api-group`; no \
                            token: the socket's permissions decide who may ask) and, only \
                            when asked, on TCP (`--api [ADDR:]PORT`; an address that is not \
                            loopback needs `--api-token-file`, and every request there must \
                            carry `Authorization: Bearer TOKEN`). Over the socket: \
                            `curl --unix-socket /run/listns/api.sock http://localhost/v1/namespaces`. \
                            Every JSON body is described by listns's one JSON contract \
                            (`schema/listns.schema.json`). Errors are an ApiError; a method \
                            other than GET or HEAD gets 405.",
            "license": {"name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0"},
        },
        "servers": [{
            "url": "http://localhost",
            "description": "The unix socket (curl --unix-socket /run/listns/api.sock), or the \
                            address given to --api",
        }],
        // No token (the socket, loopback TCP without a token file), or the
        // bearer token (TCP with --api-token-file).
        "security": [{}, {"bearer": []}],
        "paths": paths(),
        "components": {
            "schemas": schemas,
            "responses": {
                "BadRequest": error("A bad query or path segment: what was wrong and where \
                                     (`param`, and for a `filter` the `position`)."),
                "Unauthorized": error("Over TCP with --api-token-file: the request did not \
                                       carry the token (never on the unix socket)."),
                "NotFound": error("No such namespace (or no such path)."),
                "Starting": error("The watcher is still starting (its tracer is not \
                                   attached or its first inventory not out yet)."),
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "TCP only: the token in the file given to \
                                    --api-token-file. The unix socket needs none.",
                },
            },
        },
    })
}

/// Rewrites every `#/$defs/X` reference below `v` to point into
/// `components.schemas`.
fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Value::String(r) if key == "$ref" => {
                        if let Some(name) = r.strip_prefix("#/$defs/") {
                            *r = format!("{SCHEMAS}{name}");
                        }
                    }
                    _ => rewrite_refs(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// An error response: an ApiError body.
fn error(description: &str) -> Value {
    json!({"description": description, "content": json_body("ApiError")})
}

/// `application/json` holding the contract type `name`.
fn json_body(name: &str) -> Value {
    json!({"application/json": {"schema": {"$ref": format!("{SCHEMAS}{name}")}}})
}

/// A GET operation; `errors` names responses in `components.responses`
/// by status code.
fn get(id: &str, summary: &str, parameters: Value, ok: Value, errors: &[(&str, &str)]) -> Value {
    let mut responses = json!({"200": ok});
    for (code, name) in errors {
        responses[*code] = json!({"$ref": format!("#/components/responses/{name}")});
    }
    let mut op = json!({"operationId": id, "summary": summary, "responses": responses});
    if parameters.as_array().is_some_and(|p| !p.is_empty()) {
        op["parameters"] = parameters;
    }
    json!({"get": op})
}

/// A query parameter.
fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": schema})
}

/// A comma-separated list in one query parameter (`type=net,uts`).
fn list(name: &str, description: &str, items: Value) -> Value {
    let mut p = query(name, description, json!({"type": "array", "items": items}));
    p["style"] = "form".into();
    p["explode"] = false.into();
    p
}

/// `since=CURSOR`: an event's `cursor`.
fn since_cursor(description: &str) -> Value {
    query(
        "since",
        description,
        json!({"type": "integer", "format": "uint64", "minimum": 0}),
    )
}

fn paths() -> Value {
    let ok = |description: &str, schema: &str| json!({"description": description, "content": json_body(schema)});
    let text = |description: &str| json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}});
    let auth = ("401", "Unauthorized");
    let bad = ("400", "BadRequest");
    let starting = ("503", "Starting");
    // Outside /v1: no token on any listener.
    let open = |mut p: Value| {
        p["get"]["security"] = json!([]);
        p
    };
    let probe = |id: &str, summary: &str, when: &str| {
        let mut p = get(id, summary, json!([]), text("`ok`"), &[]);
        p["get"]["responses"]["503"] = text(when);
        open(p)
    };
    json!({
        "/v1/namespaces": get(
            "listNamespaces",
            "The live inventory as a `listns -J` document, with what only the tracer knows \
             (hidden namespaces, creators): every namespace alive (those found gone are \
             `/v1/gone`'s).",
            json!([
                list("type", "Only namespaces of these types (`-t`): `type=net,uts`.",
                     json!({"$ref": format!("{SCHEMAS}NsType")})),
                query("filter", "Only rows for which this `-Q` expression (a libsmartcols \
                                 filter) is true; a malformed one gets 400 with its position.",
                      json!({"type": "string"})),
                query("tree", "Nest the namespaces as `-T` does: by owning user namespace, \
                               by parent PID namespace, or by process.",
                      json!({"type": "string", "enum": ["owner", "parent", "process"]})),
                query("pid", "Only the namespaces this process is in (`-p`).",
                      json!({"type": "integer", "format": "uint32", "minimum": 0})),
                list("columns", "The columns of each row, as `-o LIST` names them \
                                 (`listns -H`); default: all.",
                     json!({"type": "string"})),
            ]),
            ok("The inventory (ListOutput).", "ListOutput"),
            &[bad, auth, starting],
        ),
        "/v1/namespaces/{id}": get(
            "getNamespace",
            "One namespace, its processes, and its recent history (created, joined, left, \
             gone).",
            json!([{
                "name": "id",
                "in": "path",
                "required": true,
                "description": "The 64-bit namespace id, the inode number, or `TYPE:INODE` \
                                (`net:4026531840`).",
                "schema": {"type": "string"},
            }]),
            ok("The namespace (NamespaceDetail).", "NamespaceDetail"),
            &[bad, auth, ("404", "NotFound"), starting],
        ),
        "/v1/gone": get(
            "listGone",
            "The namespaces found dead, newest first, each with its creator and lifetime \
             (as many as --max-gone keeps).",
            json!([query("since", "Only those found dead after this: an event's `cursor`, \
                                   or an RFC 3339 time.",
                         json!({"type": "string"}))]),
            ok("The namespaces gone (GoneList).", "GoneList"),
            &[bad, auth, starting],
        ),
        "/v1/events": get(
            "listEvents",
            "Replay: the events the watcher still keeps (a bounded ring), oldest first.",
            json!([
                since_cursor("Only the events after this cursor (an event's `cursor`); \
                              default 0: from the oldest event the watcher keeps."),
                query("limit", "At most this many events (default 1,000, at most 10,000).",
                      json!({"type": "integer", "minimum": 0})),
            ]),
            ok("A page of events (EventPage); `next` continues it.", "EventPage"),
            &[bad, auth, starting],
        ),
        "/v1/events/stream": get(
            "streamEvents",
            "The events live, as Server-Sent Events (`curl -N`, a browser's EventSource).",
            json!([since_cursor("Replay the events the watcher keeps after this cursor \
                                 first (an event's `cursor`, the SSE `id`); without it, \
                                 only events from now on.")]),
            json!({
                "description": "For each event `id: CURSOR`, `event: NAME` (the event's \
                                `event` key, e.g. `created`) and `data:` the event as one \
                                line of JSON (an Event, #/components/schemas/Event), then a \
                                blank line; a `: keep-alive` comment every 15 s. A client \
                                that cannot keep up gets `event: cut` with an ApiError as \
                                its data, and the connection closes.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }),
            &[bad, auth, starting],
        ),
        "/v1/inventory": get(
            "getInventory",
            "The whole inventory as `listns --from` reads it.",
            json!([]),
            ok("The inventory (InventoryDocument).", "InventoryDocument"),
            &[auth, starting],
        ),
        "/v1/openapi.json": get(
            "getOpenApi",
            "This document.",
            json!([]),
            json!({"description": "OpenAPI 3.1.",
                   "content": {"application/json": {"schema": {"type": "object"}}}}),
            &[auth],
        ),
        "/metrics": open(get(
            "getMetrics",
            "Prometheus metrics (OpenMetrics text), as on the --metrics listener.",
            json!([]),
            json!({"description": "The metrics.",
                   "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}}),
            &[],
        )),
        "/healthz": probe(
            "getHealth",
            "Readiness: the tracer runs and the consumer keeps up.",
            "What makes the picture incomplete, in one line.",
        ),
        "/livez": probe(
            "getLive",
            "Liveness: fails only when the watch loop stalls.",
            "The stall.",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` string below `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                for (key, value) in map {
                    match value.as_str() {
                        Some(r) if key == "$ref" => out.push(r),
                        _ => refs(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves_inside_the_document() {
        let doc = document();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        // The contract's own references, the operations' and the error
        // responses'.
        assert!(all.len() > 30, "only {} references", all.len());
        for r in all {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{r}: not in this document"));
            assert!(doc.pointer(pointer).is_some(), "{r} resolves to nothing");
            assert!(!r.starts_with("#/$defs/"), "{r} left as it was");
        }
    }

    #[test]
    fn the_contracts_types_are_the_components() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in [
            "ListOutput",
            "NamespaceDetail",
            "GoneList",
            "EventPage",
            "Event",
            "ApiError",
            "InventoryDocument",
            "WatchLine",
            "NsType",
        ] {
            assert!(schemas.contains_key(name), "no schema {name}");
        }
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let bearer = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(bearer["type"], "http");
        assert_eq!(bearer["scheme"], "bearer");
    }

    /// The design's endpoints (notes/api-design.md, issue 20), written out
    /// by hand: each path, its parameters (name, where) and the contract
    /// type of its 200 answer.
    #[test]
    fn every_endpoint_has_its_operation_parameters_and_answer() {
        const Q: &str = "query";
        // Path, parameters (name, in), the 200 answer's contract type.
        type Endpoint = (
            &'static str,
            &'static [(&'static str, &'static str)],
            Option<&'static str>,
        );
        let want: &[Endpoint] = &[
            (
                "/v1/namespaces",
                &[
                    ("type", Q),
                    ("filter", Q),
                    ("tree", Q),
                    ("pid", Q),
                    ("columns", Q),
                ],
                Some("ListOutput"),
            ),
            (
                "/v1/namespaces/{id}",
                &[("id", "path")],
                Some("NamespaceDetail"),
            ),
            ("/v1/gone", &[("since", Q)], Some("GoneList")),
            (
                "/v1/events",
                &[("since", Q), ("limit", Q)],
                Some("EventPage"),
            ),
            ("/v1/events/stream", &[("since", Q)], None),
            ("/v1/inventory", &[], Some("InventoryDocument")),
            ("/v1/openapi.json", &[], None),
            ("/metrics", &[], None),
            ("/healthz", &[], None),
            ("/livez", &[], None),
        ];
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
        let mut wanted: Vec<&str> = want.iter().map(|w| w.0).collect();
        names.sort();
        wanted.sort();
        assert_eq!(names, wanted);
        for (path, params, answer) in want {
            let op = &paths[*path]["get"];
            assert!(op.is_object(), "{path}: no GET");
            let got: Vec<(&str, &str)> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(&got, params, "{path}");
            let ok = &op["responses"]["200"]["content"];
            if let Some(name) = answer {
                assert_eq!(
                    ok["application/json"]["schema"]["$ref"],
                    format!("#/components/schemas/{name}"),
                    "{path}"
                );
            }
            if path.starts_with("/v1/") {
                assert_eq!(
                    op["responses"]["401"]["$ref"], "#/components/responses/Unauthorized",
                    "{path}"
                );
            } else {
                // The probes and metrics need no token anywhere.
                assert_eq!(op["security"], json!([]), "{path}");
            }
        }
        assert!(
            paths["/v1/events/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"]
                .is_object()
        );
        assert_eq!(
            paths["/v1/namespaces/{id}"]["get"]["responses"]["404"]["$ref"],
            "#/components/responses/NotFound"
        );
        assert_eq!(
            doc["components"]["responses"]["BadRequest"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ApiError"
        );
    }

    #[test]
    fn rewrites_nested_refs_only_into_defs() {
        let mut v = json!({
            "a": {"$ref": "#/$defs/A"},
            "b": [{"items": {"$ref": "#/$defs/B"}}],
            "c": {"$ref": "https://example.org/x"},
            "d": {"properties": {"$ref": {"type": "string"}}},
        });
        rewrite_refs(&mut v);
        assert_eq!(
            v,
            json!({
                "a": {"$ref": "#/components/schemas/A"},
                "b": [{"items": {"$ref": "#/components/schemas/B"}}],
                "c": {"$ref": "https://example.org/x"},
                "d": {"properties": {"$ref": {"type": "string"}}},
            })
        );
    }

    #[test]
    fn committed_document_matches() {
        // Embedded at build time, as the schema's test does.
        let committed = include_str!("../../../schema/openapi.json");
        assert!(
            committed == format!("{:#}\n", document()),
            "schema/openapi.json is out of date: run cargo xtask schema"
        );
    }
}
