//! What the service tells its operators about itself: request ids, structured logs, metrics.
//!
//! - [`request`]: the middleware around every request (its id, its span, its metrics);
//! - [`metrics`]: Prometheus metrics and the private listener that serves them;
//! - [`routes`]: route templates, the only paths metrics name;
//! - [`logging`]: the log subscriber (`LOG_FORMAT`).

pub mod logging;
pub mod metrics;
pub mod request;
pub mod routes;

/// The id of one request: taken from a trusted proxy's `X-Request-Id` or made here, echoed in the
/// answer, and carried into every log line and audit event of the request. Found in the request's
/// data (`req.data::<RequestId>()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
