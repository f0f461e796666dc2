//! HTTP helpers shared by the endpoints: entity tags, pre-rendered bodies, security headers.

use bytes::Bytes;
use poem::{IntoResponse, Response, http::HeaderMap, http::header};
use poem_openapi::{
    payload::Payload,
    registry::{MetaSchemaRef, Registry},
    types::Type,
};

use crate::card::photo;

/// A body and its entity tag.
#[derive(Clone)]
pub struct Tagged {
    pub body: Bytes,
    pub etag: String,
}

impl Tagged {
    pub fn new(body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let etag = entity_tag(&body);
        Self { body, etag }
    }
}

/// A strong entity tag from the content.
pub fn entity_tag(body: &[u8]) -> String {
    format!("\"{}\"", photo::content_hash(body))
}

/// Whether an `If-None-Match` header matches `etag` (weak comparison, as RFC 9110 asks for GET).
pub fn matches_etag(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(header) = if_none_match else {
        return false;
    };
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let ours = bare(etag);
    header
        .split(',')
        .any(|tag| tag.trim() == "*" || bare(tag) == ours)
}

/// JSON that was serialized once, sent as is; documented as `T`.
pub struct PreRenderedJson<T>(Bytes, std::marker::PhantomData<T>);

impl<T> PreRenderedJson<T> {
    pub fn new(body: Bytes) -> Self {
        Self(body, std::marker::PhantomData)
    }
}

impl<T: Type + Send> Payload for PreRenderedJson<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for PreRenderedJson<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(self.0)
    }
}

/// The headers every page of ours carries.
pub fn security_headers(builder: poem::ResponseBuilder) -> poem::ResponseBuilder {
    builder
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "strict-origin-when-cross-origin")
        .header("X-Frame-Options", "DENY")
}

/// A browser (not an API client) asked for the page.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching() {
        let tag = entity_tag(b"hello");
        assert!(matches_etag(Some(&tag), &tag));
        assert!(matches_etag(Some(&format!("W/{tag}")), &tag));
        assert!(matches_etag(Some(&format!("\"other\", {tag}")), &tag));
        assert!(matches_etag(Some("*"), &tag));
        assert!(!matches_etag(Some("\"other\""), &tag));
        assert!(!matches_etag(None, &tag));
    }
}
