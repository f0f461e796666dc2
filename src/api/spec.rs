//! The OpenAPI document served at `/openapi.json` and `/docs` and committed as
//! `openapi/openapi.json`: poem-openapi's, completed with what its generator cannot know.
//!
//! - Every handler fails with the one [`ApiError`](crate::error::ApiError), which poem-openapi
//!   can only describe as a `default` response. Here each operation lists instead the error
//!   statuses it really answers ([`ERRORS`]), each with the `ErrorBody` schema, and
//!   `Retry-After` on 429 and 503: a status outside its list is a bug that a client or a fuzzer
//!   can see.
//! - Tags are listed in the product's order (`tag_order`), not by name; 401s say how to
//!   authenticate (`WWW-Authenticate: Bearer`).
//! - Request bodies are `deny_unknown_fields`, which poem-openapi does not emit: here they get
//!   `additionalProperties: false` (the unit tests check that every one refuses an unknown
//!   field).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::ParameterWords;

/// The error statuses of each operation, by method and path (as in the spec, under `/api`),
/// besides those that follow from the operation's shape ([`implied_statuses`]): 401 for bearer
/// authentication; 413, 415 and 422 for a JSON body.
///
/// 503 is answered by everything that touches the database (an outage or its deadline:
/// `database_unavailable`) and by bounded pools that are full (password hashing, image decoding,
/// public cache misses); 429 by per-client and per-account limits (login, sign-up, password
/// changes, refreshes, emailed-link tokens, public card lookups, tracking).
#[rustfmt::skip]
pub const ERRORS: &[(&str, &str, &[u16])] = &[
    ("post", "/auth/signup", &[409, 429, 503]),
    ("post", "/auth/login", &[401, 403, 429, 503]),
    ("get", "/auth/me", &[503]),
    ("post", "/auth/change-password", &[403, 429, 503]),
    ("post", "/auth/forgot-password", &[429, 503]),
    ("post", "/auth/reset-password", &[404, 410, 429, 503]),
    ("post", "/auth/verify-email", &[404, 410, 429, 503]),
    ("post", "/auth/resend-verification", &[409, 429, 503]),
    ("post", "/auth/refresh", &[401, 429, 503]),
    ("post", "/auth/logout", &[503]),
    ("post", "/auth/logout-all", &[503]),
    ("get", "/auth/sessions", &[503]),
    ("delete", "/auth/sessions/{session_id}", &[404, 422, 503]),
    ("post", "/company", &[403, 409, 503]),
    ("get", "/company", &[422, 503]),
    ("get", "/company/{company_id}", &[404, 422, 503]),
    ("put", "/company/{company_id}", &[403, 404, 503]),
    ("post", "/company/{company_id}/employees", &[402, 403, 404, 409, 503]),
    ("get", "/company/{company_id}/employees", &[404, 422, 503]),
    ("post", "/company/{company_id}/employees/import", &[402, 403, 404, 413, 415, 422, 503]),
    ("get", "/employees/{employee_id}", &[404, 422, 503]),
    ("put", "/employees/{employee_id}", &[403, 404, 503]),
    ("delete", "/employees/{employee_id}", &[403, 404, 422, 503]),
    ("put", "/employees/{employee_id}/photo", &[400, 403, 404, 413, 415, 422, 503]),
    ("delete", "/employees/{employee_id}/photo", &[403, 404, 422, 503]),
    ("put", "/company/{company_id}/logo", &[400, 403, 404, 413, 415, 422, 503]),
    ("delete", "/company/{company_id}/logo", &[403, 404, 422, 503]),
    ("get", "/card/{company_slug}/{employee_slug}", &[404, 429, 503]),
    ("get", "/card/{company_slug}/{employee_slug}/qr.png", &[404, 422, 429, 503]),
    ("get", "/card/{company_slug}/{employee_slug}/qr.svg", &[404, 422, 429, 503]),
    ("get", "/card/{company_slug}/{employee_slug}/vcard", &[404, 422, 429, 503]),
    ("post", "/analytics/track", &[404, 429, 503]),
    ("get", "/analytics/company/{company_id}", &[403, 404, 422, 503]),
    ("get", "/analytics/employee/{employee_id}", &[403, 404, 422, 503]),
    ("get", "/analytics/company/{company_id}/timeseries", &[403, 404, 422, 503]),
    ("get", "/analytics/employee/{employee_id}/timeseries", &[403, 404, 422, 503]),
    ("get", "/analytics/company/{company_id}/breakdown", &[403, 404, 422, 503]),
    ("get", "/analytics/company/{company_id}/leaderboard", &[403, 404, 422, 503]),
    ("get", "/analytics/company/{company_id}/export.csv", &[403, 404, 422, 503]),
    ("get", "/company/{company_id}/analytics/live", &[403, 404, 422, 429, 503]),
    ("post", "/company/{company_id}/users", &[403, 404, 409, 503]),
    ("get", "/company/{company_id}/users", &[403, 404, 422, 503]),
    ("get", "/company/{company_id}/users/{user_id}", &[403, 404, 422, 503]),
    ("put", "/company/{company_id}/users/{user_id}", &[403, 404, 409, 503]),
    ("delete", "/company/{company_id}/users/{user_id}", &[403, 404, 409, 422, 503]),
    ("post", "/company/{company_id}/invitations", &[403, 404, 409, 429, 503]),
    ("get", "/company/{company_id}/invitations", &[403, 404, 422, 503]),
    ("delete", "/company/{company_id}/invitations/{invitation_id}", &[403, 404, 422, 503]),
    ("post", "/auth/accept-invitation", &[404, 409, 410, 429, 503]),
    ("get", "/subscriptions/plans", &[503]),
    ("get", "/subscriptions/current", &[404, 503]),
    ("put", "/company/{company_id}/subscription", &[403, 404, 503]),
    ("get", "/company/{company_id}/audit", &[403, 404, 422, 503]),
    ("post", "/company/{company_id}/webhooks", &[403, 404, 409, 503]),
    ("get", "/company/{company_id}/webhooks", &[403, 404, 422, 503]),
    ("get", "/company/{company_id}/webhooks/{webhook_id}", &[403, 404, 422, 503]),
    ("put", "/company/{company_id}/webhooks/{webhook_id}", &[403, 404, 503]),
    ("delete", "/company/{company_id}/webhooks/{webhook_id}", &[403, 404, 422, 503]),
    ("post", "/company/{company_id}/webhooks/{webhook_id}/test", &[403, 404, 422, 503]),
    ("get", "/company/{company_id}/webhooks/{webhook_id}/deliveries", &[403, 404, 422, 503]),
    ("post", "/card/{company_slug}/{employee_slug}/leads", &[403, 404, 422, 429, 503]),
    ("get", "/company/{company_id}/leads", &[404, 422, 503]),
    ("get", "/company/{company_id}/leads/export.csv", &[404, 422, 503]),
    ("get", "/leads/{lead_id}", &[404, 422, 503]),
    ("delete", "/leads/{lead_id}", &[403, 404, 422, 503]),
    ("get", "/leads/{lead_id}/vcard", &[404, 422, 503]),
    // Touches nothing but the process.
    ("get", "/health/live", &[]),
    // Its 503 is its own answer (`degraded`), already in the spec.
    ("get", "/health", &[]),
];

/// What a status means, for any operation; `code` says which case it is.
fn description(status: u16) -> &'static str {
    match status {
        400 => "The form cannot be read, or has no `file` field (`bad_request`).",
        401 => {
            "Not authenticated: the bearer token is missing, invalid or expired, its session \
                has ended (`session_ended`) or its login's role changed (`token_outdated`: \
                refresh it), or (login) the email or password is wrong, or (refresh) the refresh \
                token is unknown (`invalid_refresh_token`) or its session over."
        }
        402 => "The company's plan allows no more of these (`plan_limit_reached`).",
        403 => {
            "Authenticated but not allowed: the caller's role, a disabled account, or (password \
                change) a wrong current password."
        }
        404 => {
            "Not found, or not visible to the caller; or the token of an emailed link is not \
                one (`invalid_token`)."
        }
        409 => {
            "Conflicts with an existing record or rule (`email_taken`, `slug_taken`, \
                `employee_already_linked`, `employee_already_invited`, `last_admin`, \
                `too_many_webhooks`), or with \
                the account's state (`already_verified`)."
        }
        410 => {
            "The emailed link was used, withdrawn or replaced (`token_used`, `invitation_used`, \
                `invitation_withdrawn`), or has expired (`token_expired`, `invitation_expired`)."
        }
        413 => "The body is too large (`payload_too_large`).",
        415 => "The body's content type is not accepted here.",
        422 => "A parameter or the body is invalid; `detail` names it.",
        429 => {
            "Too many requests from this client (or for this account): wait `Retry-After` \
                seconds."
        }
        503 => {
            "Temporarily unavailable: the database is unreachable or too slow \
                (`database_unavailable`), or the service is busy. Wait `Retry-After` seconds."
        }
        _ => "An error.",
    }
}

/// Statuses that follow from what an operation takes.
fn implied_statuses(operation: &Value) -> Vec<u16> {
    let mut statuses = Vec::new();
    if operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
    {
        statuses.push(401);
    }
    let takes_json = operation["requestBody"]["content"]
        .as_object()
        .is_some_and(|content| content.keys().any(|k| k.starts_with("application/json")));
    if takes_json {
        statuses.extend([413, 415, 422]);
    }
    statuses
}

fn error_response(status: u16) -> Value {
    let mut response = json!({
        "description": description(status),
        "content": {
            "application/json; charset=utf-8": {
                "schema": {"$ref": "#/components/schemas/ErrorBody"}
            }
        }
    });
    if status == 429 || status == 503 {
        response["headers"] = retry_after();
    }
    if status == 401 {
        response["headers"] = json!({
            "WWW-Authenticate": {
                "description": "`Bearer` (with `error=\"invalid_token\"` when a token was sent).",
                "required": true,
                "deprecated": false,
                "schema": {"type": "string"}
            }
        });
    }
    response
}

fn retry_after() -> Value {
    json!({
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "required": true,
            "deprecated": false,
            "schema": {"type": "integer", "format": "uint64", "minimum": 1}
        }
    })
}

/// poem-openapi describes a `text/event-stream` answer as an array of its messages; OpenAPI
/// tools (Schemathesis among them) read that schema as the schema of ONE event, as the HTML
/// specification parses it: `event` names it, `data` carries the message as JSON text.
fn describe_event_stream(response: &mut Value) {
    let Some(media) = response
        .get_mut("content")
        .and_then(|content| content.get_mut("text/event-stream"))
    else {
        return;
    };
    let message = media["schema"]["items"].clone();
    let mut data = json!({
        "type": "string",
        "description": "The message, as JSON.",
        "contentMediaType": "application/json",
    });
    if message.is_object() {
        data["contentSchema"] = message;
    }
    media["schema"] = json!({
        "type": "object",
        "description": "One event of the stream.",
        "required": ["data"],
        "properties": {
            "event": {"type": "string", "description": "The kind of message."},
            "data": data,
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
    });
}

/// The error statuses an operation answers: its entry in [`ERRORS`] and the implied ones.
fn error_statuses(method: &str, path: &str, operation: &Value) -> Option<Vec<u16>> {
    let (_, _, listed) = ERRORS.iter().find(|(m, p, _)| *m == method && *p == path)?;
    let mut statuses = implied_statuses(operation);
    statuses.extend(listed.iter().copied());
    statuses.sort_unstable();
    statuses.dedup();
    Some(statuses)
}

/// Completes poem-openapi's spec (see the module's documentation).
///
/// # Panics
/// When `generated` is not poem-openapi's JSON, or an operation has no entry in [`ERRORS`]:
/// both caught by the unit tests.
/// The public lead door, which the card page's form posts to.
const LEAD_FORM_PATH: &str = "/card/{company_slug}/{employee_slug}/leads";

pub fn complete(generated: &str, tag_order: &[&str]) -> Value {
    let mut spec: Value = serde_json::from_str(generated).expect("poem-openapi emits JSON");
    if let Some(tags) = spec["tags"].as_array_mut() {
        let rank = |tag: &Value| {
            let name = tag["name"].as_str().unwrap_or_default();
            tag_order
                .iter()
                .position(|t| *t == name)
                .unwrap_or(usize::MAX)
        };
        tags.sort_by_key(rank);
    }
    let mut strict_bodies = Vec::new();
    let paths = spec["paths"].as_object_mut().expect("the spec has paths");
    for (path, operations) in paths.iter_mut() {
        let operations = operations
            .as_object_mut()
            .expect("a path item is an object");
        for (method, operation) in operations.iter_mut() {
            let statuses = error_statuses(method, path, operation)
                .unwrap_or_else(|| panic!("{method} {path} has no entry in api::spec::ERRORS"));
            for content in operation["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flat_map(Map::values)
            {
                if let Some(name) = content["schema"]["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    strict_bodies.push(name.to_owned());
                }
            }
            let responses = operation["responses"]
                .as_object_mut()
                .expect("an operation has responses");
            responses.remove("default");
            for response in responses.values_mut() {
                describe_event_stream(response);
            }
            // The card page's form posts here; a refused form is answered with a page a person
            // reads (see `lead_intake`), the same statuses as the JSON errors.
            let answers_forms_with_pages = method == "post" && path == LEAD_FORM_PATH;
            for status in statuses {
                let entry = responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_response(status));
                if answers_forms_with_pages {
                    entry["content"]["text/html"] = json!({"schema": {"type": "string"}});
                }
                // A response of the operation's own type (e.g. the tracking 429) keeps its
                // description; it gets `Retry-After` like the others.
                if (status == 429 || status == 503) && !has_header(entry, "retry-after") {
                    let headers = entry
                        .as_object_mut()
                        .expect("a response is an object")
                        .entry("headers")
                        .or_insert_with(|| json!({}));
                    if let (Some(headers), Value::Object(header)) =
                        (headers.as_object_mut(), retry_after())
                    {
                        headers.extend(header);
                    }
                }
            }
        }
    }
    // Request bodies refuse unknown fields, and so do the objects they hold (an import's rows).
    while let Some(name) = strict_bodies.pop() {
        let Some(schema) = spec["components"]["schemas"].get_mut(&name) else {
            continue;
        };
        if schema["type"] != "object" || schema["additionalProperties"] == false {
            continue;
        }
        schema["additionalProperties"] = Value::Bool(false);
        for property in schema["properties"]
            .as_object()
            .into_iter()
            .flat_map(Map::values)
        {
            let reference = property["$ref"]
                .as_str()
                .or_else(|| property["items"]["$ref"].as_str());
            if let Some(held) = reference.and_then(|r| r.strip_prefix("#/components/schemas/")) {
                strict_bodies.push(held.to_owned());
            }
        }
    }
    spec
}

/// The operations of the spec by path template: the methods each path answers, for the `Allow`
/// header of a 405 (RFC 9110 requires it, and clients use it to tell a wrong method from a wrong
/// path), and what each operation's parameters are called and take, for naming one that does not
/// parse.
pub struct Operations(Vec<PathItem>);

struct PathItem {
    segments: Vec<String>,
    allow: String,
    parameters: Vec<(String, Arc<ParameterWords>)>,
}

impl Operations {
    pub fn of(spec: &Value) -> Self {
        let schemas = &spec["components"]["schemas"];
        let mut paths = Vec::new();
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            let operations = item.as_object().into_iter().flatten();
            let methods: Vec<String> = operations
                .clone()
                .map(|(m, _)| m.to_ascii_uppercase())
                .collect();
            let parameters = operations
                .map(|(method, operation)| {
                    let words = ParameterWords::of(&operation["parameters"], schemas);
                    (method.to_ascii_uppercase(), Arc::new(words))
                })
                .collect();
            paths.push(PathItem {
                segments: path.split('/').map(str::to_owned).collect(),
                allow: methods.join(", "),
                parameters,
            });
        }
        Self(paths)
    }

    /// The `Allow` value of a path under the server URL (`/company/…`), when it is one of ours.
    pub fn allow(&self, path: &str) -> Option<&str> {
        self.item_of(path).map(|item| item.allow.as_str())
    }

    /// What the parameters of `method` on `path` are called and take (nothing when it is no
    /// operation of ours).
    pub fn parameters(&self, method: &str, path: &str) -> Arc<ParameterWords> {
        self.item_of(path)
            .and_then(|item| item.parameters.iter().find(|(m, _)| m == method))
            .map(|(_, words)| words.clone())
            .unwrap_or_default()
    }

    fn item_of(&self, path: &str) -> Option<&PathItem> {
        let segments: Vec<&str> = path.split('/').collect();
        self.0.iter().find(|item| {
            item.segments.len() == segments.len()
                && item.segments.iter().zip(&segments).all(|(t, s)| {
                    (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                })
        })
    }
}

fn has_header(response: &Value, name: &str) -> bool {
    response["headers"]
        .as_object()
        .is_some_and(|headers| headers.keys().any(|k| k.eq_ignore_ascii_case(name)))
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ParseFromJSON;

    use super::*;
    use crate::api::{
        account, auth, companies, employee_import, employees, invitations, lead_intake,
        subscriptions, tracking, users, webhooks,
    };

    fn spec() -> Value {
        serde_json::from_str(&crate::api::spec_json()).unwrap()
    }

    fn operations(spec: &Value) -> Vec<(String, String, Value)> {
        let mut all = Vec::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                all.push((method.clone(), path.clone(), operation.clone()));
            }
        }
        all
    }

    #[test]
    fn every_operation_lists_its_errors_and_none_keeps_default() {
        let raw: Value = serde_json::from_str(&crate::api::service().spec()).unwrap();
        let raw_operations = operations(&raw);
        for (method, path, _) in &raw_operations {
            assert!(
                ERRORS.iter().any(|(m, p, _)| m == method && p == path),
                "{method} {path} has no entry in ERRORS"
            );
        }
        for (method, path, _) in ERRORS {
            assert!(
                raw_operations
                    .iter()
                    .any(|(m, p, _)| m == method && p == path),
                "ERRORS lists {method} {path}, which is not an operation"
            );
        }
        for (method, path, operation) in operations(&spec()) {
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                !responses.contains_key("default"),
                "{method} {path} keeps `default`"
            );
            for (status, response) in responses {
                let code: u16 = status.parse().unwrap();
                if code >= 400 {
                    assert!(
                        response["content"]["application/json; charset=utf-8"]["schema"]
                            .is_object(),
                        "{method} {path} {status} has no JSON body"
                    );
                }
                if code == 429 || (code == 503 && path != "/health") {
                    assert!(
                        has_header(response, "retry-after"),
                        "{method} {path} {status} lacks Retry-After"
                    );
                }
            }
        }
    }

    #[test]
    fn authenticated_operations_answer_401_and_public_ones_do_not_except_login() {
        for (method, path, operation) in operations(&spec()) {
            let secured = operation.get("security").is_some();
            let has_401 = operation["responses"].get("401").is_some();
            // Login and refresh are how one gets a token: they answer 401 without taking one.
            assert_eq!(
                has_401,
                secured || path == "/auth/login" || path == "/auth/refresh",
                "{method} {path}: 401 and bearer security go together"
            );
        }
    }

    /// Every property that may be left out is `null` in answers (an `Option` serializes as
    /// `null`) and accepts `null` in requests: both must say `nullable`. Except the required
    /// fields of an update: left out they are kept, but they cannot be cleared (`null` is 422).
    #[test]
    fn optional_properties_are_nullable() {
        const KEPT_NOT_CLEARED: [(&str, &str); 10] = [
            ("UpdateCompany", "name"),
            ("UpdateCompany", "lead_capture_enabled"),
            ("UpdateCompany", "lead_consent_required"),
            ("UpdateEmployee", "full_name"),
            ("UpdateUser", "full_name"),
            ("UpdateUser", "role"),
            ("UpdateUser", "is_active"),
            ("UpdateWebhook", "url"),
            ("UpdateWebhook", "events"),
            ("UpdateWebhook", "enabled"),
        ];
        let spec = spec();
        for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
            let Some(properties) = schema["properties"].as_object() else {
                continue;
            };
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for (property, definition) in properties {
                let optional = !required.contains(&property.as_str())
                    && !KEPT_NOT_CLEARED.contains(&(name.as_str(), property.as_str()));
                assert_eq!(
                    definition["nullable"] == true,
                    optional,
                    "{name}.{property}: nullable exactly when optional"
                );
            }
        }
    }

    #[test]
    fn event_streams_are_described_one_event_at_a_time() {
        let spec = spec();
        let live = &spec["paths"]["/company/{company_id}/analytics/live"]["get"]["responses"]["200"]
            ["content"]["text/event-stream"]["schema"];
        assert_eq!(live["type"], "object", "{live}");
        assert_eq!(live["required"], json!(["data"]));
        assert_eq!(live["properties"]["data"]["type"], "string");
        assert_eq!(
            live["properties"]["data"]["contentSchema"]["$ref"],
            "#/components/schemas/LiveMessage"
        );
        // Answers without a body stay without one (no `content: null` for tools to trip on).
        for (method, path, operation) in operations(&spec) {
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert_ne!(
                    response.get("content"),
                    Some(&Value::Null),
                    "{method} {path} {status}"
                );
            }
        }
    }

    #[test]
    fn tags_follow_the_products_order() {
        let names: Vec<String> = spec()["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "Auth",
                "Companies",
                "Employees",
                "Users",
                "Subscriptions",
                "Cards",
                "Leads",
                "Analytics",
                "Webhooks",
                "Health"
            ]
        );
        for (_, _, operation) in operations(&spec()) {
            if operation.get("security").is_some() {
                assert!(has_header(
                    &operation["responses"]["401"],
                    "www-authenticate"
                ));
            }
        }
    }

    #[test]
    fn operations_follow_the_templates() {
        let operations = Operations::of(&spec());
        let id = uuid::Uuid::nil();
        assert_eq!(operations.allow("/company"), Some("GET, POST"));
        assert_eq!(
            operations.allow(&format!("/employees/{id}")),
            Some("DELETE, GET, PUT")
        );
        assert_eq!(operations.allow("/employees/"), None);
        assert_eq!(operations.allow("/nothing"), None);
        let words = operations.parameters("GET", &format!("/company/{id}/employees"));
        assert!(format!("{words:?}").contains("company_id"), "{words:?}");
        let none = operations.parameters("GET", "/nothing");
        assert!(format!("{none:?}").contains("path: []"), "{none:?}");
    }

    fn refuses_unknown_fields<T: ParseFromJSON>(valid: Value) -> bool {
        assert!(T::parse_from_json(Some(valid.clone())).is_ok(), "{valid}");
        let mut extra = valid;
        extra["unexpected"] = json!(1);
        T::parse_from_json(Some(extra)).is_err()
    }

    #[test]
    fn request_bodies_refuse_unknown_fields_as_the_spec_says() {
        let checked = [
            (
                "SignupRequest",
                refuses_unknown_fields::<auth::SignupRequest>(
                    json!({"email": "a@example.com", "password": "p", "full_name": "A"}),
                ),
            ),
            (
                "LoginRequest",
                refuses_unknown_fields::<auth::LoginRequest>(
                    json!({"email": "a@example.com", "password": "p"}),
                ),
            ),
            (
                "ChangePasswordRequest",
                refuses_unknown_fields::<auth::ChangePasswordRequest>(
                    json!({"current_password": "p", "new_password": "q"}),
                ),
            ),
            (
                "ForgotPasswordRequest",
                refuses_unknown_fields::<account::ForgotPasswordRequest>(
                    json!({"email": "a@example.com"}),
                ),
            ),
            (
                "ResetPasswordRequest",
                refuses_unknown_fields::<account::ResetPasswordRequest>(
                    json!({"token": "t", "password": "p"}),
                ),
            ),
            (
                "VerifyEmailRequest",
                refuses_unknown_fields::<account::VerifyEmailRequest>(json!({"token": "t"})),
            ),
            (
                "RefreshRequest",
                refuses_unknown_fields::<auth::RefreshRequest>(json!({"refresh_token": "t"})),
            ),
            (
                "CreateCompany",
                refuses_unknown_fields::<companies::CreateCompany>(json!({"name": "A"})),
            ),
            (
                "UpdateCompany",
                refuses_unknown_fields::<companies::UpdateCompany>(json!({})),
            ),
            (
                "CreateEmployee",
                refuses_unknown_fields::<employees::CreateEmployee>(json!({"full_name": "A"})),
            ),
            (
                "UpdateEmployee",
                refuses_unknown_fields::<employees::UpdateEmployee>(json!({})),
            ),
            (
                "CreateUser",
                refuses_unknown_fields::<users::CreateUser>(json!({
                    "email": "a@example.com", "password": "p", "full_name": "A", "role": "admin"
                })),
            ),
            (
                "UpdateUser",
                refuses_unknown_fields::<users::UpdateUser>(json!({})),
            ),
            (
                "CreateInvitation",
                refuses_unknown_fields::<invitations::CreateInvitation>(json!({
                    "email": "a@example.com", "role": "employee"
                })),
            ),
            (
                "AcceptInvitation",
                refuses_unknown_fields::<invitations::AcceptInvitation>(json!({
                    "token": "t", "password": "p"
                })),
            ),
            (
                "ChangePlan",
                refuses_unknown_fields::<subscriptions::ChangePlan>(json!({"plan": "free"})),
            ),
            (
                "TrackRequest",
                refuses_unknown_fields::<tracking::TrackRequest>(json!({"action": "view"})),
            ),
            (
                "ImportRows",
                refuses_unknown_fields::<employee_import::ImportRows>(json!({"rows": []})),
            ),
            (
                "ImportRowInput",
                refuses_unknown_fields::<employee_import::ImportRowInput>(json!({})),
            ),
            (
                "CreateWebhook",
                refuses_unknown_fields::<webhooks::CreateWebhook>(json!({
                    "url": "https://hooks.example.com/", "events": ["lead.created"]
                })),
            ),
            (
                "UpdateWebhook",
                refuses_unknown_fields::<webhooks::UpdateWebhook>(json!({})),
            ),
            (
                "LeadSubmission",
                refuses_unknown_fields::<lead_intake::LeadSubmission>(json!({
                    "name": "n", "email": "e@example.com", "started": "1.x"
                })),
            ),
            (
                "LeadFormSubmission",
                refuses_unknown_fields::<lead_intake::LeadFormFields>(json!({"name": "n"})),
            ),
        ];
        for (name, refuses) in &checked {
            assert!(refuses, "{name} accepts an unknown field");
        }
        let spec = spec();
        let mut strict: Vec<&str> = spec["components"]["schemas"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, schema)| schema["additionalProperties"] == false)
            .map(|(name, _)| name.as_str())
            .collect();
        strict.sort_unstable();
        let mut expected: Vec<&str> = checked.iter().map(|(name, _)| *name).collect();
        expected.sort_unstable();
        assert_eq!(strict, expected);
    }
}
