//! Dashboards over what visitors do on a company's cards: the latest events with a summary, time
//! series in the caller's time zone, breakdowns by device and region, the employee leaderboard,
//! and the CSV export of the raw events.
//!
//! Counts come from the rollups, so a dashboard costs what its range costs, not its events: time
//! series and summaries from hourly ones (local days are unions of UTC hours), the leaderboard and
//! the breakdowns from daily ones with hourly rows only at a range's edges.
//! Event lists and the export read `card_events`, clamped in SQL to the retention of the
//! company's plan: partitions may still hold events that maintenance has not dropped yet.

use std::io;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use futures::{Stream, StreamExt, stream};
use poem::{Body, web::Data};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Path, Query},
    payload::{Binary, Json},
};
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;

use super::{
    ApiTags, AppState,
    employees::employee_tenant,
    page,
    time_bound::{self, TimeBound, day_start},
    tracking::{DeviceKind, TrackAction},
};
use crate::{
    analytics::Action,
    auth::{BearerAuth, Caller},
    db::{Db, Tenant},
    error::ApiError,
};

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// One thing a person did on a card.
#[derive(Debug, Object)]
pub struct AnalyticsEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// The card's employee; may no longer exist (history outlives employees).
    pub employee_id: Uuid,
    pub action: TrackAction,
    /// The link's name, for `link_click`.
    #[oai(nullable)]
    pub link: Option<String>,
    #[oai(nullable)]
    pub device: Option<DeviceKind>,
    #[oai(nullable)]
    pub region: Option<String>,
}

/// Counts per action, bots and link previews (`preview`) included.
#[derive(Debug, Object, Default, PartialEq, Eq)]
pub struct ActionCounts {
    pub view: i64,
    pub scan_qr: i64,
    pub call: i64,
    pub email: i64,
    pub whatsapp: i64,
    pub download_vcard: i64,
    pub link_click: i64,
    pub share: i64,
    /// Fetches by bots and link-preview services (never part of the other counts).
    pub preview: i64,
}

/// Counts per action of people.
#[derive(Debug, Object, Default, PartialEq, Eq)]
pub struct PeopleCounts {
    pub view: i64,
    pub scan_qr: i64,
    pub call: i64,
    pub email: i64,
    pub whatsapp: i64,
    pub download_vcard: i64,
    pub link_click: i64,
    pub share: i64,
}

#[derive(Debug, Object)]
pub struct EventPage {
    /// Newest first.
    pub events: Vec<AnalyticsEvent>,
    /// Counts over `[from, to)`, whole hours (from the hourly rollups).
    pub summary: ActionCounts,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "TimeseriesInterval", rename_all = "lowercase")]
pub enum Interval {
    /// Local calendar days of the time zone (23 or 25 hours on DST changes).
    Day,
    /// Hours.
    Hour,
}

#[derive(Debug, Object)]
pub struct TimeseriesBucket {
    /// The local date (`2026-03-08`) for days, the local start with its offset
    /// (`2026-03-08T03:00:00-04:00`) for hours.
    pub start: String,
    pub counts: PeopleCounts,
    /// Visitors first seen in the bucket's hours. A visitor id lives one UTC day, so for a day
    /// bucket this is the day's distinct visitors (exact for UTC days; in other zones a visitor
    /// counts in the local day of their first visit of the UTC day), and for an hour bucket the
    /// visitors new that hour.
    pub unique_visitors: i64,
}

#[derive(Debug, Object)]
pub struct Conversion {
    /// `view` + `scan_qr`.
    pub views: i64,
    /// `download_vcard`.
    pub saved_contacts: i64,
    /// `saved_contacts / views`; 0 without views.
    pub rate: f64,
}

#[derive(Debug, Object)]
pub struct Timeseries {
    /// The IANA time zone of the buckets.
    pub tz: String,
    pub interval: Interval,
    /// Every bucket of the range, oldest first, empty ones included.
    pub buckets: Vec<TimeseriesBucket>,
    /// Sums over all buckets, `preview` included.
    pub totals: ActionCounts,
    /// Visitors over the whole range: each daily visitor id once.
    pub unique_visitors: i64,
    pub conversion: Conversion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "BreakdownDimension", rename_all = "lowercase")]
pub enum BreakdownBy {
    Device,
    Region,
}

#[derive(Debug, Object)]
pub struct BreakdownRow {
    /// The device or region; `unknown` when not known.
    pub value: String,
    /// Everything people did (previews excluded).
    pub events: i64,
    /// `view` + `scan_qr`.
    pub views: i64,
}

#[derive(Debug, Object)]
pub struct Breakdown {
    pub by: BreakdownBy,
    /// Most events first.
    pub rows: Vec<BreakdownRow>,
}

#[derive(Debug, Object)]
pub struct LeaderboardEntry {
    pub employee_id: Uuid,
    /// `null` when the employee has been deleted since.
    #[oai(nullable)]
    pub full_name: Option<String>,
    /// `view` + `scan_qr`.
    pub views: i64,
    /// `call` + `email` + `whatsapp` + `download_vcard` + `link_click` + `share`.
    pub engagements: i64,
    /// `download_vcard`.
    pub saved_contacts: i64,
}

#[derive(Debug, Object)]
pub struct Leaderboard {
    /// Most engagements first, then most views, then by id.
    pub employees: Vec<LeaderboardEntry>,
}

#[derive(ApiResponse)]
pub enum CsvExport {
    /// The events as CSV, oldest first, streamed. A failure after the first byte cuts the
    /// response short (the transfer ends without its final chunk), so a truncated file never
    /// looks complete.
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Ok(Binary<Body>, #[oai(header = "Content-Disposition")] String),
}

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

/// Where the company's event detail starts: `now()` minus the retention of its current plan
/// (`d30` without an active subscription, as ingestion assumes). A scalar sub-select on `$1`,
/// evaluated once per statement.
macro_rules! retention_start {
    () => {
        "(SELECT CASE coalesce(max(p.retention), 'd30')
                     WHEN 'd30' THEN now() - interval '30 days'
                     WHEN 'd365' THEN now() - interval '365 days'
                     ELSE '-infinity'::timestamptz
                 END
          FROM subscriptions s JOIN plans p ON p.plan = s.plan
          WHERE s.company_id = $1 AND s.active)"
    };
}

const COMPANY_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1)";

/// Whether the employee exists, and whether the caller's login is linked to it.
const EMPLOYEE_ACCESS: &str = "SELECT
         EXISTS (SELECT 1 FROM employees WHERE company_id = $1 AND id = $2) AS found,
         EXISTS (SELECT 1 FROM users
                 WHERE company_id = $1 AND id = $3 AND employee_id = $2 AND is_active) AS linked";

/// One page, newest first, below the keyset `($3, $4)`; served by
/// `card_events_company_time_idx (company_id, occurred_at DESC, id DESC)`.
const COMPANY_EVENTS: &str = concat!(
    "SELECT id, occurred_at, employee_id, action, link, device, region
     FROM card_events
     WHERE company_id = $1
       AND occurred_at > ",
    retention_start!(),
    "
       AND occurred_at >= coalesce($2::timestamptz, '-infinity')
       AND (occurred_at, id) < ($3::timestamptz, $4::uuid)
     ORDER BY occurred_at DESC, id DESC
     LIMIT $5"
);

/// As [`COMPANY_EVENTS`], for one employee (`card_events_employee_time_idx`).
const EMPLOYEE_EVENTS: &str = concat!(
    "SELECT id, occurred_at, employee_id, action, link, device, region
     FROM card_events
     WHERE company_id = $1 AND employee_id = $6
       AND occurred_at > ",
    retention_start!(),
    "
       AND occurred_at >= coalesce($2::timestamptz, '-infinity')
       AND (occurred_at, id) < ($3::timestamptz, $4::uuid)
     ORDER BY occurred_at DESC, id DESC
     LIMIT $5"
);

/// Counts per action over whole hours: `from` (default: the start of retention) rounded down,
/// `to` rounded up (an hour starting before `to` counts).
const COMPANY_SUMMARY: &str = concat!(
    "SELECT action, sum(events)::bigint
     FROM card_rollup_action_hourly
     WHERE company_id = $1
       AND hour >= date_trunc('hour', coalesce($2::timestamptz, ",
    retention_start!(),
    "), 'UTC')
       AND hour < $3
     GROUP BY action"
);

const EMPLOYEE_SUMMARY: &str = concat!(
    "SELECT action, sum(events)::bigint
     FROM card_rollup_employee_hourly
     WHERE company_id = $1 AND employee_id = $4
       AND hour >= date_trunc('hour', coalesce($2::timestamptz, ",
    retention_start!(),
    "), 'UTC')
       AND hour < $3
     GROUP BY action"
);

// The time series: the buckets' bounds are computed in Rust (chrono-tz, DST-correct) and sent as
// a sorted array; `width_bucket` files each UTC hour under the bucket its start falls in. One
// time-zone database (the service's) decides both the labels and the grouping, so a zone the
// server's tzdata spells differently cannot disagree with the labels.

/// `(bucket, action, events)`; bucket `i` (1-based) is `[$2[i], $2[i+1])`.
const COMPANY_COUNTS_BY_BUCKET: &str =
    "SELECT width_bucket(hour, $2::timestamptz[]) AS bucket, action, sum(events)::bigint
     FROM card_rollup_action_hourly
     WHERE company_id = $1 AND hour >= $3 AND hour < $4
     GROUP BY 1, 2";

const EMPLOYEE_COUNTS_BY_BUCKET: &str =
    "SELECT width_bucket(hour, $2::timestamptz[]) AS bucket, action, sum(events)::bigint
     FROM card_rollup_employee_hourly
     WHERE company_id = $1 AND employee_id = $5 AND hour >= $3 AND hour < $4
     GROUP BY 1, 2";

/// `(bucket, unique visitors)` per bucket, and a row with a null bucket for the whole range:
/// visitors counted in the hour they were first seen in their (UTC) day, so sums are exact for
/// whole UTC days and a year reads one row per hour.
const COMPANY_VISITORS_BY_BUCKET: &str =
    "SELECT width_bucket(hour, $2::timestamptz[]) AS bucket, coalesce(sum(visitors), 0)::bigint
     FROM card_rollup_visitors_hourly
     WHERE company_id = $1 AND card = '00000000-0000-0000-0000-000000000000'
       AND hour >= $3 AND hour < $4
     GROUP BY GROUPING SETS ((width_bucket(hour, $2::timestamptz[])), ())";

const EMPLOYEE_VISITORS_BY_BUCKET: &str =
    "SELECT width_bucket(hour, $2::timestamptz[]) AS bucket, coalesce(sum(visitors), 0)::bigint
     FROM card_rollup_visitors_hourly
     WHERE company_id = $1 AND card = $5 AND hour >= $3 AND hour < $4
     GROUP BY GROUPING SETS ((width_bucket(hour, $2::timestamptz[])), ())";

// Breakdowns and the leaderboard need no time zone: a range is whole UTC hours, read as whole UTC
// days from the daily rollups and the hours before the first and after the last whole day from
// the hourly ones (see [`Tiers`]): `$2..$3` the head hours, `$4..$5` the days, `$6..$7` the tail
// hours. A year reads 365 rows per employee (or device and region) and at most 46 hours.

/// People's events and views per device or region (`''`, unknown, reads `unknown`).
macro_rules! breakdown {
    ($column:literal) => {
        concat!(
            "WITH counts (value, events, views) AS (
                 SELECT ", $column, ", view + scan_qr + call + email + whatsapp + download_vcard
                                       + link_click + share, view + scan_qr
                 FROM card_rollup_company_daily
                 WHERE company_id = $1 AND day >= $4 AND day < $5
                 UNION ALL
                 SELECT ", $column, ", events,
                        CASE WHEN action IN ('view', 'scan_qr') THEN events ELSE 0 END
                 FROM card_rollup_company_hourly
                 WHERE company_id = $1 AND ((hour >= $2 AND hour < $3) OR (hour >= $6 AND hour < $7))
                   AND action <> 'preview'
             )
             SELECT coalesce(nullif(value, ''), 'unknown') AS value, sum(events)::bigint,
                    sum(views)::bigint
             FROM counts
             GROUP BY 1
             HAVING sum(events) > 0
             ORDER BY 2 DESC, 1"
        )
    };
}

const BREAKDOWN_BY_DEVICE: &str = breakdown!("device");
const BREAKDOWN_BY_REGION: &str = breakdown!("region");

/// Ranked on the rollups first, joined to the (possibly deleted) employees after. Engagements are
/// the actions of [`Action::is_engagement`]; an employee with nothing but previews is not listed.
const LEADERBOARD: &str = "WITH counts (employee_id, views, engagements, saved_contacts) AS (
         SELECT employee_id, view + scan_qr,
                call + email + whatsapp + download_vcard + link_click + share, download_vcard
         FROM card_rollup_employee_daily
         WHERE company_id = $1 AND day >= $4 AND day < $5
         UNION ALL
         SELECT employee_id,
                CASE WHEN action IN ('view', 'scan_qr') THEN events ELSE 0 END,
                CASE WHEN action IN ('call', 'email', 'whatsapp', 'download_vcard', 'link_click',
                                     'share') THEN events ELSE 0 END,
                CASE WHEN action = 'download_vcard' THEN events ELSE 0 END
         FROM card_rollup_employee_hourly
         WHERE company_id = $1 AND ((hour >= $2 AND hour < $3) OR (hour >= $6 AND hour < $7))
     ), ranked AS (
         SELECT employee_id, sum(views)::bigint AS views, sum(engagements)::bigint AS engagements,
                sum(saved_contacts)::bigint AS saved_contacts
         FROM counts
         GROUP BY employee_id
         HAVING sum(views) + sum(engagements) > 0
         ORDER BY engagements DESC, views DESC, employee_id
         LIMIT $8
     )
     SELECT r.employee_id, e.full_name, r.views, r.engagements, r.saved_contacts
     FROM ranked r LEFT JOIN employees e ON e.company_id = $1 AND e.id = r.employee_id
     ORDER BY r.engagements DESC, r.views DESC, r.employee_id";

const COMPANY_SLUG: &str = "SELECT slug FROM companies WHERE id = $1";

/// One page of the export, oldest first, after the keyset `($4, $5)` (the backward scan of
/// `card_events_company_time_idx`).
const EXPORT_PAGE: &str = concat!(
    "SELECT id, occurred_at, employee_id, action, link, device, region
     FROM card_events
     WHERE company_id = $1
       AND occurred_at > ",
    retention_start!(),
    "
       AND occurred_at >= coalesce($2::timestamptz, '-infinity')
       AND occurred_at < $3
       AND (occurred_at, id) > (coalesce($4::timestamptz, '-infinity'), $5::uuid)
     ORDER BY occurred_at, id
     LIMIT $6"
);

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// Default range of the aggregates (time series, breakdowns, leaderboard).
const DEFAULT_DAYS: i64 = 30;
const MAX_DAY_SPAN_DAYS: i64 = 400;
const MAX_HOUR_SPAN_DAYS: i64 = 31;
const DEFAULT_LEADERBOARD_SIZE: u32 = 10;
/// Rows per page of the export: each page is one read transaction and one chunk of the body.
const EXPORT_PAGE_ROWS: i64 = 5000;
const CSV_HEADER: &str = "occurred_at,event_id,employee_id,action,link,device,region\n";

fn invalid_range(detail: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_range", detail)
}

/// Both bounds, when given, in order.
fn check_order(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<(), ApiError> {
    match (from, to) {
        (Some(from), Some(to)) if from >= to => Err(invalid_range("`from` must be before `to`")),
        _ => Ok(()),
    }
}

fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(3600) * 3600;
    DateTime::from_timestamp(secs, 0).expect("an hour within chrono's range")
}

fn parse_tz(raw: Option<&str>) -> Result<Tz, ApiError> {
    match raw {
        None => Ok(Tz::UTC),
        Some(name) => name.parse::<Tz>().map_err(|_| {
            ApiError::unprocessable(
                "invalid_time_zone",
                format!("Unknown time zone `{name}`: use an IANA name such as `Europe/Berlin`"),
            )
        }),
    }
}

/// The keyset position of an event, as handed out in `next_cursor`: base64url of the event's
/// time in microseconds (big-endian) and its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    occurred_at: DateTime<Utc>,
    id: Uuid,
}

impl Cursor {
    fn encode(self) -> String {
        let mut raw = [0u8; 24];
        raw[..8].copy_from_slice(&self.occurred_at.timestamp_micros().to_be_bytes());
        raw[8..].copy_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode(text: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::unprocessable(
                "invalid_cursor",
                "`cursor` is not a cursor this endpoint handed out",
            )
        };
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let raw: [u8; 24] = raw.try_into().map_err(|_| invalid())?;
        let micros = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        // Within what PostgreSQL stores, so a forged cursor is a 422, not a database error.
        let occurred_at = DateTime::from_timestamp_micros(micros)
            .filter(|t| (1..=9999).contains(&t.year()))
            .ok_or_else(invalid)?;
        let id = Uuid::from_bytes(raw[8..].try_into().expect("16 bytes"));
        Ok(Self { occurred_at, id })
    }
}

/// What an event list asks for.
#[derive(Debug)]
struct EventWindow {
    /// `None`: from the start of retention.
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    /// Events strictly below this keyset: the cursor, or `(to, nil)` (everything before `to`).
    below: Cursor,
    limit: i64,
    /// One row more than the page, to tell whether another page follows.
    fetch: i64,
}

impl EventWindow {
    fn parse(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        cursor: Option<&str>,
        limit: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        check_order(from, to)?;
        let (_, limit) = page(None, limit)?;
        let to = to.unwrap_or(now);
        let end = Cursor {
            occurred_at: to,
            id: Uuid::nil(),
        };
        let below = match cursor {
            Some(text) => Cursor::decode(text)?.min(end),
            None => end,
        };
        Ok(Self {
            from,
            to,
            below,
            limit,
            fetch: limit + 1,
        })
    }

    fn page(&self, rows: &[Row], summary: &[Row]) -> Result<EventPage, ApiError> {
        let mut events = rows
            .iter()
            .map(|row| EventRow::from_row(row)?.into_event())
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if events.len() as i64 > self.limit {
            events.truncate(self.limit as usize);
            events.last().map(|e| {
                Cursor {
                    occurred_at: e.occurred_at,
                    id: e.id,
                }
                .encode()
            })
        } else {
            None
        };
        Ok(EventPage {
            events,
            summary: Tally::of_rows(summary)?.into(),
            next_cursor,
        })
    }
}

/// `[from, to)` of an aggregate over whole hours (breakdowns, leaderboard).
#[derive(Debug, PartialEq, Eq)]
struct HourRange {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl HourRange {
    /// Default: the last 30 days. `from` is rounded down to its hour; an hour starting before
    /// `to` counts (`to` rounded up).
    fn parse(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        check_order(from, to)?;
        let end = to.unwrap_or(now);
        let from = from.unwrap_or(end - TimeDelta::days(DEFAULT_DAYS));
        Ok(Self {
            start: floor_hour(from),
            end,
        })
    }
}

/// How an [`HourRange`] reads the rollups: its whole UTC days from the daily tier, the hours
/// before the first whole day (`head`) and from the end of the last one (`tail`) from the hourly
/// tier. A range without a whole day is all head; `days` and `tail` are then empty.
#[derive(Debug, PartialEq, Eq)]
struct Tiers {
    head: (DateTime<Utc>, DateTime<Utc>),
    days: (NaiveDate, NaiveDate),
    tail: (DateTime<Utc>, DateTime<Utc>),
}

/// A parameter of a query.
type Param<'a> = &'a (dyn ToSql + Sync);

impl Tiers {
    /// The bounds as the tiered queries' `($2, $3)`, `($4, $5)` and `($6, $7)`.
    fn params(
        &self,
    ) -> (
        (Param<'_>, Param<'_>),
        (Param<'_>, Param<'_>),
        (Param<'_>, Param<'_>),
    ) {
        (
            (&self.head.0, &self.head.1),
            (&self.days.0, &self.days.1),
            (&self.tail.0, &self.tail.1),
        )
    }
}

impl HourRange {
    fn tiers(&self) -> Tiers {
        let midnight = |day: NaiveDate| day.and_time(NaiveTime::MIN).and_utc();
        let start_day = self.start.date_naive();
        let first_day = if midnight(start_day) == self.start {
            start_day
        } else {
            start_day.succ_opt().expect("a date within chrono's range")
        };
        let end_day = self.end.date_naive();
        if first_day < end_day {
            Tiers {
                head: (self.start, midnight(first_day)),
                days: (first_day, end_day),
                tail: (midnight(end_day), self.end),
            }
        } else {
            Tiers {
                head: (self.start, self.end),
                days: (end_day, end_day),
                tail: (self.end, self.end),
            }
        }
    }
}

/// The buckets of a time series: `bounds[i]..bounds[i + 1]` is bucket `i`, labelled `labels[i]`.
#[derive(Debug)]
struct BucketPlan {
    bounds: Vec<DateTime<Utc>>,
    labels: Vec<String>,
}

impl BucketPlan {
    /// Every bucket touching `[from, to)`: the range widens to whole buckets. Days are local
    /// calendar days of `tz`; hours are UTC hours (the rollups' grain) labelled in local time,
    /// which for the usual whole-hour offsets are exactly the local hours.
    fn new(tz: Tz, interval: Interval, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        debug_assert!(from < to);
        let last = to - TimeDelta::microseconds(1);
        let mut bounds = Vec::new();
        let mut labels = Vec::new();
        match interval {
            Interval::Day => {
                let mut day = from.with_timezone(&tz).date_naive();
                let last_day = last.with_timezone(&tz).date_naive();
                while day <= last_day {
                    bounds.push(day_start(tz, day));
                    labels.push(day.format("%Y-%m-%d").to_string());
                    day = day.succ_opt().expect("a date within chrono's range");
                }
                bounds.push(day_start(tz, day));
            }
            Interval::Hour => {
                let mut hour = floor_hour(from);
                let end = floor_hour(last) + TimeDelta::hours(1);
                while hour < end {
                    bounds.push(hour);
                    labels.push(
                        hour.with_timezone(&tz)
                            .to_rfc3339_opts(SecondsFormat::Secs, false),
                    );
                    hour += TimeDelta::hours(1);
                }
                bounds.push(end);
            }
        }
        Self { bounds, labels }
    }

    fn len(&self) -> usize {
        self.labels.len()
    }

    fn start(&self) -> DateTime<Utc> {
        self.bounds[0]
    }

    fn end(&self) -> DateTime<Utc> {
        self.bounds[self.len()]
    }

    /// The 0-based bucket of a `width_bucket` result (1-based, 0 and n + 1 outside).
    fn index(&self, bucket: i32) -> Option<usize> {
        usize::try_from(bucket)
            .ok()
            .and_then(|b| b.checked_sub(1))
            .filter(|&i| i < self.len())
    }
}

/// The range of a time series: defaults to the 30 local days (or 720 hours) ending with the one
/// containing `to` (default now); at most 400 days of days or 31 days of hours, plus the hour a
/// DST change may add.
fn series_range(
    tz: Tz,
    interval: Interval,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    check_order(from, to)?;
    let to = to.unwrap_or(now);
    let from = match from {
        Some(from) => from,
        None => {
            let last = to - TimeDelta::microseconds(1);
            match interval {
                Interval::Day => {
                    let last_day = last.with_timezone(&tz).date_naive();
                    day_start(tz, last_day - TimeDelta::days(DEFAULT_DAYS - 1))
                }
                Interval::Hour => floor_hour(last) - TimeDelta::hours(DEFAULT_DAYS * 24 - 1),
            }
        }
    };
    if from >= to {
        return Err(invalid_range("`from` must be before `to`"));
    }
    let (max_days, what) = match interval {
        Interval::Day => (MAX_DAY_SPAN_DAYS, "days"),
        Interval::Hour => (MAX_HOUR_SPAN_DAYS, "hours"),
    };
    if to - from > TimeDelta::days(max_days) + TimeDelta::hours(1) {
        return Err(invalid_range(format!(
            "A series of {what} covers at most {max_days} days"
        )));
    }
    Ok((from, to))
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// Counts indexed by [`Action`] (its declaration order: the people's actions, then preview).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally([i64; 9]);

impl Tally {
    fn add(&mut self, action: &str, events: i64) {
        match Action::parse(action) {
            Some(action) => self.0[action as usize] += events,
            None => tracing::warn!(action, "unknown action in the analytics rollups"),
        }
    }

    fn get(&self, action: Action) -> i64 {
        self.0[action as usize]
    }

    /// `(action, events)` rows.
    fn of_rows(rows: &[Row]) -> Result<Self, ApiError> {
        let mut tally = Tally::default();
        for row in rows {
            let action: String = row.try_get(0).map_err(ApiError::internal)?;
            let events: i64 = row.try_get(1).map_err(ApiError::internal)?;
            tally.add(&action, events);
        }
        Ok(tally)
    }

    fn merge(&mut self, other: &Tally) {
        for (sum, n) in self.0.iter_mut().zip(other.0) {
            *sum += n;
        }
    }

    fn conversion(&self) -> Conversion {
        let views = self.get(Action::View) + self.get(Action::ScanQr);
        let saved_contacts = self.get(Action::DownloadVcard);
        Conversion {
            views,
            saved_contacts,
            rate: if views == 0 {
                0.0
            } else {
                saved_contacts as f64 / views as f64
            },
        }
    }
}

impl From<Tally> for ActionCounts {
    fn from(t: Tally) -> Self {
        Self {
            view: t.get(Action::View),
            scan_qr: t.get(Action::ScanQr),
            call: t.get(Action::Call),
            email: t.get(Action::Email),
            whatsapp: t.get(Action::Whatsapp),
            download_vcard: t.get(Action::DownloadVcard),
            link_click: t.get(Action::LinkClick),
            share: t.get(Action::Share),
            preview: t.get(Action::Preview),
        }
    }
}

impl From<Tally> for PeopleCounts {
    fn from(t: Tally) -> Self {
        Self {
            view: t.get(Action::View),
            scan_qr: t.get(Action::ScanQr),
            call: t.get(Action::Call),
            email: t.get(Action::Email),
            whatsapp: t.get(Action::Whatsapp),
            download_vcard: t.get(Action::DownloadVcard),
            link_click: t.get(Action::LinkClick),
            share: t.get(Action::Share),
        }
    }
}

/// A row of `card_events` as the lists and the export select it.
struct EventRow {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    employee_id: Uuid,
    action: String,
    link: Option<String>,
    device: Option<String>,
    region: Option<String>,
}

impl EventRow {
    fn from_row(row: &Row) -> Result<Self, ApiError> {
        let get = |e| ApiError::internal(e);
        Ok(Self {
            id: row.try_get(0).map_err(get)?,
            occurred_at: row.try_get(1).map_err(get)?,
            employee_id: row.try_get(2).map_err(get)?,
            action: row.try_get(3).map_err(get)?,
            link: row.try_get(4).map_err(get)?,
            device: row.try_get(5).map_err(get)?,
            region: row.try_get(6).map_err(get)?,
        })
    }

    fn into_event(self) -> Result<AnalyticsEvent, ApiError> {
        let action = match Action::parse(&self.action) {
            Some(Action::View) => TrackAction::View,
            Some(Action::ScanQr) => TrackAction::ScanQr,
            Some(Action::Call) => TrackAction::Call,
            Some(Action::Email) => TrackAction::Email,
            Some(Action::Whatsapp) => TrackAction::Whatsapp,
            Some(Action::DownloadVcard) => TrackAction::DownloadVcard,
            Some(Action::LinkClick) => TrackAction::LinkClick,
            Some(Action::Share) => TrackAction::Share,
            Some(Action::Preview) | None => {
                return Err(ApiError::internal(format!(
                    "unexpected stored action {:?}",
                    self.action
                )));
            }
        };
        let device = match self.device.as_deref() {
            None => None,
            Some("mobile") => Some(DeviceKind::Mobile),
            Some("tablet") => Some(DeviceKind::Tablet),
            Some("desktop") => Some(DeviceKind::Desktop),
            Some(other) => {
                return Err(ApiError::internal(format!(
                    "unexpected stored device {other:?}"
                )));
            }
        };
        Ok(AnalyticsEvent {
            id: self.id,
            occurred_at: self.occurred_at,
            employee_id: self.employee_id,
            action,
            link: self.link,
            device,
            region: self.region,
        })
    }

    fn cursor(&self) -> Cursor {
        Cursor {
            occurred_at: self.occurred_at,
            id: self.id,
        }
    }

    fn write_csv(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "{},{},{},",
            self.occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
            self.id,
            self.employee_id
        );
        csv_field(out, &self.action);
        out.push(',');
        csv_field(out, self.link.as_deref().unwrap_or_default());
        out.push(',');
        csv_field(out, self.device.as_deref().unwrap_or_default());
        out.push(',');
        csv_field(out, self.region.as_deref().unwrap_or_default());
        out.push('\n');
    }
}

/// Appends one CSV field (RFC 4180): quoted when it holds a comma, quote or line break, quotes
/// doubled. A value a spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`, and tab or
/// carriage return, per OWASP) gets a leading `'`: `link` and `region` come from visitors.
/// Control characters and bidirectional overrides, which tracking refuses but older rows may
/// hold, become U+FFFD: an export never carries a terminal escape or a reversed text.
fn csv_field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = value.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        let hidden = (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        out.push(if hidden {
            char::REPLACEMENT_CHARACTER
        } else {
            c
        });
    }
    if quoted {
        out.push('"');
    }
}

fn flag(row: &Row, column: usize) -> Result<bool, ApiError> {
    row.try_get(column).map_err(ApiError::internal)
}

fn company_not_found() -> ApiError {
    ApiError::not_found("Company not found")
}

/// Admins and superadmins, or the employee login linked to the employee.
fn check_employee_access(caller: &Caller, access: &Row) -> Result<(), ApiError> {
    if !flag(access, 0)? {
        return Err(ApiError::not_found("Employee not found"));
    }
    if caller.require_admin().is_err() && !flag(access, 1)? {
        return Err(ApiError::forbidden(
            "You can only see the analytics of your own card",
        ));
    }
    Ok(())
}

/// Assembles a time series from `(bucket, action, events)` and `(bucket, visitors)` rows.
fn series(
    tz: Tz,
    interval: Interval,
    plan: &BucketPlan,
    counts: &[Row],
    visitors: &[Row],
) -> Result<Timeseries, ApiError> {
    let get = |e| ApiError::internal(e);
    let mut tallies = vec![Tally::default(); plan.len()];
    for row in counts {
        let bucket: i32 = row.try_get(0).map_err(get)?;
        let action: String = row.try_get(1).map_err(get)?;
        let events: i64 = row.try_get(2).map_err(get)?;
        if let Some(i) = plan.index(bucket) {
            tallies[i].add(&action, events);
        }
    }
    let mut unique = vec![0i64; plan.len()];
    let mut unique_total = 0;
    for row in visitors {
        let bucket: Option<i32> = row.try_get(0).map_err(get)?;
        let n: i64 = row.try_get(1).map_err(get)?;
        match bucket {
            None => unique_total = n,
            Some(bucket) => {
                if let Some(i) = plan.index(bucket) {
                    unique[i] = n;
                }
            }
        }
    }
    let mut totals = Tally::default();
    for tally in &tallies {
        totals.merge(tally);
    }
    let buckets = plan
        .labels
        .iter()
        .zip(tallies)
        .zip(unique)
        .map(|((label, tally), unique_visitors)| TimeseriesBucket {
            start: label.clone(),
            counts: tally.into(),
            unique_visitors,
        })
        .collect();
    Ok(Timeseries {
        tz: tz.name().to_owned(),
        interval,
        buckets,
        conversion: totals.conversion(),
        totals: totals.into(),
        unique_visitors: unique_total,
    })
}

// ---------------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------------

/// Where the export stands between two pages.
struct ExportPages {
    db: Db,
    tenant: Tenant,
    company_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    after: Cursor,
}

impl ExportPages {
    /// Reads the page after `after` in a read transaction of its own.
    async fn fetch(
        db: &Db,
        tenant: &Tenant,
        company_id: Uuid,
        (from, to): (Option<DateTime<Utc>>, DateTime<Utc>),
        after: Option<Cursor>,
    ) -> Result<Vec<Row>, ApiError> {
        let after_time = after.map(|c| c.occurred_at);
        let after_id = after.map_or(Uuid::nil(), |c| c.id);
        db.read(tenant, async |tx| {
            Ok::<_, ApiError>(
                tx.query(
                    EXPORT_PAGE,
                    [
                        &company_id,
                        &from,
                        &to,
                        &after_time,
                        &after_id,
                        &EXPORT_PAGE_ROWS,
                    ],
                )
                .await?,
            )
        })
        .await
    }

    /// The rows as CSV, and the keyset after them when a full page suggests more.
    fn chunk(rows: &[Row], mut out: String) -> Result<(Bytes, Option<Cursor>), ApiError> {
        let mut last = None;
        for row in rows {
            let event = EventRow::from_row(row)?;
            event.write_csv(&mut out);
            last = Some(event.cursor());
        }
        let more = rows.len() as i64 >= EXPORT_PAGE_ROWS;
        Ok((Bytes::from(out), last.filter(|_| more)))
    }

    /// The pages after the first, fetched one at a time as the client reads (the body's
    /// backpressure): memory stays at one page whatever the export's size. An error cannot be a
    /// status anymore; it is logged and the body fails, which aborts the transfer.
    fn into_stream(self) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
        stream::unfold(Some(self), |state| async move {
            let mut pages = state?;
            let rows = Self::fetch(
                &pages.db,
                &pages.tenant,
                pages.company_id,
                (pages.from, pages.to),
                Some(pages.after),
            )
            .await;
            let chunk = rows.and_then(|rows| {
                if rows.is_empty() {
                    return Ok(None);
                }
                let capacity = rows.len() * 160;
                Self::chunk(&rows, String::with_capacity(capacity)).map(Some)
            });
            match chunk {
                Ok(None) => None,
                Ok(Some((bytes, next))) => {
                    let next = next.map(|after| {
                        pages.after = after;
                        pages
                    });
                    Some((Ok(bytes), next))
                }
                Err(e) => {
                    tracing::error!(
                        company_id = %pages.company_id,
                        error = %e,
                        "CSV export failed after its first byte; the response is cut short"
                    );
                    Some((Err(io::Error::other("the export failed")), None))
                }
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

pub struct AnalyticsApi;

#[OpenApi(tag = "ApiTags::Analytics")]
impl AnalyticsApi {
    /// A company's latest events and summary
    ///
    /// Admins of the company and superadmins. Events newest first, keyset-paginated, limited to
    /// the plan's retention (30 days, 365 days, or all); the summary counts every action over
    /// `[from, to)` in whole hours, from the hourly rollups, which outlive the events.
    #[oai(path = "/analytics/company/:company_id", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn company_events(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// RFC 3339, or a date (from its midnight, UTC); default: the start of retention.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC); default: now.
        to: Query<Option<TimeBound>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Events per page, 1 to 100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<EventPage>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), Tz::UTC)?;
        let window = EventWindow::parse(from, to, cursor.0.as_deref(), limit.0, Utc::now())?;
        let company_id = company_id.0;
        let (exists, rows, summary) = state
            .db
            .read(&tenant, async |tx| {
                let (exists, rows, summary) = tokio::join!(
                    tx.query_one(COMPANY_EXISTS, [&company_id]),
                    tx.query(
                        COMPANY_EVENTS,
                        [
                            &company_id,
                            &window.from,
                            &window.below.occurred_at,
                            &window.below.id,
                            &window.fetch,
                        ],
                    ),
                    tx.query(COMPANY_SUMMARY, [&company_id, &window.from, &window.to]),
                );
                Ok::<_, ApiError>((exists?, rows?, summary?))
            })
            .await?;
        if !flag(&exists, 0)? {
            return Err(company_not_found());
        }
        Ok(Json(window.page(&rows, &summary)?))
    }

    /// An employee's latest events and summary
    ///
    /// Admins of the company, superadmins, and the employee whose login is linked to this
    /// employee. As the company's, for one employee's card.
    #[oai(path = "/analytics/employee/:employee_id", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn employee_events(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
        /// RFC 3339, or a date (from its midnight, UTC); default: the start of retention.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC); default: now.
        to: Query<Option<TimeBound>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Events per page, 1 to 100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<EventPage>, ApiError> {
        let caller = auth.0;
        let tenant = employee_tenant(&state, &caller, employee_id.0).await?;
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), Tz::UTC)?;
        let window = EventWindow::parse(from, to, cursor.0.as_deref(), limit.0, Utc::now())?;
        let (company_id, employee_id, user_id) =
            (tenant.company_id(), employee_id.0, caller.user_id());
        let (access, rows, summary) = state
            .db
            .read(&tenant, async |tx| {
                let (access, rows, summary) = tokio::join!(
                    tx.query_one(EMPLOYEE_ACCESS, [&company_id, &employee_id, &user_id]),
                    tx.query(
                        EMPLOYEE_EVENTS,
                        [
                            &company_id,
                            &window.from,
                            &window.below.occurred_at,
                            &window.below.id,
                            &window.fetch,
                            &employee_id,
                        ],
                    ),
                    tx.query(
                        EMPLOYEE_SUMMARY,
                        [&company_id, &window.from, &window.to, &employee_id],
                    ),
                );
                Ok::<_, ApiError>((access?, rows?, summary?))
            })
            .await?;
        check_employee_access(&caller, &access)?;
        Ok(Json(window.page(&rows, &summary)?))
    }

    /// A company's activity over time
    ///
    /// Admins of the company and superadmins. Counts per local day (or hour) of `tz`, every
    /// bucket present; the range widens to whole buckets. Hours are the rollups' UTC hours: in a
    /// zone with a half-hour offset, an hour counts in the day its start falls in.
    #[oai(path = "/analytics/company/:company_id/timeseries", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn company_timeseries(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// RFC 3339, or a date (from its start in `tz`); default: 30 days (or 720 hours)
        /// before `to`.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, in `tz`); default: now.
        to: Query<Option<TimeBound>>,
        /// IANA time zone, e.g. `America/New_York` (default `UTC`).
        tz: Query<Option<String>>,
        /// `day` (default; at most 400 days) or `hour` (at most 31 days).
        interval: Query<Option<Interval>>,
    ) -> Result<Json<Timeseries>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let tz = parse_tz(tz.0.as_deref())?;
        let interval = interval.0.unwrap_or(Interval::Day);
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), tz)?;
        let (from, to) = series_range(tz, interval, from, to, Utc::now())?;
        let plan = BucketPlan::new(tz, interval, from, to);
        let company_id = company_id.0;
        let (start, end) = (plan.start(), plan.end());
        let (exists, counts, visitors) = state
            .db
            .read(&tenant, async |tx| {
                let (exists, counts, visitors) = tokio::join!(
                    tx.query_one(COMPANY_EXISTS, [&company_id]),
                    tx.query(
                        COMPANY_COUNTS_BY_BUCKET,
                        [&company_id, &plan.bounds, &start, &end]
                    ),
                    tx.query(
                        COMPANY_VISITORS_BY_BUCKET,
                        [&company_id, &plan.bounds, &start, &end]
                    ),
                );
                Ok::<_, ApiError>((exists?, counts?, visitors?))
            })
            .await?;
        if !flag(&exists, 0)? {
            return Err(company_not_found());
        }
        Ok(Json(series(tz, interval, &plan, &counts, &visitors)?))
    }

    /// An employee's activity over time
    ///
    /// Admins of the company, superadmins, and the employee whose login is linked to this
    /// employee. As the company's, for one employee's card.
    #[oai(path = "/analytics/employee/:employee_id/timeseries", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn employee_timeseries(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
        /// RFC 3339, or a date (from its start in `tz`); default: 30 days (or 720 hours)
        /// before `to`.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, in `tz`); default: now.
        to: Query<Option<TimeBound>>,
        /// IANA time zone, e.g. `America/New_York` (default `UTC`).
        tz: Query<Option<String>>,
        /// `day` (default; at most 400 days) or `hour` (at most 31 days).
        interval: Query<Option<Interval>>,
    ) -> Result<Json<Timeseries>, ApiError> {
        let caller = auth.0;
        let tenant = employee_tenant(&state, &caller, employee_id.0).await?;
        let tz = parse_tz(tz.0.as_deref())?;
        let interval = interval.0.unwrap_or(Interval::Day);
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), tz)?;
        let (from, to) = series_range(tz, interval, from, to, Utc::now())?;
        let plan = BucketPlan::new(tz, interval, from, to);
        let (company_id, employee_id, user_id) =
            (tenant.company_id(), employee_id.0, caller.user_id());
        let (start, end) = (plan.start(), plan.end());
        let (access, counts, visitors) = state
            .db
            .read(&tenant, async |tx| {
                let (access, counts, visitors) = tokio::join!(
                    tx.query_one(EMPLOYEE_ACCESS, [&company_id, &employee_id, &user_id]),
                    tx.query(
                        EMPLOYEE_COUNTS_BY_BUCKET,
                        [&company_id, &plan.bounds, &start, &end, &employee_id]
                    ),
                    tx.query(
                        EMPLOYEE_VISITORS_BY_BUCKET,
                        [&company_id, &plan.bounds, &start, &end, &employee_id]
                    ),
                );
                Ok::<_, ApiError>((access?, counts?, visitors?))
            })
            .await?;
        check_employee_access(&caller, &access)?;
        Ok(Json(series(tz, interval, &plan, &counts, &visitors)?))
    }

    /// A company's activity by device or region
    ///
    /// Admins of the company and superadmins. People's events only (previews excluded), over
    /// `[from, to)` in whole hours, most events first.
    #[oai(path = "/analytics/company/:company_id/breakdown", method = "get")]
    async fn company_breakdown(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// `device` or `region`.
        by: Query<BreakdownBy>,
        /// RFC 3339, or a date (from its midnight, UTC); default: 30 days before `to`.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC); default: now.
        to: Query<Option<TimeBound>>,
    ) -> Result<Json<Breakdown>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), Tz::UTC)?;
        let tiers = HourRange::parse(from, to, Utc::now())?.tiers();
        let (head, days, tail) = tiers.params();
        let sql = match by.0 {
            BreakdownBy::Device => BREAKDOWN_BY_DEVICE,
            BreakdownBy::Region => BREAKDOWN_BY_REGION,
        };
        let company_id = company_id.0;
        let (exists, rows) = state
            .db
            .read(&tenant, async |tx| {
                let (exists, rows) = tokio::join!(
                    tx.query_one(COMPANY_EXISTS, [&company_id]),
                    tx.query(
                        sql,
                        [&company_id, head.0, head.1, days.0, days.1, tail.0, tail.1]
                    ),
                );
                Ok::<_, ApiError>((exists?, rows?))
            })
            .await?;
        if !flag(&exists, 0)? {
            return Err(company_not_found());
        }
        let get = |e| ApiError::internal(e);
        let rows = rows
            .iter()
            .map(|row| {
                Ok(BreakdownRow {
                    value: row.try_get(0).map_err(get)?,
                    events: row.try_get(1).map_err(get)?,
                    views: row.try_get(2).map_err(get)?,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(Json(Breakdown { by: by.0, rows }))
    }

    /// A company's most engaging cards
    ///
    /// Admins of the company and superadmins. Employees with activity over `[from, to)` (whole
    /// hours), deleted ones included with `full_name: null`.
    #[oai(path = "/analytics/company/:company_id/leaderboard", method = "get")]
    async fn company_leaderboard(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// RFC 3339, or a date (from its midnight, UTC); default: 30 days before `to`.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC); default: now.
        to: Query<Option<TimeBound>>,
        /// How many employees, 1 to 100 (default 10).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<Leaderboard>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), Tz::UTC)?;
        let tiers = HourRange::parse(from, to, Utc::now())?.tiers();
        let (head, days, tail) = tiers.params();
        let (_, limit) = page(None, Some(limit.0.unwrap_or(DEFAULT_LEADERBOARD_SIZE)))?;
        let company_id = company_id.0;
        let (exists, rows) = state
            .db
            .read(&tenant, async |tx| {
                let (exists, rows) = tokio::join!(
                    tx.query_one(COMPANY_EXISTS, [&company_id]),
                    tx.query(
                        LEADERBOARD,
                        [
                            &company_id,
                            head.0,
                            head.1,
                            days.0,
                            days.1,
                            tail.0,
                            tail.1,
                            &limit
                        ],
                    ),
                );
                Ok::<_, ApiError>((exists?, rows?))
            })
            .await?;
        if !flag(&exists, 0)? {
            return Err(company_not_found());
        }
        let get = |e| ApiError::internal(e);
        let employees = rows
            .iter()
            .map(|row| {
                Ok(LeaderboardEntry {
                    employee_id: row.try_get(0).map_err(get)?,
                    full_name: row.try_get(1).map_err(get)?,
                    views: row.try_get(2).map_err(get)?,
                    engagements: row.try_get(3).map_err(get)?,
                    saved_contacts: row.try_get(4).map_err(get)?,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(Json(Leaderboard { employees }))
    }

    /// Export a company's events as CSV
    ///
    /// Admins of the company and superadmins. Oldest first, within the plan's retention;
    /// streamed in pages of 5000 events, each read in a transaction of its own (an event stored
    /// during the export with a time before the page being read is not included). Columns:
    /// `occurred_at,event_id,employee_id,action,link,device,region`. Values a spreadsheet
    /// would run as formulas start with `'`.
    #[oai(path = "/analytics/company/:company_id/export.csv", method = "get")]
    async fn company_export(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// RFC 3339, or a date (from its midnight, UTC); default: the start of retention.
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC); default: now (when the
        /// export starts).
        to: Query<Option<TimeBound>>,
    ) -> Result<CsvExport, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let (from, to) = time_bound::range(from.0.as_ref(), to.0.as_ref(), Tz::UTC)?;
        check_order(from, to)?;
        let (company_id, to) = (company_id.0, to.unwrap_or_else(Utc::now));
        let after: (Option<DateTime<Utc>>, Uuid) = (None, Uuid::nil());
        // Authorization, the company's slug and the first page in one read, before any byte.
        let (slug, rows) = state
            .db
            .read(&tenant, async |tx| {
                let (slug, rows) = tokio::join!(
                    tx.query_opt(COMPANY_SLUG, [&company_id]),
                    tx.query(
                        EXPORT_PAGE,
                        [
                            &company_id,
                            &from,
                            &to,
                            &after.0,
                            &after.1,
                            &EXPORT_PAGE_ROWS
                        ],
                    ),
                );
                Ok::<_, ApiError>((slug?, rows?))
            })
            .await?;
        let slug: String = slug
            .ok_or_else(company_not_found)?
            .try_get(0)
            .map_err(ApiError::internal)?;
        let (first, next) = ExportPages::chunk(&rows, String::from(CSV_HEADER))?;
        drop(rows);
        let first = stream::once(async move { Ok::<_, io::Error>(first) });
        let body = match next {
            None => Body::from_bytes_stream(first),
            Some(after) => Body::from_bytes_stream(
                first.chain(
                    ExportPages {
                        db: state.db.clone(),
                        tenant,
                        company_id,
                        from,
                        to,
                        after,
                    }
                    .into_stream(),
                ),
            ),
        };
        Ok(CsvExport::Ok(
            Binary(body),
            format!("attachment; filename=\"{slug}-events.csv\""),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn csv(value: &str) -> String {
        let mut out = String::new();
        csv_field(&mut out, value);
        out
    }

    fn new_york() -> Tz {
        "America/New_York".parse().unwrap()
    }

    #[test]
    fn tally_indexes_follow_the_action_order() {
        for (i, action) in Action::PEOPLE
            .into_iter()
            .chain([Action::Preview])
            .enumerate()
        {
            assert_eq!(action as usize, i);
        }
        let mut tally = Tally::default();
        tally.add("view", 3);
        tally.add("scan_qr", 1);
        tally.add("download_vcard", 2);
        tally.add("preview", 7);
        let counts = ActionCounts::from(tally);
        assert_eq!((counts.view, counts.scan_qr, counts.preview), (3, 1, 7));
        let conversion = tally.conversion();
        assert_eq!((conversion.views, conversion.saved_contacts), (4, 2));
        assert!((conversion.rate - 0.5).abs() < f64::EPSILON);
        assert_eq!(Tally::default().conversion().rate, 0.0);
    }

    #[test]
    fn csv_fields_are_escaped() {
        assert_eq!(csv("plain"), "plain");
        assert_eq!(csv(""), "");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv("cr\rhere"), "\"cr\rhere\"");
    }

    #[test]
    fn csv_fields_never_carry_escapes_or_reversed_text() {
        assert_eq!(csv("\u{1}\u{1b}[31mred"), "\u{FFFD}\u{FFFD}[31mred");
        assert_eq!(csv("x\u{0}\u{7f}\u{85}"), "x\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(csv("evil\u{202E}fdp.exe"), "evil\u{FFFD}fdp.exe");
        assert_eq!(csv("\u{2066}a\u{2069}"), "\u{FFFD}a\u{FFFD}");
        assert_eq!(csv("Île-de-France"), "Île-de-France");
    }

    #[test]
    fn csv_fields_that_look_like_formulas_are_defused() {
        assert_eq!(csv("=1+1"), "'=1+1");
        assert_eq!(csv("+49 30 1234"), "'+49 30 1234");
        assert_eq!(csv("-2"), "'-2");
        assert_eq!(csv("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv("\tx"), "'\tx");
        assert_eq!(
            csv("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        // Only a leading sign matters.
        assert_eq!(csv("a=b"), "a=b");
        assert_eq!(csv("linkedin"), "linkedin");
    }

    #[test]
    fn csv_rows_have_every_column() {
        let row = EventRow {
            id: Uuid::nil(),
            occurred_at: utc("2026-03-08T12:00:00.5Z"),
            employee_id: Uuid::max(),
            action: "link_click".into(),
            link: Some("=cmd,x".into()),
            device: None,
            region: Some("DE".into()),
        };
        let mut out = String::new();
        row.write_csv(&mut out);
        assert_eq!(
            out,
            "2026-03-08T12:00:00.500000Z,00000000-0000-0000-0000-000000000000,\
             ffffffff-ffff-ffff-ffff-ffffffffffff,link_click,\"'=cmd,x\",,DE\n"
        );
        assert_eq!(CSV_HEADER.trim_end().split(',').count(), 7);
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor {
            occurred_at: utc("2026-03-08T07:30:00.123456Z"),
            id: Uuid::new_v4(),
        };
        let text = cursor.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(Cursor::decode(&text).unwrap(), cursor);
        // Before 1970 too.
        let old = Cursor {
            occurred_at: utc("1969-07-20T20:17:40Z"),
            id: Uuid::nil(),
        };
        assert_eq!(Cursor::decode(&old.encode()).unwrap(), old);
    }

    #[test]
    fn garbage_cursors_are_rejected() {
        let valid = Cursor {
            occurred_at: utc("2026-01-01T00:00:00Z"),
            id: Uuid::new_v4(),
        }
        .encode();
        for garbage in [
            "",
            "not a cursor",
            "!!!!",
            &valid[..valid.len() - 2],
            &format!("{valid}AA"),
            &format!("{valid}="),
            &URL_SAFE_NO_PAD.encode([0u8; 23]),
            // Microseconds beyond what chrono represents, or PostgreSQL stores.
            &URL_SAFE_NO_PAD.encode([[0x7f; 8].as_slice(), &[0; 16]].concat()),
            &URL_SAFE_NO_PAD.encode([[0x80; 8].as_slice(), &[0; 16]].concat()),
            &Cursor {
                occurred_at: NaiveDate::from_ymd_opt(20000, 1, 1)
                    .unwrap()
                    .and_time(NaiveTime::MIN)
                    .and_utc(),
                id: Uuid::nil(),
            }
            .encode(),
        ] {
            let err = Cursor::decode(garbage).unwrap_err();
            assert_eq!(err.code(), "invalid_cursor", "{garbage:?}");
            assert_eq!(err.status().as_u16(), 422);
        }
    }

    #[test]
    fn a_cursor_never_reaches_past_to() {
        let now = utc("2026-03-10T00:00:00Z");
        let to = utc("2026-03-05T00:00:00Z");
        let later = Cursor {
            occurred_at: utc("2026-03-09T00:00:00Z"),
            id: Uuid::max(),
        }
        .encode();
        let window = EventWindow::parse(None, Some(to), Some(&later), None, now).unwrap();
        assert_eq!(window.below.occurred_at, to);
        assert_eq!(window.below.id, Uuid::nil());
        assert_eq!((window.limit, window.fetch), (50, 51));
        let window = EventWindow::parse(None, None, None, Some(100), now).unwrap();
        assert_eq!(window.to, now);
        for limit in [0, 101] {
            let err = EventWindow::parse(None, None, None, Some(limit), now).unwrap_err();
            assert_eq!(err.status().as_u16(), 422);
        }
    }

    #[test]
    fn days_follow_local_midnights_across_dst() {
        let tz = new_york();
        let plan = BucketPlan::new(
            tz,
            Interval::Day,
            utc("2026-03-07T05:00:00Z"),
            utc("2026-03-10T04:00:00Z"),
        );
        assert_eq!(plan.labels, ["2026-03-07", "2026-03-08", "2026-03-09"]);
        let lengths: Vec<i64> = plan
            .bounds
            .windows(2)
            .map(|w| (w[1] - w[0]).num_hours())
            .collect();
        assert_eq!(lengths, [24, 23, 24]);
        assert_eq!(plan.bounds[1], utc("2026-03-08T05:00:00Z"));
        assert_eq!(plan.bounds[2], utc("2026-03-09T04:00:00Z"));

        let plan = BucketPlan::new(
            tz,
            Interval::Day,
            utc("2026-11-01T04:00:00Z"),
            utc("2026-11-02T05:00:00Z"),
        );
        assert_eq!(plan.labels, ["2026-11-01"]);
        assert_eq!((plan.end() - plan.start()).num_hours(), 25);
    }

    #[test]
    fn hours_across_dst_are_labelled_with_their_offset() {
        let tz = new_york();
        let plan = BucketPlan::new(
            tz,
            Interval::Hour,
            utc("2026-03-08T05:00:00Z"),
            utc("2026-03-09T04:00:00Z"),
        );
        assert_eq!(plan.len(), 23);
        assert_eq!(plan.labels[0], "2026-03-08T00:00:00-05:00");
        assert_eq!(plan.labels[1], "2026-03-08T01:00:00-05:00");
        assert_eq!(plan.labels[2], "2026-03-08T03:00:00-04:00");
        assert_eq!(plan.labels[22], "2026-03-08T23:00:00-04:00");

        let plan = BucketPlan::new(
            tz,
            Interval::Hour,
            utc("2026-11-01T04:00:00Z"),
            utc("2026-11-02T05:00:00Z"),
        );
        assert_eq!(plan.len(), 25);
        assert_eq!(plan.labels[1], "2026-11-01T01:00:00-04:00");
        assert_eq!(plan.labels[2], "2026-11-01T01:00:00-05:00");
        assert_eq!(plan.labels[24], "2026-11-01T23:00:00-05:00");
    }

    #[test]
    fn buckets_widen_to_whole_buckets() {
        let plan = BucketPlan::new(
            Tz::UTC,
            Interval::Day,
            utc("2026-01-01T10:00:00Z"),
            utc("2026-01-03T00:00:01Z"),
        );
        assert_eq!(plan.labels, ["2026-01-01", "2026-01-02", "2026-01-03"]);
        assert_eq!(plan.start(), utc("2026-01-01T00:00:00Z"));
        assert_eq!(plan.end(), utc("2026-01-04T00:00:00Z"));
        // An exclusive end on a boundary adds no bucket.
        let plan = BucketPlan::new(
            Tz::UTC,
            Interval::Hour,
            utc("2026-01-01T10:30:00Z"),
            utc("2026-01-01T12:00:00Z"),
        );
        assert_eq!(
            plan.labels,
            ["2026-01-01T10:00:00+00:00", "2026-01-01T11:00:00+00:00"]
        );
        assert_eq!(plan.index(0), None);
        assert_eq!(plan.index(1), Some(0));
        assert_eq!(plan.index(2), Some(1));
        assert_eq!(plan.index(3), None);
    }

    #[test]
    fn a_missing_midnight_starts_the_day_at_the_first_local_time() {
        // Chile moved its clocks from 00:00 to 01:00 on 2022-09-11.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let start = day_start(tz, NaiveDate::from_ymd_opt(2022, 9, 11).unwrap());
        assert_eq!(start, utc("2022-09-11T04:00:00Z"));
        assert_eq!(
            start.with_timezone(&tz).to_rfc3339(),
            "2022-09-11T01:00:00-03:00"
        );
    }

    #[test]
    fn default_series_cover_thirty_buckets() {
        let now = utc("2026-03-20T15:42:00Z");
        let tz = new_york();
        let (from, to) = series_range(tz, Interval::Day, None, None, now).unwrap();
        let plan = BucketPlan::new(tz, Interval::Day, from, to);
        assert_eq!(plan.len(), 30);
        assert_eq!(plan.labels.first().unwrap(), "2026-02-19");
        assert_eq!(plan.labels.last().unwrap(), "2026-03-20");

        let (from, to) = series_range(tz, Interval::Hour, None, None, now).unwrap();
        let plan = BucketPlan::new(tz, Interval::Hour, from, to);
        assert_eq!(plan.len(), 720);
        assert_eq!(plan.labels.last().unwrap(), "2026-03-20T11:00:00-04:00");
    }

    #[test]
    fn series_ranges_are_bounded() {
        let now = utc("2026-06-01T00:00:00Z");
        let to = utc("2026-05-01T00:00:00Z");
        let ok = |interval, days: i64| {
            series_range(
                Tz::UTC,
                interval,
                Some(to - TimeDelta::days(days)),
                Some(to),
                now,
            )
        };
        assert!(ok(Interval::Day, 400).is_ok());
        assert!(ok(Interval::Hour, 31).is_ok());
        for (interval, days) in [(Interval::Day, 401), (Interval::Hour, 32)] {
            let err = ok(interval, days).unwrap_err();
            assert_eq!((err.status().as_u16(), err.code()), (422, "invalid_range"));
        }
        // Backwards, empty, or a default `to` before an explicit `from`.
        for (from, to) in [
            (Some(to), Some(to)),
            (Some(to), Some(to - TimeDelta::hours(1))),
            (Some(now + TimeDelta::days(1)), None),
        ] {
            let err = series_range(Tz::UTC, Interval::Day, from, to, now).unwrap_err();
            assert_eq!(err.code(), "invalid_range");
        }
        // A year of New York days is a year of days, whatever DST did to its hours.
        let ny = new_york();
        let from = utc("2026-03-01T05:00:00Z");
        let to = utc("2027-04-05T04:00:00Z");
        let (from, to) = series_range(ny, Interval::Day, Some(from), Some(to), now).unwrap();
        assert_eq!(BucketPlan::new(ny, Interval::Day, from, to).len(), 400);
    }

    #[test]
    fn hour_ranges_default_to_thirty_days_in_whole_hours() {
        let now = utc("2026-03-20T15:42:10Z");
        let range = HourRange::parse(None, None, now).unwrap();
        assert_eq!(range.start, utc("2026-02-18T15:00:00Z"));
        assert_eq!(range.end, now);
        let from = utc("2026-03-01T10:59:59Z");
        let range = HourRange::parse(Some(from), Some(now), now).unwrap();
        assert_eq!(range.start, utc("2026-03-01T10:00:00Z"));
        let err = HourRange::parse(Some(now), Some(from), now).unwrap_err();
        assert_eq!(err.code(), "invalid_range");
    }

    fn tiers(from: &str, to: &str) -> Tiers {
        HourRange::parse(Some(utc(from)), Some(utc(to)), utc(to))
            .unwrap()
            .tiers()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn whole_utc_days_come_from_the_daily_tier() {
        let t = tiers("2026-03-01T10:20:00Z", "2026-03-05T07:30:00Z");
        assert_eq!(
            t,
            Tiers {
                head: (utc("2026-03-01T10:00:00Z"), utc("2026-03-02T00:00:00Z")),
                days: (date("2026-03-02"), date("2026-03-05")),
                // The hour starting at 07:00 is before `to`, so it counts.
                tail: (utc("2026-03-05T00:00:00Z"), utc("2026-03-05T07:30:00Z")),
            }
        );
        // Midnight to midnight: days only.
        let t = tiers("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z");
        assert_eq!(t.days, (date("2026-03-01"), date("2026-03-03")));
        assert_eq!(t.head.0, t.head.1);
        assert_eq!(t.tail.0, t.tail.1);
    }

    #[test]
    fn ranges_without_a_whole_day_read_hours_only() {
        for (from, to) in [
            ("2026-03-01T10:00:00Z", "2026-03-01T18:00:00Z"),
            ("2026-03-01T10:00:00Z", "2026-03-02T09:00:00Z"),
            ("2026-03-01T00:00:00Z", "2026-03-01T23:59:59Z"),
        ] {
            let t = tiers(from, to);
            assert_eq!(t.head, (floor_hour(utc(from)), utc(to)), "{from}..{to}");
            assert!(t.days.0 >= t.days.1, "{from}..{to}: no day");
            assert_eq!(t.tail.0, t.tail.1, "{from}..{to}: no tail");
        }
    }

    #[test]
    fn tiers_cover_the_range_once() {
        // Every hour of the range falls in exactly one tier, whatever the edges.
        let start = utc("2026-03-01T00:00:00Z");
        for from_h in [0, 1, 23, 24, 25, 47] {
            for to_h in [1, 2, 23, 24, 25, 48, 49, 95, 96, 120] {
                if to_h <= from_h {
                    continue;
                }
                let from = start + TimeDelta::hours(from_h);
                let to = start + TimeDelta::hours(to_h)
                    - TimeDelta::minutes(if to_h % 2 == 0 { 0 } else { 30 });
                let t = HourRange::parse(Some(from), Some(to), to).unwrap().tiers();
                let mut hour = floor_hour(from);
                while hour < to {
                    let in_head = hour >= t.head.0 && hour < t.head.1;
                    let in_tail = hour >= t.tail.0 && hour < t.tail.1;
                    let day = hour.date_naive();
                    let in_days = day >= t.days.0 && day < t.days.1;
                    assert_eq!(
                        [in_head, in_days, in_tail].iter().filter(|x| **x).count(),
                        1,
                        "{from}..{to}: {hour}"
                    );
                    hour += TimeDelta::hours(1);
                }
                // And nothing outside it.
                assert!(t.head.0 >= floor_hour(from) && t.tail.1 <= to);
                assert!(
                    t.days.0 >= t.days.1
                        || (t.days.0 >= from.date_naive() && t.days.1 <= to.date_naive())
                );
            }
        }
    }

    #[test]
    fn time_zones_are_validated() {
        assert_eq!(parse_tz(None).unwrap(), Tz::UTC);
        assert_eq!(
            parse_tz(Some("Europe/Berlin")).unwrap().name(),
            "Europe/Berlin"
        );
        for bad in ["Mars/Olympus", "", "europe/berlin", "+02:00"] {
            let err = parse_tz(Some(bad)).unwrap_err();
            assert_eq!(
                (err.status().as_u16(), err.code()),
                (422, "invalid_time_zone"),
                "{bad:?}"
            );
        }
    }
}
