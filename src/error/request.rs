//! The framework's parse errors in words for a person, naming the field or parameter.
//!
//! poem-openapi reports a body of the wrong shape as `Expected input type "string", found null.
//! (occurred while parsing "SignupRequest")`: the type, never the field. The field is found again
//! here by walking the request body beside its schema in the spec; the JSON door hands both over
//! for the time of the request ([`with_request_body`]), so this module knows no endpoint.

use std::future::Future;

use bytes::Bytes;
use serde_json::Value;

/// A JSON request body, and the spec's `components.schemas` to read it with.
#[derive(Clone)]
struct RequestBody {
    bytes: Bytes,
    /// Called only to explain an error.
    schemas: fn() -> &'static Value,
}

tokio::task_local! {
    static REQUEST_BODY: RequestBody;
}

/// An operation's parameters: the path's names in order (poem-openapi itself knows them as
/// `param0`, `param1`…) and what each parameter takes, in words.
#[derive(Debug, Default)]
pub struct ParameterWords {
    path: Vec<String>,
    takes: Vec<(String, String)>,
}

impl ParameterWords {
    /// From an operation's `parameters` in the spec, and the spec's `components.schemas`.
    pub fn of(parameters: &Value, schemas: &Value) -> Self {
        let mut words = Self::default();
        for parameter in parameters.as_array().into_iter().flatten() {
            let Some(name) = parameter["name"].as_str() else {
                continue;
            };
            if parameter["in"] == "path" {
                words.path.push(name.to_owned());
            }
            words
                .takes
                .push((name.to_owned(), expected(&parameter["schema"], schemas)));
        }
        words
    }
}

tokio::task_local! {
    static PARAMETERS: std::sync::Arc<ParameterWords>;
}

/// Runs `handler` with what the operation's parameters are called and take at hand.
pub async fn with_parameters<F: Future>(
    words: std::sync::Arc<ParameterWords>,
    handler: F,
) -> F::Output {
    PARAMETERS.scope(words, handler).await
}

/// A path parameter's name: poem-openapi says `param0` for the first, whatever the spec calls it.
pub(super) fn path_parameter(name: &str) -> String {
    name.strip_prefix("param")
        .and_then(|n| n.parse::<usize>().ok())
        .and_then(|n| {
            PARAMETERS
                .try_with(|words| words.path.get(n).cloned())
                .ok()
                .flatten()
        })
        .unwrap_or_else(|| name.to_owned())
}

/// What parameter `name` of the current operation takes, in words.
fn parameter_takes(name: &str) -> Option<String> {
    PARAMETERS
        .try_with(|words| {
            words
                .takes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, takes)| takes.clone())
        })
        .ok()
        .flatten()
}

/// Runs `handler` with `bytes` (the request's JSON body) at hand for explaining a parse error.
pub async fn with_request_body<F: Future>(
    bytes: Bytes,
    schemas: fn() -> &'static Value,
    handler: F,
) -> F::Output {
    REQUEST_BODY
        .scope(RequestBody { bytes, schemas }, handler)
        .await
}

/// What is wrong with the body, from poem-openapi's `reason`.
pub(super) fn explain_body(reason: &str) -> String {
    if let Some(rule) = validator_failure(reason) {
        return rule;
    }
    if let Some(field) = between(reason, "unknown field `", "`") {
        return format!("`{field}` is not a field of this body");
    }
    if let Some(field) = between(reason, "properties `", "` is read only") {
        return format!("`{field}` is read-only");
    }
    let Some(type_name) = outermost_type(reason) else {
        // serde_json's own message: not JSON at all.
        return format!("The body is not valid JSON ({reason})");
    };
    let located = REQUEST_BODY
        .try_with(|body| {
            let value: Value = serde_json::from_slice(&body.bytes).ok()?;
            let schemas = (body.schemas)();
            let schema = schemas.get(type_name)?;
            if !value.is_object() && schema_type(schema, schemas) == Some("object") {
                return Some("The body must be a JSON object".to_owned());
            }
            misfit(&value, schema, schemas, &mut String::new())
        })
        .ok()
        .flatten();
    located.unwrap_or_else(|| match between(reason, "Expected input type \"", "\"") {
        Some(expected) => format!("A field of the body must be {}", in_words(expected)),
        None => "The body does not have the expected fields".to_owned(),
    })
}

/// What is wrong with parameter `name`, from poem-openapi's `reason`.
pub(super) fn explain_parameter(name: &str, reason: &str) -> String {
    if let Some(rule) = reason.strip_prefix("verification failed. ") {
        return format!("`{name}` {}", rule_in_words(rule));
    }
    if reason.contains("expects an input value") {
        return format!("`{name}` is required");
    }
    if let Some(takes) = parameter_takes(name) {
        return format!("`{name}` must be {takes}");
    }
    if reason.contains("Expect a valid enumeration value") {
        return format!("`{name}` is not one of the values it takes (see /docs)");
    }
    match between(reason, "\"", "\"") {
        Some(expected) => format!("`{name}` must be {}", in_words(expected)),
        None => format!("`{name}` is invalid"),
    }
}

/// `field `code` verification failed. maxLength(7)` → "`code` must be at most 7 characters".
fn validator_failure(reason: &str) -> Option<String> {
    let field = between(reason, "field `", "` verification failed. ")?;
    let rule = reason.split("verification failed. ").nth(1)?;
    let rule = rule
        .split(" (occurred while parsing")
        .next()
        .unwrap_or(rule);
    Some(format!("`{field}` {}", rule_in_words(rule)))
}

/// A validator (`maximum(100, exclusive: false)`, `maxLength(7)`, `pattern("^a$")`) in words.
pub(super) fn rule_in_words(rule: &str) -> String {
    let argument = |name: &str| {
        rule.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('('))
            .and_then(|rest| rest.strip_suffix(')'))
            .map(|args| args.split(", exclusive").next().unwrap_or(args).to_owned())
    };
    if let Some(n) = argument("minimum") {
        format!("must be at least {n}")
    } else if let Some(n) = argument("maximum") {
        format!("must be at most {n}")
    } else if let Some(n) = argument("minLength") {
        format!("must be at least {n} characters")
    } else if let Some(n) = argument("maxLength") {
        format!("must be at most {n} characters")
    } else if let Some(n) = argument("minItems") {
        format!("must hold at least {n} items")
    } else if let Some(n) = argument("maxItems") {
        format!("must hold at most {n} items")
    } else if let Some(pattern) = argument("pattern") {
        format!("must match {pattern}")
    } else {
        format!("is invalid ({rule})")
    }
}

/// A poem-openapi type name as a person would say what is expected.
fn in_words(type_name: &str) -> String {
    let words = match type_name {
        "string" => "text",
        "boolean" => "true or false",
        "number" | "number(float)" | "number(double)" => "a number",
        "string(uuid)" => "a UUID",
        "string(date-time)" => "a date and time (RFC 3339)",
        "string(date)" => "a date (YYYY-MM-DD)",
        name if name.starts_with("integer(u") => "a whole number, 0 or more",
        name if name.starts_with("integer") => "a whole number",
        name if name.starts_with("[") || name.starts_with("array") => "a list",
        name if name.starts_with("map") => "an object",
        name => return format!("a valid {name}"),
    };
    words.to_owned()
}

/// The text between `start` and the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// The type poem-openapi was parsing when it failed: the last `(occurred while parsing "T")`, or
/// the type the message is about.
fn outermost_type(reason: &str) -> Option<&str> {
    const MARK: &str = "(occurred while parsing \"";
    if let Some(at) = reason.rfind(MARK) {
        return between(&reason[at..], MARK, "\"");
    }
    between(reason, "Expected input type \"", "\"")
        .or_else(|| between(reason, "failed to parse \"", "\""))
        .or_else(|| between(reason, "Type \"", "\""))
}

/// `schema` with a `$ref` (or poem-openapi's one-element `allOf` around one) followed.
fn resolve<'a>(schema: &'a Value, schemas: &'a Value) -> &'a Value {
    let reference = schema["$ref"]
        .as_str()
        .or_else(|| schema["allOf"][0]["$ref"].as_str());
    match reference.and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) if schemas.get(name).is_some() => resolve(&schemas[name], schemas),
        _ => schema,
    }
}

fn schema_type<'a>(schema: &'a Value, schemas: &'a Value) -> Option<&'a str> {
    let schema = resolve(schema, schemas);
    schema["type"].as_str().or_else(|| {
        (schema.get("properties").is_some() || schema.get("additionalProperties").is_some())
            .then_some("object")
    })
}

/// The first value of `value` that `schema` does not take, as a sentence naming its path.
fn misfit(value: &Value, schema: &Value, schemas: &Value, path: &mut String) -> Option<String> {
    // An optional reference is `allOf: [{$ref}, {nullable: true}]`: nullable outside the `$ref`.
    let nullable = schema["nullable"] == true;
    let schema = resolve(schema, schemas);
    let nullable = nullable || schema["nullable"] == true;
    let named = |path: &str| {
        if path.is_empty() {
            "The body".to_owned()
        } else {
            format!("`{path}`")
        }
    };
    if value.is_null() {
        return (!nullable).then(|| {
            format!(
                "{} must be {}, not null",
                named(path),
                expected(schema, schemas)
            )
        });
    }
    if let Some(choices) = schema["enum"].as_array()
        && !choices.contains(value)
    {
        return Some(format!(
            "{} must be {}, not {}",
            named(path),
            expected(schema, schemas),
            shown(value)
        ));
    }
    let fits = match schema_type(schema, schemas) {
        Some("string") => value.is_string(),
        Some("integer")
            if schema["format"]
                .as_str()
                .is_some_and(|f| f.starts_with('u')) =>
        {
            value.is_u64()
        }
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        _ => true,
    };
    if !fits {
        return Some(format!(
            "{} must be {}, not {}",
            named(path),
            expected(schema, schemas),
            shown(value)
        ));
    }
    let mut at = |key: &str, child: &Value, child_schema: &Value| {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        let found = misfit(child, child_schema, schemas, path);
        path.truncate(len);
        found
    };
    match value {
        Value::Object(fields) => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    match fields.get(name) {
                        Some(child) => {
                            if let Some(found) = at(name, child, property) {
                                return Some(found);
                            }
                        }
                        None if required.contains(&name.as_str()) => {
                            let mut field = path.clone();
                            if !field.is_empty() {
                                field.push('.');
                            }
                            field.push_str(name);
                            return Some(format!(
                                "`{field}` is required ({})",
                                expected(property, schemas)
                            ));
                        }
                        None => {}
                    }
                }
            }
            if schema["additionalProperties"].is_object() {
                let values = &schema["additionalProperties"];
                return fields
                    .iter()
                    .find_map(|(key, child)| at(key, child, values));
            }
            None
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = misfit(item, &schema["items"], schemas, path);
            path.truncate(len);
            found
        }),
        _ => None,
    }
}

/// What `schema` takes, in words.
fn expected(schema: &Value, schemas: &Value) -> String {
    let schema = resolve(schema, schemas);
    if let Some(choices) = schema["enum"].as_array() {
        let choices: Vec<String> = choices.iter().map(|c| format!("`{}`", shown(c))).collect();
        return format!("one of {}", choices.join(", "));
    }
    match (schema_type(schema, schemas), schema["format"].as_str()) {
        (Some("string"), Some("uuid")) => "a UUID".to_owned(),
        (Some("string"), Some("date-time")) => "a date and time (RFC 3339)".to_owned(),
        (Some("string"), _) => "text".to_owned(),
        (Some("integer"), Some(format)) if format.starts_with('u') => {
            "a whole number, 0 or more".to_owned()
        }
        (Some("integer"), _) => "a whole number".to_owned(),
        (Some("number"), _) => "a number".to_owned(),
        (Some("boolean"), _) => "true or false".to_owned(),
        (Some("array"), _) => "a list".to_owned(),
        (Some("object"), _) => "an object".to_owned(),
        _ => "a valid value".to_owned(),
    }
}

/// A value as it would be written in JSON, cut short when long.
fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schemas() -> &'static Value {
        static SCHEMAS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
            json!({
                "Signup": {
                    "type": "object",
                    "required": ["email", "full_name"],
                    "properties": {
                        "email": {"type": "string"},
                        "full_name": {"type": "string", "maxLength": 7},
                        "age": {"type": "integer", "format": "uint32", "nullable": true},
                        "plan": {"$ref": "#/components/schemas/Plan"},
                        "old_plan": {
                            "allOf": [{"$ref": "#/components/schemas/Plan"}, {"nullable": true}],
                            "nullable": true
                        },
                        "links": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                            "nullable": true
                        }
                    }
                },
                "Plan": {"type": "string", "enum": ["free", "pro"]}
            })
        });
        &SCHEMAS
    }

    async fn explained(body: Value, reason: &str) -> String {
        let bytes = Bytes::from(body.to_string());
        with_request_body(bytes, schemas, async { explain_body(reason) }).await
    }

    #[tokio::test]
    async fn a_wrong_type_names_the_field() {
        let reason =
            r#"Expected input type "string", found null. (occurred while parsing "Signup")"#;
        assert_eq!(
            explained(json!({"email": "a@b.c", "full_name": null}), reason).await,
            "`full_name` must be text, not null"
        );
        assert_eq!(
            explained(json!({"email": 5, "full_name": "A"}), reason).await,
            "`email` must be text, not 5"
        );
        assert_eq!(
            explained(json!({"full_name": "A"}), reason).await,
            "`email` is required (text)"
        );
        assert_eq!(
            explained(json!({"email": "a", "full_name": "A", "age": -1}), reason).await,
            "`age` must be a whole number, 0 or more, not -1"
        );
        assert_eq!(
            explained(
                json!({"email": "a", "full_name": "A", "links": {"github": false}}),
                reason
            )
            .await,
            "`links.github` must be text, not false"
        );
        assert_eq!(
            explained(
                json!({"email": "a", "full_name": "A", "old_plan": null, "plan": 1}),
                reason
            )
            .await,
            "`plan` must be one of `free`, `pro`, not 1"
        );
        assert_eq!(
            explained(json!([1]), r#"Expected input type "Signup", found [1]."#).await,
            "The body must be a JSON object"
        );
    }

    #[tokio::test]
    async fn validators_unknown_fields_and_bad_json_read_as_words() {
        let validator =
            r#"failed to parse "Signup": field `full_name` verification failed. maxLength(7)"#;
        assert_eq!(
            explained(json!({}), validator).await,
            "`full_name` must be at most 7 characters"
        );
        assert_eq!(
            explained(
                json!({}),
                r#"failed to parse "Signup": unknown field `nick`."#
            )
            .await,
            "`nick` is not a field of this body"
        );
        assert_eq!(
            explain_body("expected value at line 1 column 2"),
            "The body is not valid JSON (expected value at line 1 column 2)"
        );
        // Without the body at hand, still no type names of ours.
        assert_eq!(
            explain_body(r#"Expected input type "string", found 1. (occurred while parsing "X")"#),
            "A field of the body must be text"
        );
    }

    #[test]
    fn parameters_are_named_with_what_they_take() {
        assert_eq!(
            explain_parameter(
                "limit",
                r#"failed to parse "integer(uint32)": invalid digit found in string"#
            ),
            "`limit` must be a whole number, 0 or more"
        );
        assert_eq!(
            explain_parameter(
                "limit",
                "verification failed. maximum(100, exclusive: false)"
            ),
            "`limit` must be at most 100"
        );
        assert_eq!(
            explain_parameter("code", "verification failed. maxLength(7)"),
            "`code` must be at most 7 characters"
        );
        assert_eq!(
            explain_parameter("id", r#"Type "string(uuid)" expects an input value."#),
            "`id` is required"
        );
        assert_eq!(rule_in_words("pattern(\"^a$\")"), "must match \"^a$\"");
    }

    #[tokio::test]
    async fn an_operations_parameters_are_named_and_described_from_the_spec() {
        let parameters = json!([
            {"name": "employee_id", "in": "path", "schema": {"type": "string", "format": "uuid"}},
            {"name": "version", "in": "query", "schema": {"$ref": "#/components/schemas/Plan"}}
        ]);
        let words = std::sync::Arc::new(ParameterWords::of(&parameters, schemas()));
        let (path, version) = with_parameters(words, async {
            (
                path_parameter("param0"),
                explain_parameter(
                    "version",
                    r#"failed to parse "Plan": Expect a valid enumeration value."#,
                ),
            )
        })
        .await;
        assert_eq!(path, "employee_id");
        assert_eq!(version, "`version` must be one of `free`, `pro`");
        assert_eq!(path_parameter("param0"), "param0");
    }
}
