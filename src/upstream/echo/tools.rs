//! Echo's tool calls. When a request forces one (`tool_choice` naming a
//! tool, OpenAI's `required`, Anthropic's `any`, Gemini's `ANY`) and the
//! conversation does not end with a tool's result, echo calls the tool
//! with arguments made from its JSON schema: an agent's round trip can be
//! tried without a paid upstream. The turn that brings the result back gets
//! a text reply (the result, echoed), so a loop ends.
//! Each API shape reads its own `tool_choice` and tool list into a
//! [`Choice`] and (name, schema) pairs; this file does the rest.

use serde_json::{Map, Value};

/// What a request's `tool_choice` asks for.
pub(super) enum Choice<'a> {
    /// This tool.
    Named(&'a str),
    /// Some tool (the first listed).
    Any,
    /// The model decides: echo answers with text.
    Auto,
}

/// The call echo makes.
pub(super) struct Call {
    pub name: String,
    pub arguments: Value,
}

impl Call {
    /// `call_…`, `toolu_…`: the same for the same call, as echo's ids are.
    pub fn id(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}",
            super::short_hash(&format!("{}{}", self.name, self.arguments))
        )
    }
}

/// The call a request forces, given its choice and its tools as (name,
/// schema) pairs; `None` when nothing is forced or the tool is not listed.
pub(super) fn forced<'a>(
    choice: Choice<'_>,
    mut tools: impl Iterator<Item = (&'a str, &'a Value)>,
) -> Option<Call> {
    let (name, schema) = match choice {
        Choice::Auto => return None,
        Choice::Any => tools.next()?,
        Choice::Named(wanted) => tools.find(|(name, _)| *name == wanted)?,
    };
    Some(Call {
        name: name.to_owned(),
        arguments: example(schema),
    })
}

/// Deep enough for any tool's arguments; deeper (a recursive `$ref`) ends
/// in `null`, which the schema then may not allow.
const MAX_DEPTH: u8 = 16;

/// A value that fits `schema` (JSON Schema as tools and structured output
/// use it, or the OpenAPI subset Gemini takes: types, `properties`
/// and `required`, `items` and `minItems`, `enum`, `const`, `anyOf`,
/// `oneOf`, `allOf`, local `$ref`s, string lengths and common formats,
/// number bounds). An object has its required properties only.
pub(super) fn example(schema: &Value) -> Value {
    fit(schema, schema, 0)
}

fn fit(schema: &Value, root: &Value, depth: u8) -> Value {
    let Some(s) = schema.as_object() else {
        // `true`, or no schema at all: anything fits; tools take objects.
        return Value::Object(Map::new());
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(first) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(target) = s
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| resolve(root, r))
    {
        return fit(target, root, depth + 1);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alternatives) = s.get(key).and_then(Value::as_array) {
            // A non-null alternative first: `null` says little in a demo.
            let pick = alternatives
                .iter()
                .find(|a| a["type"] != "null")
                .or(alternatives.first());
            if let Some(a) = pick {
                return fit(a, root, depth + 1);
            }
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in all {
            match fit(part, root, depth + 1) {
                Value::Object(o) => merged.extend(o),
                other => return other,
            }
        }
        if let Value::Object(own) = typed(s, root, depth) {
            merged.extend(own);
        }
        return Value::Object(merged);
    }
    typed(s, root, depth)
}

/// By `type` (the first that is not `null` of a list; guessed when absent).
/// Gemini's schemas (OpenAPI's) write types in capitals (`OBJECT`).
fn typed(s: &Map<String, Value>, root: &Value, depth: u8) -> Value {
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.to_ascii_lowercase(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| !t.eq_ignore_ascii_case("null"))
            .unwrap_or("null")
            .to_ascii_lowercase(),
        _ if s.contains_key("properties") => "object".into(),
        _ if s.contains_key("items") => "array".into(),
        _ => "object".into(),
    };
    match ty.as_str() {
        "object" => {
            let properties = s.get("properties").and_then(Value::as_object);
            let required = s.get("required").and_then(Value::as_array);
            let mut out = Map::new();
            for name in required.into_iter().flatten().filter_map(Value::as_str) {
                let property = properties.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
                let value = match property {
                    Value::Null => Value::String("echo".into()),
                    p => fit(p, root, depth + 1),
                };
                out.insert(name.to_owned(), value);
            }
            Value::Object(out)
        }
        "array" => {
            let n = s.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let items = s.get("items").unwrap_or(&Value::Null);
            let one = match items {
                Value::Null => Value::String("echo".into()),
                i => fit(i, root, depth + 1),
            };
            Value::Array((0..n.min(8)).map(|_| one.clone()).collect())
        }
        "string" => Value::String(text(s)),
        "integer" => Value::from(number(s).ceil() as i64),
        "number" => serde_json::Number::from_f64(number(s)).map_or(Value::Null, Value::Number),
        "boolean" => Value::Bool(false),
        _ => Value::Null,
    }
}

/// A string of the format asked for, within its lengths.
fn text(s: &Map<String, Value>) -> String {
    let base = match s.get("format").and_then(Value::as_str) {
        Some("date-time") => "2026-01-01T00:00:00Z",
        Some("date") => "2026-01-01",
        Some("time") => "00:00:00Z",
        Some("email") => "echo@example.com",
        Some("uri" | "url" | "iri") => "https://example.com/",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        Some("hostname") => "example.com",
        _ => "echo",
    };
    let len = |k: &str| {
        s.get(k)
            .and_then(Value::as_u64)
            .map(|n| n.min(4096) as usize)
    };
    let mut out: String = base.to_owned();
    if let Some(min) = len("minLength") {
        while out.chars().count() < min {
            out.push('o');
        }
    }
    if let Some(max) = len("maxLength") {
        out = out.chars().take(max).collect();
    }
    out
}

/// The smallest number the bounds allow, 1 when they allow it (a count or
/// a score that must be positive is common; a bound the schema does not
/// state cannot be met).
fn number(s: &Map<String, Value>) -> f64 {
    let f = |k: &str| s.get(k).and_then(Value::as_f64);
    let mut n: f64 = 1.0;
    if let Some(min) = f("minimum") {
        n = min;
    }
    if let Some(min) = f("exclusiveMinimum") {
        n = n.max(min + 1.0);
    }
    if let Some(max) = f("maximum") {
        n = n.min(max);
    }
    if let Some(max) = f("exclusiveMaximum") {
        if n >= max {
            n = max - 1.0;
        }
    }
    n
}

/// A local reference (`#/$defs/Name`, `#/definitions/Name`, any JSON
/// pointer into the schema itself).
fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    root.pointer(reference.strip_prefix('#')?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn valid(schema: &Value, value: &Value) -> bool {
        jsonschema::validator_for(schema)
            .unwrap_or_else(|e| panic!("not a schema: {schema} ({e})"))
            .is_valid(value)
    }

    #[test]
    fn agents_tool_schemas_get_arguments_that_fit() {
        // Shapes of the tools Claude Code, Codex and opencode declare.
        let schemas = [
            json!({"type": "object", "properties": {
                "command": {"type": "string", "description": "The command to execute"},
                "timeout": {"type": "number", "maximum": 600000},
                "run_in_background": {"type": "boolean"}},
              "required": ["command"], "additionalProperties": false,
              "$schema": "http://json-schema.org/draft-07/schema#"}),
            json!({"type": "object", "properties": {
                "todos": {"type": "array", "minItems": 1, "items": {"type": "object",
                  "properties": {"content": {"type": "string", "minLength": 1},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]}},
                  "required": ["content", "status"]}}},
              "required": ["todos"]}),
            json!({"type": "object", "properties": {
                "command": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "workdir": {"type": ["string", "null"]},
                "timeout_ms": {"type": "integer", "exclusiveMinimum": 0}},
              "required": ["command", "workdir", "timeout_ms"]}),
            json!({"$defs": {"Place": {"type": "object", "properties": {
                "city": {"type": "string", "maxLength": 2}}, "required": ["city"]}},
              "type": "object", "properties": {"where": {"$ref": "#/$defs/Place"},
                "when": {"type": "string", "format": "date-time"},
                "unit": {"anyOf": [{"type": "null"}, {"const": "celsius"}]}},
              "required": ["where", "when", "unit"]}),
            json!({"allOf": [{"type": "object", "properties": {"a": {"type": "integer", "minimum": 3}},
                "required": ["a"]}, {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]}),
            json!({}),
            json!(true),
        ];
        for schema in &schemas {
            let value = example(schema);
            assert!(valid(schema, &value), "{value} does not fit {schema}");
        }
        assert_eq!(example(&schemas[0]), json!({"command": "echo"}));
        // Gemini's OpenAPI schemas write their types in capitals.
        let gemini = json!({"type": "OBJECT", "properties": {"n": {"type": "INTEGER", "minimum": 2},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1}},
            "required": ["n", "tags"]});
        assert_eq!(example(&gemini), json!({"n": 2, "tags": ["echo"]}));
        // The check itself can say no.
        assert!(!valid(&schemas[1], &json!({"todos": []})));
    }

    #[test]
    fn the_named_or_the_first_tool_and_none_for_auto_or_an_unknown_name() {
        let a = json!({"type": "object"});
        let b =
            json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]});
        let tools = || [("a", &a), ("b", &b)].into_iter();
        assert_eq!(forced(Choice::Any, tools()).unwrap().name, "a");
        let named = forced(Choice::Named("b"), tools()).unwrap();
        assert_eq!(
            (named.name.as_str(), &named.arguments),
            ("b", &json!({"q": "echo"}))
        );
        assert!(forced(Choice::Named("c"), tools()).is_none());
        assert!(forced(Choice::Auto, tools()).is_none());
        assert_eq!(
            named.id("call_"),
            forced(Choice::Named("b"), tools()).unwrap().id("call_")
        );
    }

    /// Schemas built from the keywords `example` knows, nested.
    fn schemas() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            (0u64..5, 0u64..3).prop_map(|(min, extra)| json!({"type": "string",
                "minLength": min, "maxLength": min + extra})),
            prop::sample::select(vec!["date-time", "date", "email", "uri", "uuid", "ipv4"])
                .prop_map(|f| json!({"type": "string", "format": f})),
            (-5i64..5, 0i64..4).prop_map(|(min, span)| json!({"type": "integer",
                "minimum": min, "maximum": min + span})),
            (-5i64..5).prop_map(|min| json!({"type": "number", "exclusiveMinimum": min})),
            (0i64..4).prop_map(|max| json!({"type": "integer", "exclusiveMaximum": max - 2})),
            Just(json!({"type": "boolean"})),
            Just(json!({"type": "null"})),
            Just(json!({"type": ["integer", "null"]})),
            prop::collection::btree_set("[a-z]{1,4}", 1..4).prop_map(|e| json!({"enum": e})),
            any::<i32>().prop_map(|c| json!({"const": c})),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                (
                    prop::collection::btree_map("[a-z]{1,6}", inner.clone(), 0..4),
                    any::<u8>()
                )
                    .prop_map(|(props, mask)| {
                        let required: Vec<&String> = props
                            .keys()
                            .enumerate()
                            .filter(|(i, _)| mask & (1 << i) != 0)
                            .map(|(_, k)| k)
                            .collect();
                        json!({"type": "object", "properties": props, "required": required})
                    }),
                (inner.clone(), 0u64..3).prop_map(
                    |(items, min)| json!({"type": "array", "items": items, "minItems": min})
                ),
                prop::collection::vec(inner.clone(), 1..3).prop_map(|a| json!({"anyOf": a})),
            ]
        })
    }

    /// …at the top, sometimes behind a `$ref` (local references are
    /// resolved from the root).
    fn tool_schemas() -> impl Strategy<Value = Value> {
        (schemas(), any::<bool>()).prop_map(|(s, by_reference)| {
            if by_reference {
                json!({"$defs": {"T": s}, "$ref": "#/$defs/T"})
            } else {
                s
            }
        })
    }

    proptest! {
        #[test]
        fn every_schema_of_the_known_keywords_gets_a_value_that_fits(schema in tool_schemas()) {
            let value = example(&schema);
            prop_assert!(valid(&schema, &value), "{} does not fit {}", value, schema);
        }
    }
}
