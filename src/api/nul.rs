//! PostgreSQL text cannot hold U+0000, so a NUL that reached a query would fail it with a 500.
//! This middleware refuses NUL at the door for every route: in JSON request bodies (values and
//! property names) and in the percent-decoded path and query string, with a 422 naming the field.
//! It also keeps the JSON body at hand while the request runs, so that a body that does not
//! parse is answered with the field named ([`crate::error::with_request_body`]).

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Request, Response, http::Uri};
use poem_openapi::error::ParseRequestPayloadError;
use serde_json::Value;

use crate::error::ApiError;

pub async fn refuse_nul<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    if let Some(refusal) = nul_in_uri(req.uri()) {
        return Err(refusal.into());
    }
    if has_json_body(&req) {
        // The body's size was bounded by the outer `limit_body`.
        let body = req.take_body().into_bytes().await?;
        if let Some(path) = nul_in_json(&body) {
            return Err(ApiError::invalid(match path {
                NulAt::Value(field) => format!("`{field}` must not contain NUL characters"),
                NulAt::Key(object) => {
                    format!("Property names must not contain NUL characters (in {object})")
                }
            })
            .into());
        }
        req.set_body(body.clone());
        // At hand for naming the field when the body does not parse.
        return crate::error::with_request_body(body, schemas, async move {
            match next.call(req).await {
                Ok(response) => Ok(response.into_response()),
                // Explained here, while the body is at hand; other errors go on as they are.
                Err(err) if err.is::<ParseRequestPayloadError>() => {
                    Err(ApiError::from_request_error(err).into())
                }
                Err(err) => Err(err),
            }
        })
        .await;
    }
    Ok(next.call(req).await?.into_response())
}

/// The spec's schemas, which tell what each field of a body takes.
fn schemas() -> &'static Value {
    static SCHEMAS: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| super::spec_value()["components"]["schemas"].clone());
    &SCHEMAS
}

fn has_json_body(req: &Request) -> bool {
    // The tracking beacon's body is checked by its own endpoint, which refuses one bad event
    // without touching the others.
    if req.uri().path() == "/api/analytics/track" {
        return false;
    }
    // Nor is an import's: a NUL in one row is that row's error, the others are imported.
    if super::employee_import::is_import_route(req.method(), req.uri().path()) {
        return false;
    }
    req.content_type().is_some_and(|ct| {
        let ct = ct.to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        essence == "application/json" || essence.ends_with("+json")
    })
}

#[derive(Debug, PartialEq, Eq)]
enum NulAt {
    /// A string value, by its path (`email`, `social_links.github`, `items[2]`).
    Value(String),
    /// A property name, by the object that holds it.
    Key(String),
}

/// Where the first NUL of a JSON body is, if it has one.
fn nul_in_json(body: &[u8]) -> Option<NulAt> {
    // Inside a JSON string a NUL can only be spelled `\u0000` (a raw one is invalid JSON, refused
    // by the parser): most bodies are never parsed here.
    if !body.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    // Invalid JSON is the endpoint's to refuse, with its parser's message.
    let value: Value = serde_json::from_slice(body).ok()?;
    find_nul(&value, &mut String::new())
}

fn find_nul(value: &Value, path: &mut String) -> Option<NulAt> {
    match value {
        Value::String(s) if s.contains('\0') => Some(NulAt::Value(if path.is_empty() {
            "body".to_owned()
        } else {
            path.clone()
        })),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find_nul(item, path);
            path.truncate(len);
            found
        }),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(NulAt::Key(if path.is_empty() {
                    "the body".to_owned()
                } else {
                    format!("`{path}`")
                }));
            }
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let found = find_nul(item, path);
            path.truncate(len);
            found
        }),
        _ => None,
    }
}

/// `%00` in the path or in a query parameter.
fn nul_in_uri(uri: &Uri) -> Option<ApiError> {
    let invalid = |detail: String| ApiError::unprocessable("invalid_parameter", detail);
    if uri.path().contains("%00") {
        return Some(invalid(
            "The path must not contain NUL characters".to_owned(),
        ));
    }
    let query = uri.query()?;
    query
        .split('&')
        .find(|pair| pair.contains("%00"))
        .map(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            if name.contains("%00") {
                invalid("Query parameter names must not contain NUL characters".to_owned())
            } else {
                invalid(format!(
                    "`{}` must not contain NUL characters",
                    percent_decoded(name)
                ))
            }
        })
}

/// `%XX` escapes and `+` decoded, for naming a parameter in a message.
fn percent_decoded(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(body: &str) -> Option<NulAt> {
        nul_in_json(body.as_bytes())
    }

    #[test]
    fn finds_nul_in_values_and_names_them_by_path() {
        assert_eq!(at(r#"{"email":"a@example.com"}"#), None);
        assert_eq!(
            at(r#"{"email":"a\u0000@example.com","password":"x"}"#),
            Some(NulAt::Value("email".into()))
        );
        assert_eq!(
            at(r#"{"social_links":{"github":"https://x\u0000"}}"#),
            Some(NulAt::Value("social_links.github".into()))
        );
        assert_eq!(
            at(r#"{"items":["ok",{"name":"\u0000"}]}"#),
            Some(NulAt::Value("items[1].name".into()))
        );
        assert_eq!(
            at(r#"{"social_links":{"a\u0000":"https://x"}}"#),
            Some(NulAt::Key("`social_links`".into()))
        );
        // An escaped backslash followed by `u0000` is no NUL.
        assert_eq!(at(r#"{"bio":"\\u0000"}"#), None);
        // Invalid JSON is left to the endpoint.
        assert_eq!(at(r#"{"bio":"\u0000"#), None);
    }

    #[test]
    fn finds_nul_in_the_path_and_query() {
        let check = |uri: &str| nul_in_uri(&uri.parse().unwrap()).map(|e| e.to_string());
        assert_eq!(check("/api/health?x=1"), None);
        assert!(check("/card/acme%00/jane").unwrap().contains("path"));
        assert!(
            check("/api/analytics?from=2026%00&tz=UTC")
                .unwrap()
                .contains("`from` must not contain NUL")
        );
        assert!(check("/x?a%00=1").unwrap().contains("names"));
        assert_eq!(percent_decoded("a%5Bb%5D+c"), "a[b] c");
    }
}
