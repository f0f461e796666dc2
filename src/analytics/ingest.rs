//! Ingestion with group commit. Requests hand their events to one writer task; whatever arrived
//! while the previous batch was being written goes out as the next batch, one transaction (and
//! one WAL flush) per company in it, events and rollups in one statement. Under load a commit
//! carries many events; alone, an event waits for nobody.
//!
//! A tracking request is answered only after its batch committed. A graceful shutdown closes the
//! queue and lets the writer finish what it holds before the database goes away.
//!
//! One event must never fail another: when PostgreSQL refuses a company's statement for its data,
//! the writer halves the events and stores each half apart until only the refused events remain,
//! so every other event (page views nobody waits for included) is stored and acknowledged.

use std::{
    collections::BTreeMap,
    ops::Range,
    sync::{
        Arc, LazyLock,
        atomic::{AtomicU64, Ordering},
    },
};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use uuid::Uuid;

use super::{
    ACTION_COLUMNS, Action, COUNT_PER_ACTION, action_columns, add_per_action, count_per_action,
    running,
};
use crate::db::{Db, DbError, Tenant};

/// Events that may wait for the writer; past this, page views are dropped (and counted) and
/// tracking requests wait for room.
const QUEUE: usize = 100_000;
/// The most events one batch carries.
const MAX_BATCH: usize = 2_000;

/// One thing a visitor did on a card, or one fetch by a bot (`Action::Preview`), which only
/// counts in the rollups.
#[derive(Clone, Debug)]
pub struct CardEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub company_id: Uuid,
    pub employee_id: Uuid,
    pub action: Action,
    pub link: Option<String>,
    pub device: Option<&'static str>,
    pub region: Option<String>,
    pub visitor: Option<String>,
}

struct Pending {
    event: CardEvent,
    done: Option<oneshot::Sender<Result<(), IngestError>>>,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the event store is shutting down")]
    Closed,
    /// PostgreSQL refused this event itself (a value it cannot store, a constraint); the other
    /// events of its batch were stored without it.
    #[error("the event was refused: {0}")]
    Refused(Arc<DbError>),
    /// Storing failed for every event of the company in the batch (an outage, a bug).
    #[error(transparent)]
    Database(Arc<DbError>),
}

/// Counters for logs and benchmarks.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Events handed to the queue (stored or not yet): tests wait on it rather than sleeping.
    pub queued: AtomicU64,
    pub events: AtomicU64,
    pub batches: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

/// The queue in front of the writer task.
pub struct EventSink {
    queue: mpsc::Sender<Pending>,
    pub stats: Arc<IngestStats>,
}

impl EventSink {
    /// Starts the writer; it runs until every `EventSink` clone is dropped and the queue is empty.
    pub fn start(db: Db) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let stats = Arc::new(IngestStats::default());
        let writer = tokio::spawn(write_batches(db, receiver, stats.clone()));
        (Self { queue, stats }, writer)
    }

    /// Stores `event` and returns once it is committed.
    pub async fn record(&self, event: CardEvent) -> Result<(), IngestError> {
        let (done, committed) = oneshot::channel();
        self.queue
            .send(Pending {
                event,
                done: Some(done),
            })
            .await
            .map_err(|_| IngestError::Closed)?;
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        committed.await.unwrap_or(Err(IngestError::Closed))
    }

    /// Stores `event` without waiting (a page view must not wait for analytics). Returns false
    /// when the queue is full and the event was dropped.
    pub fn record_later(&self, event: CardEvent) -> bool {
        let queued = self.queue.try_send(Pending { event, done: None }).is_ok();
        let counter = if queued {
            &self.stats.queued
        } else {
            &self.stats.dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
        queued
    }
}

async fn write_batches(db: Db, mut receiver: mpsc::Receiver<Pending>, stats: Arc<IngestStats>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        crate::telemetry::metrics::ANALYTICS_BATCH_SIZES.observe(batch.len() as f64);
        let results = write_batch(&db, &batch).await;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        for (pending, result) in batch.drain(..).zip(results) {
            let counter = if result.is_ok() {
                &stats.events
            } else {
                &stats.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Some(done) = pending.done {
                let _ = done.send(result);
            }
        }
    }
}

/// The outcome of each event of the batch, in its order: each company on a connection of its
/// own, all at once.
async fn write_batch(db: &Db, batch: &[Pending]) -> Vec<Result<(), IngestError>> {
    let mut by_company: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for (i, pending) in batch.iter().enumerate() {
        by_company
            .entry(pending.event.company_id)
            .or_default()
            .push(i);
    }
    let writes = by_company.into_iter().map(async |(company_id, indexes)| {
        let events: Vec<&CardEvent> = indexes.iter().map(|&i| &batch[i].event).collect();
        let results = write_isolating(db, company_id, &events).await;
        indexes.into_iter().zip(results)
    });
    let mut results = vec![Ok(()); batch.len()];
    for (i, result) in join_all(writes).await.into_iter().flatten() {
        results[i] = result;
    }
    results
}

/// Stores one company's events; when PostgreSQL refuses them for their data, stores each half
/// apart, down to single events, so only an event at fault fails. With k refused events among
/// n that costs about 2·k·log2(n/k) more transactions (2·n − 1 at worst, when every event is
/// refused, as when the company was just deleted), and nothing more when all goes well.
async fn write_isolating(
    db: &Db,
    company_id: Uuid,
    events: &[&CardEvent],
) -> Vec<Result<(), IngestError>> {
    let mut results = vec![Ok(()); events.len()];
    // Parts still to store, as ranges of `events`; the whole first.
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..events.len());
    while let Some(part) = pending.pop() {
        let error = match write_company(db, company_id, &events[part.clone()]).await {
            Ok(()) => continue,
            Err(e) if part.len() > 1 && refused_for_data(&e) => {
                tracing::debug!(error = %e, %company_id, events = part.len(),
                                "analytics events refused; storing them apart");
                let middle = part.start + part.len() / 2;
                pending.push(middle..part.end);
                pending.push(part.start..middle);
                continue;
            }
            Err(e) if refused_for_data(&e) => {
                let event = events[part.start];
                tracing::warn!(error = %e, %company_id, event_id = %event.id,
                               action = event.action.as_str(), "analytics event refused");
                IngestError::Refused(Arc::new(e))
            }
            Err(e) => {
                tracing::error!(error = %e, %company_id, events = part.len(),
                                "storing analytics events failed");
                IngestError::Database(Arc::new(e))
            }
        };
        results[part].fill(Err(error));
    }
    results
}

/// Whether PostgreSQL refused the statement for what it was given (a data exception, a
/// constraint, a value past a limit): something one event may carry. Anything else (an outage,
/// a bug in the statement) would fail each event alike, so it is not worth isolating.
fn refused_for_data(e: &DbError) -> bool {
    e.as_db_error()
        .is_some_and(|db| matches!(&db.code().code()[..2], "22" | "23" | "54"))
}

/// Whether storing failed because the database is out of reach or going away (not our bug, not
/// the event's fault): the client should retry later.
pub fn is_outage(e: &DbError) -> bool {
    // Beyond a lost connection or a deadline: insufficient resources, system errors, and
    // conflicts that outlived their retries.
    e.is_outage()
        || e.as_db_error()
            .is_some_and(|db| matches!(&db.code().code()[..2], "40" | "53" | "58"))
}

async fn write_company(db: &Db, company_id: Uuid, events: &[&CardEvent]) -> Result<(), DbError> {
    let columns = Columns::of(events);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = db
            .write(&Tenant::collector(company_id), async |tx| {
                // Pipelined: the lock and the statement go out together.
                let (locked, stored) = tokio::join!(
                    tx.execute(running::LOCK_COMPANY, [&company_id]),
                    tx.execute(
                        INGEST.as_str(),
                        [
                            &company_id,
                            &columns.ids,
                            &columns.times,
                            &columns.employees,
                            &columns.actions,
                            &columns.links,
                            &columns.devices,
                            &columns.regions,
                            &columns.visitors,
                        ],
                    ),
                );
                locked?;
                stored
            })
            .await;
        match result {
            // Two instances adding to the same rollup rows may deadlock; one of them retries.
            Err(e) if attempt < 3 && is_retryable(&e) => continue,
            result => return result.map(drop),
        }
    }
}

fn is_retryable(e: &DbError) -> bool {
    use tokio_postgres::error::SqlState;
    e.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::T_R_DEADLOCK_DETECTED
            || *db.code() == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// The batch as column arrays, for `unnest`.
struct Columns {
    ids: Vec<Uuid>,
    times: Vec<DateTime<Utc>>,
    employees: Vec<Uuid>,
    actions: Vec<&'static str>,
    links: Vec<Option<String>>,
    devices: Vec<Option<&'static str>>,
    regions: Vec<Option<String>>,
    visitors: Vec<Option<String>>,
}

impl Columns {
    fn of(events: &[&CardEvent]) -> Self {
        Self {
            ids: events.iter().map(|e| e.id).collect(),
            times: events.iter().map(|e| e.occurred_at).collect(),
            employees: events.iter().map(|e| e.employee_id).collect(),
            actions: events.iter().map(|e| e.action.as_str()).collect(),
            links: events.iter().map(|e| e.link.clone()).collect(),
            devices: events.iter().map(|e| e.device).collect(),
            regions: events.iter().map(|e| e.region.clone()).collect(),
            visitors: events.iter().map(|e| e.visitor.clone()).collect(),
        }
    }
}

/// The channel on which each committed batch of a company's events is announced (see
/// [`crate::analytics::live`]), as `{company_id} {"events":[...],"omitted":n}`.
macro_rules! live_channel {
    () => {
        "card_activity"
    };
}
pub const LIVE_CHANNEL: &str = live_channel!();

// A notification's payload is limited to 8000 bytes: a batch announces its newest events, at
// most this many and this many bytes of them, and counts the rest. A human watching a feed
// cannot read more than that per batch anyway.
macro_rules! live_max_events {
    () => {
        "20"
    };
}
macro_rules! live_max_event_bytes {
    () => {
        "7000"
    };
}

/// The events, the hourly and daily rollups, the running totals (see [`super::running`]) and the
/// visitors of one company, in one statement (sent after [`running::LOCK_COMPANY`]).
pub static INGEST: LazyLock<String> = LazyLock::new(|| {
    let nil = "'00000000-0000-0000-0000-000000000000'::uuid";
    let zeros = vec!["0"; ACTION_COLUMNS.split(", ").count()].join(", ");
    format!(
        "{INGEST_EVENTS}
     ), running_employee_g (employee_id, day, {columns}, visitors) AS (
         SELECT employee_id, day, {sums}, sum(visitors)::bigint
         FROM (SELECT employee_id, (occurred_at AT TIME ZONE 'UTC')::date, {count}, 0::bigint
               FROM input GROUP BY 1, 2
               UNION ALL
               SELECT card, (first_hour AT TIME ZONE 'UTC')::date, {zeros}, count(*)
               FROM first_seen WHERE card <> {nil} GROUP BY 1, 2)
             AS d (employee_id, day, {columns}, visitors)
         GROUP BY 1, 2{employees}
     ), running_company_g (device, region, day, {columns}) AS (
         SELECT coalesce(device, ''), coalesce(region, ''), (occurred_at AT TIME ZONE 'UTC')::date,
                {count}
         FROM input GROUP BY 1, 2, 3{regions}
     ), running_hourly_g (hour, {columns}, visitors) AS (
         SELECT hour, {sums}, sum(visitors)::bigint
         FROM (SELECT date_trunc('hour', occurred_at, 'UTC'), {count}, 0::bigint
               FROM input GROUP BY 1
               UNION ALL
               SELECT first_hour, {zeros}, count(*) FROM first_seen WHERE card = {nil} GROUP BY 1)
             AS h (hour, {columns}, visitors)
         GROUP BY 1{hours}{INGEST_LIVE}",
        columns = ACTION_COLUMNS,
        count = COUNT_PER_ACTION,
        sums = ACTION_COLUMNS
            .split(", ")
            .map(|c| format!("sum({c})::bigint"))
            .collect::<Vec<_>>()
            .join(", "),
        employees = running::EMPLOYEES.ctes(),
        regions = running::DEVICES_AND_REGIONS.ctes(),
        hours = running::HOURS.ctes(),
    )
});

/// The events, the hourly and daily rollups and the visitors of one company.
/// Rows are locked in a fixed order (ORDER BY) so concurrent batches rarely deadlock; retention
/// comes from the company's current plan. A visitor id is counted in the hour it is first seen
/// in its UTC day, for its card and for the company (card = the nil uuid); `ON CONFLICT DO
/// NOTHING` makes sure a concurrent batch cannot count it twice. The same statement announces
/// the batch's events (previews aside, as the dashboards leave them out) to the live feeds: a
/// notification is delivered on commit only, so a rolled-back batch announces nothing.
const INGEST_EVENTS: &str = concat!(
    "WITH input AS (
         SELECT * FROM unnest($2::uuid[], $3::timestamptz[], $4::uuid[], $5::text[], $6::text[],
                              $7::text[], $8::text[], $9::text[])
             AS t (id, occurred_at, employee_id, action, link, device, region, visitor)
     ), events AS (
         INSERT INTO card_events (company_id, retention, occurred_at, id, employee_id, action, link,
                                  device, region, visitor)
         SELECT $1,
                coalesce((SELECT p.retention FROM subscriptions s JOIN plans p ON p.plan = s.plan
                          WHERE s.company_id = $1 AND s.active), 'd30'),
                occurred_at, id, employee_id, action, link, device, region, visitor
         FROM input WHERE action <> 'preview'
     ), by_employee AS (
         INSERT INTO card_rollup_employee_hourly AS r (company_id, hour, employee_id, action, events)
         SELECT $1, date_trunc('hour', occurred_at, 'UTC') AS hour, employee_id, action, count(*)
         FROM input GROUP BY 2, 3, 4 ORDER BY 2, 3, 4
         ON CONFLICT (company_id, hour, employee_id, action)
         DO UPDATE SET events = r.events + excluded.events
     ), by_company AS (
         INSERT INTO card_rollup_company_hourly AS r (company_id, hour, action, device, region, events)
         SELECT $1, date_trunc('hour', occurred_at, 'UTC') AS hour, action,
                coalesce(device, '') AS device, coalesce(region, '') AS region, count(*)
         FROM input GROUP BY 2, 3, 4, 5 ORDER BY 2, 3, 4, 5
         ON CONFLICT (company_id, hour, action, device, region)
         DO UPDATE SET events = r.events + excluded.events
     ), by_action AS (
         INSERT INTO card_rollup_action_hourly AS r (company_id, hour, action, events)
         SELECT $1, date_trunc('hour', occurred_at, 'UTC') AS hour, action, count(*)
         FROM input GROUP BY 2, 3 ORDER BY 2, 3
         ON CONFLICT (company_id, hour, action)
         DO UPDATE SET events = r.events + excluded.events
     ), by_employee_day AS (
         INSERT INTO card_rollup_employee_daily AS r (company_id, day, employee_id, ",
    action_columns!(),
    ")
         SELECT $1, (occurred_at AT TIME ZONE 'UTC')::date AS day, employee_id, ",
    count_per_action!(),
    "
         FROM input GROUP BY 2, 3 ORDER BY 2, 3
         ON CONFLICT (company_id, day, employee_id) DO UPDATE SET ",
    add_per_action!(),
    "
     ), by_company_day AS (
         INSERT INTO card_rollup_company_daily AS r (company_id, day, device, region, ",
    action_columns!(),
    ")
         SELECT $1, (occurred_at AT TIME ZONE 'UTC')::date AS day, coalesce(device, '') AS device,
                coalesce(region, '') AS region, ",
    count_per_action!(),
    "
         FROM input GROUP BY 2, 3, 4 ORDER BY 2, 3, 4
         ON CONFLICT (company_id, day, device, region) DO UPDATE SET ",
    add_per_action!(),
    "
     ), first_seen AS (
         INSERT INTO card_visitor_days (company_id, day, card, visitor, first_hour)
         SELECT $1, (occurred_at AT TIME ZONE 'UTC')::date AS day, card, visitor,
                min(date_trunc('hour', occurred_at, 'UTC'))
         FROM input
         CROSS JOIN LATERAL (VALUES (employee_id), ('00000000-0000-0000-0000-000000000000'::uuid)) AS c (card)
         WHERE visitor IS NOT NULL AND action <> 'preview'
         GROUP BY 2, 3, 4 ORDER BY 2, 3, 4
         ON CONFLICT DO NOTHING
         RETURNING card, first_hour
     ), by_visitors AS (
         INSERT INTO card_rollup_visitors_hourly AS r (company_id, card, hour, visitors)
         SELECT $1, card, first_hour, count(*) FROM first_seen GROUP BY 2, 3 ORDER BY 2, 3
         ON CONFLICT (company_id, card, hour)
         DO UPDATE SET visitors = r.visitors + excluded.visitors"
);

/// The live feed's announcement, the end of [`INGEST`].
const INGEST_LIVE: &str = concat!(
    "
     ), live AS (
         SELECT json_build_object('action', i.action, 'employee_id', i.employee_id,
                                  'employee_name', left(e.full_name, 60),
                                  'employee_slug', e.public_slug, 'occurred_at', i.occurred_at,
                                  'device', i.device, 'region', i.region)::text AS item,
                i.occurred_at, i.id
         FROM input i LEFT JOIN employees e ON e.company_id = $1 AND e.id = i.employee_id
         WHERE i.action <> 'preview'
     ), live_newest AS (
         SELECT item, occurred_at, id,
                row_number() OVER newest AS n, sum(octet_length(item) + 1) OVER newest AS bytes
         FROM live
         WINDOW newest AS (ORDER BY occurred_at DESC, id DESC ROWS UNBOUNDED PRECEDING)
     )
     SELECT (SELECT count(*) FROM input),
            (SELECT pg_notify('",
    live_channel!(),
    "', $1::uuid::text || ' {\"events\":[' ||
                 coalesce(string_agg(item, ',' ORDER BY occurred_at, id)
                          FILTER (WHERE n <= ",
    live_max_events!(),
    " AND bytes <= ",
    live_max_event_bytes!(),
    "), '') || '],\"omitted\":' ||
                 count(*) FILTER (WHERE n > ",
    live_max_events!(),
    " OR bytes > ",
    live_max_event_bytes!(),
    ") || '}')
             FROM live_newest HAVING count(*) > 0)"
);
