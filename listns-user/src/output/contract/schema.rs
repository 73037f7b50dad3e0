//! The JSON Schema of the contract, and what `watch -Q` learns from it.

use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::Value;

use super::{
    ApiError, ColumnList, EventPage, GoneList, InventoryDocument, ListDocument, NamespaceDetail,
    WatchLine,
};
use crate::filter::{Column, Kind};

/// The schema of everything listns prints as JSON: `-J` output, or one
/// line of `watch --json` (`listns --json-schema`). Written for the
/// serializing side: a key is required when it is always written.
pub fn schema() -> Value {
    #[derive(JsonSchema)]
    #[serde(untagged)]
    #[allow(dead_code, clippy::large_enum_variant)]
    enum Any<'a> {
        List(ListDocument<'a>),
        Watch(WatchLine<'a>),
        Columns(ColumnList<'a>),
        Events(EventPage<'a>),
        Detail(NamespaceDetail<'a>),
        Gone(GoneList<'a>),
        Inventory(InventoryDocument<'a>),
        Error(ApiError),
    }
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<Any>()).expect("schema serialises");
    schema["title"] = "listns JSON output".into();
    schema["description"] =
        "`listns -J` prints one ListOutput; `listns watch --json` prints one WatchLine per line; \
         `listns -H -J` prints one ColumnList. The watcher's inventory API (`/v1`) answers \
         with a ListOutput, an EventPage, a NamespaceDetail, a GoneList, an InventoryDocument \
         (`/v1/inventory`, what `listns --from` reads) or an ApiError."
            .into();
    schema
}

/// The keys of watch's JSON lines, each with the type `-Q` compares it as:
/// every property of every kind of line (an `existing` line has every list
/// column's key). A key that is a number (or null) in every kind of line is
/// a number, one that is a boolean a boolean; anything else (text, times,
/// objects, arrays) compares as its JSON text.
pub fn watch_keys() -> Vec<Column> {
    let schema = schema();
    let defs = &schema["$defs"];
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |props: &Value| {
        for (name, p) in props.as_object().into_iter().flatten() {
            let types: Vec<String> = primitive_types(p, defs)
                .into_iter()
                .map(String::from)
                .collect();
            match keys.iter_mut().find(|(k, _)| k == name) {
                Some((_, t)) => t.extend(types),
                None => keys.push((name.clone(), types)),
            }
        }
    };
    for variant in defs["WatchLine"]["oneOf"].as_array().into_iter().flatten() {
        add(&variant["properties"]);
        if let Some(r) = variant["$ref"].as_str() {
            add(&deref(r, defs)["properties"]);
        }
    }
    keys.into_iter()
        .map(|(name, types)| {
            let kind = if !types.is_empty() && types.iter().all(|t| t == "integer") {
                Kind::Number
            } else if !types.is_empty()
                && types
                    .iter()
                    .all(|t| matches!(t.as_str(), "integer" | "number"))
            {
                Kind::Float
            } else if !types.is_empty() && types.iter().all(|t| t == "boolean") {
                Kind::Boolean
            } else {
                Kind::String
            };
            Column::new(name, kind)
        })
        .collect()
}

fn deref<'a>(r: &str, defs: &'a Value) -> &'a Value {
    &defs[r.trim_start_matches("#/$defs/")]
}

/// The JSON types a property can have, null left out.
fn primitive_types<'a>(p: &'a Value, defs: &'a Value) -> Vec<&'a str> {
    if let Some(r) = p["$ref"].as_str() {
        return primitive_types(deref(r, defs), defs);
    }
    if let Some(any) = p["anyOf"].as_array().or(p["oneOf"].as_array()) {
        return any.iter().flat_map(|a| primitive_types(a, defs)).collect();
    }
    match &p["type"] {
        Value::String(t) if t != "null" => vec![t.as_str()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ if p.get("enum").is_some() || p.get("const").is_some() => vec!["string"],
        _ => Vec::new(),
    }
}
