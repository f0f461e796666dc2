//! Prometheus metrics, served on a listener of their own (`METRICS_ADDR`), never on the public
//! port.
//!
//! Each [`Metrics`] (one per running application) counts its HTTP requests and reads, on every
//! scrape, what its parts already know: the database pool, the analytics queue, the outbox. A few
//! events happen deep inside parts that hold no handle on the application (a card cache lookup, a
//! throttled login, a batch of stored events): those count into the process-wide metrics below,
//! which every registry shows.
//!
//! Label values are bounded sets: route templates (never a concrete path), a method among a
//! known few, a status class.

use std::{
    fmt::Write as _,
    sync::{Arc, LazyLock},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use poem::http::{Method, StatusCode};
use prometheus_client::{
    collector::Collector,
    encoding::{
        DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
    },
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use super::routes::RouteTemplates;
use crate::db::{Db, DbError};

/// `Content-Type` of the Prometheus text exposition format (0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How long an outbox count is reused: scrapes, however frequent, query it at most this often.
const OUTBOX_COUNT_TTL: Duration = Duration::from_secs(10);
/// How long a scrape waits for the outbox count before showing the previous one.
const OUTBOX_COUNT_DEADLINE: Duration = Duration::from_secs(2);

/// Card cache lookups, by `result` (`hit` or `miss`). Process-wide.
pub static CARD_CACHE_LOOKUPS: LazyLock<Family<ResultLabel, Counter>> =
    LazyLock::new(Family::default);

/// Login attempts refused by the throttle (per address or per account). Process-wide.
pub static LOGINS_THROTTLED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Events per batch the analytics writer stores. Process-wide.
pub static ANALYTICS_BATCH_SIZES: LazyLock<Histogram> =
    LazyLock::new(|| Histogram::new(exponential_buckets(1.0, 4.0, 7)));

/// Counts one card cache lookup.
pub fn count_card_cache_lookup(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    CARD_CACHE_LOOKUPS
        .get_or_create(&ResultLabel { result })
        .inc();
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// A route template as a label value; shared, so counting a request copies no string.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Route(Arc<str>);

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: Route,
    method: &'static str,
    status: &'static str,
}

/// The method as a label: the ones the service knows; anything a stranger makes up is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// What the analytics writer has been handed and has done, read on each scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestCounts {
    /// Events handed to the queue.
    pub queued: u64,
    /// Events stored.
    pub stored: u64,
    /// Events whose storing failed.
    pub failed: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
}

/// Outbox messages not yet sent, and given up on; each count stops at the bound it was asked with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    pub pending: i64,
    pub failed: i64,
}

/// Where a scrape reads the parts of the service it does not own.
pub struct Sources {
    pub db: Db,
    pub ingest: Box<dyn Fn() -> IngestCounts + Send + Sync>,
    pub outbox: Box<dyn Fn() -> BoxFuture<'static, Result<OutboxBacklog, DbError>> + Send + Sync>,
}

/// The metrics of one running application.
pub struct Metrics {
    registry: Registry,
    routes: RouteTemplates,
    requests: Family<HttpLabels, Counter>,
    durations: Family<HttpLabels, Histogram>,
    outbox: Box<dyn Fn() -> BoxFuture<'static, Result<OutboxBacklog, DbError>> + Send + Sync>,
    outbox_pending: Gauge,
    outbox_failed: Gauge,
    /// When the outbox was last counted; held while counting, so scrapes never pile up queries.
    outbox_counted: tokio::sync::Mutex<Option<Instant>>,
}

impl Metrics {
    pub fn new(routes: RouteTemplates, sources: Sources) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status class",
            requests.clone(),
        );
        let durations = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer's headers, by route template, method \
             and status class",
            durations.clone(),
        );
        let outbox_pending = Gauge::default();
        registry.register(
            "outbox_pending_messages",
            "Outbox messages waiting to be sent (counted every 10 s at most, up to 100000)",
            outbox_pending.clone(),
        );
        let outbox_failed = Gauge::default();
        registry.register(
            "outbox_failed_messages",
            "Outbox messages given up on (counted every 10 s at most, up to 100000)",
            outbox_failed.clone(),
        );
        registry.register(
            "card_cache_lookups",
            "Rendered card cache lookups, by result (hit or miss); process-wide",
            CARD_CACHE_LOOKUPS.clone(),
        );
        for result in ["hit", "miss"] {
            // Both series from the start, so a rate of either is defined before it happens.
            let _ = CARD_CACHE_LOOKUPS.get_or_create(&ResultLabel { result });
        }
        registry.register(
            "auth_logins_throttled",
            "Login attempts refused by the throttle; process-wide",
            LOGINS_THROTTLED.clone(),
        );
        registry.register(
            "analytics_ingest_batch_size_events",
            "Events per batch stored by the analytics writer; process-wide",
            ANALYTICS_BATCH_SIZES.clone(),
        );
        let Sources { db, ingest, outbox } = sources;
        registry.register_collector(Box::new(LiveGauges { db, ingest }));
        Self {
            registry,
            routes,
            requests,
            durations,
            outbox,
            outbox_pending,
            outbox_failed,
            outbox_counted: tokio::sync::Mutex::new(None),
        }
    }

    /// The route template of `path`, for labels and logs.
    pub fn route_of(&self, path: &str) -> Arc<str> {
        self.routes.template_of(path)
    }

    /// Counts one answered request.
    pub fn observe(&self, route: Arc<str>, method: &Method, status: StatusCode, took: Duration) {
        let labels = HttpLabels {
            route: Route(route),
            method: method_label(method),
            status: status_class(status),
        };
        self.requests.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Everything, in the Prometheus text format.
    pub async fn render(&self) -> String {
        self.count_outbox().await;
        let mut text = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::error!(error = %e, "encoding metrics");
        }
        text
    }

    /// Refreshes the outbox gauges when their count is older than [`OUTBOX_COUNT_TTL`]; a failed
    /// or slow count keeps the previous values (and says so in the log).
    async fn count_outbox(&self) {
        let mut counted = self.outbox_counted.lock().await;
        if counted.is_some_and(|at| at.elapsed() < OUTBOX_COUNT_TTL) {
            return;
        }
        match tokio::time::timeout(OUTBOX_COUNT_DEADLINE, (self.outbox)()).await {
            Ok(Ok(backlog)) => {
                self.outbox_pending.set(backlog.pending);
                self.outbox_failed.set(backlog.failed);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "counting the outbox for metrics"),
            Err(_) => tracing::warn!("counting the outbox for metrics took too long"),
        }
        *counted = Some(Instant::now());
    }
}

/// The metrics listener's routes: `GET /metrics`, and nothing else.
pub fn endpoint(metrics: Arc<Metrics>) -> poem::endpoint::BoxEndpoint<'static> {
    use poem::EndpointExt;
    let scrape = poem::endpoint::make(move |_| {
        let metrics = metrics.clone();
        async move {
            poem::Response::builder()
                .content_type(CONTENT_TYPE)
                .body(metrics.render().await)
        }
    });
    poem::Route::new().at("/metrics", poem::get(scrape)).boxed()
}

/// Values read from their owners on each scrape.
struct LiveGauges {
    db: Db,
    ingest: Box<dyn Fn() -> IngestCounts + Send + Sync>,
}

impl std::fmt::Debug for LiveGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveGauges").finish_non_exhaustive()
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

impl Collector for LiveGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let pool = self.db.pool_status();
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        gauge(
            &mut encoder,
            "db_pool_connections_in_use",
            "Pooled database connections lent to requests and tasks",
            count(pool.size.saturating_sub(pool.available)),
        )?;
        gauge(
            &mut encoder,
            "db_pool_connections_idle",
            "Pooled database connections open and free",
            count(pool.available),
        )?;
        gauge(
            &mut encoder,
            "db_pool_connections_max",
            "Most database connections the pool opens",
            count(pool.max_size),
        )?;
        gauge(
            &mut encoder,
            "db_pool_waiting_requests",
            "Requests and tasks waiting for a pooled database connection",
            count(pool.waiting),
        )?;
        let ingest = (self.ingest)();
        let handled = ingest.stored.saturating_add(ingest.failed);
        gauge(
            &mut encoder,
            "analytics_ingest_queue_events",
            "Analytics events queued or being written",
            i64::try_from(ingest.queued.saturating_sub(handled)).unwrap_or(i64::MAX),
        )?;
        let mut failures = encoder.encode_descriptor(
            "analytics_ingest_failures",
            "Analytics events not stored, by reason: the database refused or failed \
             (`database`), or the queue was full (`queue_full`)",
            None,
            MetricType::Counter,
        )?;
        for (reason, value) in [("database", ingest.failed), ("queue_full", ingest.dropped)] {
            let labels = [("reason", reason)];
            let metric = failures.encode_family(&labels)?;
            ConstCounter::new(value).encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_bounded_sets() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::SWITCHING_PROTOCOLS), "1xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }
}
