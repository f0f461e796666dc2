//! Around every request: its id (taken from a trusted proxy or made here, echoed in
//! `X-Request-Id`, kept in the request's data as [`RequestId`]), a `request` span carrying it, so
//! every log line of the request names it, and the request counted in the metrics.

use std::{sync::Arc, time::Instant};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderName, HeaderValue},
};
use tracing::Instrument;

use super::{RequestId, metrics::Metrics};

/// The answer's header that names the request.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a proxy; a longer one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a proxy's request id can be used as it is: 1 to 128 visible ASCII characters (no
/// space, no control character), so it is safe in a header, a log line and a label.
pub fn is_valid_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Where request ids come from.
#[derive(Debug, Clone)]
pub struct RequestIds {
    /// The header of a trusted proxy holding the id (`REQUEST_ID_HEADER`); `None`: every id is
    /// made here, whatever the client sent.
    trusted_header: Option<HeaderName>,
}

impl RequestIds {
    pub fn new(trusted_header: Option<&str>) -> anyhow::Result<Self> {
        let trusted_header = trusted_header
            .map(|name| {
                HeaderName::try_from(name)
                    .map_err(|_| anyhow::anyhow!("REQUEST_ID_HEADER `{name}` is no header name"))
            })
            .transpose()?;
        Ok(Self { trusted_header })
    }

    /// The trusted proxy's id when there is one and it is valid, a new one otherwise.
    pub fn id_of(&self, req: &Request) -> RequestId {
        let trusted = self
            .trusted_header
            .as_ref()
            .and_then(|name| req.headers().get(name))
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_valid_request_id(id));
        match trusted {
            Some(id) => RequestId(id.to_owned()),
            None => RequestId(uuid::Uuid::new_v4().to_string()),
        }
    }
}

/// The middleware: outermost, so it sees the final answer of everything inside.
pub async fn observe<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    ids: Arc<RequestIds>,
    metrics: Arc<Metrics>,
) -> poem::Result<Response> {
    let started = Instant::now();
    let id = ids.id_of(&req);
    req.set_data(id.clone());
    let route = metrics.route_of(req.uri().path());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id.as_str(),
        method = %method,
        route = %route,
    );
    let mut response = async move {
        match next.call(req).await {
            Ok(response) => response.into_response(),
            Err(err) => err.into_response(),
        }
    }
    .instrument(span.clone())
    .await;
    // Valid as a header value: generated, or checked to be visible ASCII.
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    let took = started.elapsed();
    let status = response.status();
    metrics.observe(route, &method, status, took);
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            duration_ms = took.as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_visible_ascii() {
        assert!(is_valid_request_id("abc-123_DEF.xyz:42"));
        assert!(is_valid_request_id(&"a".repeat(128)));
        assert!(!is_valid_request_id(&"a".repeat(129)));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("has space"));
        assert!(!is_valid_request_id("tab\there"));
        assert!(!is_valid_request_id("caf\u{e9}"));
        assert!(!is_valid_request_id("nul\0"));
    }

    fn request(header: Option<(&str, &str)>) -> Request {
        let mut builder = Request::builder();
        if let Some((name, value)) = header {
            builder = builder.header(name, value);
        }
        builder.finish()
    }

    #[test]
    fn a_proxy_id_is_taken_only_when_trusted_and_valid() {
        let trusting = RequestIds::new(Some("X-Request-Id")).unwrap();
        let id = trusting.id_of(&request(Some(("x-request-id", "from-proxy-1"))));
        assert_eq!(id.as_str(), "from-proxy-1");
        let made = trusting.id_of(&request(Some(("x-request-id", "two words"))));
        assert!(uuid::Uuid::parse_str(made.as_str()).is_ok(), "{made:?}");
        let made = trusting.id_of(&request(None));
        assert!(uuid::Uuid::parse_str(made.as_str()).is_ok(), "{made:?}");

        let untrusting = RequestIds::new(None).unwrap();
        let made = untrusting.id_of(&request(Some(("x-request-id", "from-client"))));
        assert_ne!(made.as_str(), "from-client");
        assert!(RequestIds::new(Some("bad header")).is_err());
    }

    /// The whole middleware around an endpoint that answers the id it finds in the request data.
    #[tokio::test]
    async fn handlers_find_the_id_in_the_request_data_and_the_request_is_counted() {
        use poem::EndpointExt;

        use crate::telemetry::{metrics, routes::RouteTemplates};
        // A pool that never connects: nothing here asks it for a connection.
        let db = crate::db::Db::connect_as_app(
            &"postgres://nobody@127.0.0.1:1/nothing".parse().unwrap(),
            None,
            1,
        )
        .unwrap();
        let metrics = Arc::new(Metrics::new(
            RouteTemplates::new("", ["/echo/{thing}"], &[]),
            metrics::Sources {
                db,
                ingest: Box::new(metrics::IngestCounts::default),
                outbox: Box::new(|| Box::pin(async { Ok(metrics::OutboxBacklog::default()) })),
            },
        ));
        let ids = Arc::new(RequestIds::new(Some("x-request-id")).unwrap());
        let echo = poem::endpoint::make_sync(|req: Request| {
            req.data::<RequestId>()
                .map(|id| id.0.clone())
                .unwrap_or_default()
        });
        let app = {
            let metrics = metrics.clone();
            echo.around(move |next, req| observe(next, req, ids.clone(), metrics.clone()))
        };
        let req = Request::builder()
            .uri_str("/echo/7a4f0c2e-5d1b-4d8e-9a1c-0b6f2e3d4c5a")
            .header("x-request-id", "kept-by-proxy")
            .finish();
        let resp = app.call(req).await.unwrap();
        assert_eq!(resp.headers()[REQUEST_ID_HEADER], "kept-by-proxy");
        assert_eq!(
            resp.into_body().into_string().await.unwrap(),
            "kept-by-proxy"
        );
        let text = metrics.render().await;
        assert!(
            text.contains(
                r#"http_requests_total{route="/echo/:thing",method="GET",status="2xx"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains("7a4f0c2e"), "{text}");
    }
}
