//! What visitors did on a company's cards, as the dashboards and the export read it.
//!
//! Counts come from the rollups and the running totals, so a dashboard costs what it shows, not
//! its events: the company's time series from the hourly running totals at the buckets' bounds
//! (local days are unions of UTC hours), the leaderboard and the breakdowns from the daily running
//! totals at a range's first and last whole UTC day with hourly rows only at its edges, one card's
//! series and the summaries from the hourly rollups.
//! Event lists and the export read `card_events`, clamped in SQL to the retention of the
//! company's plan: partitions may still hold events that maintenance has not dropped yet.
//!
//! Each function sends all its statements before its first await (they run under `join!`), so
//! it fits a pipelined read: one round trip. A company that does not exist (or that the tenant
//! may not see) reads as `None`.

pub mod live;
mod ranges;
mod rows;
mod sql;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use self::{
    ranges::{EventWindow, HourRange, Tiers, bucket_index},
    rows::{BreakdownCount, Cursor, EmployeeAccess, EventRow, LeaderboardRow, Tally},
};
use self::{
    rows::{RunningTotal, all},
    sql::*,
};
use crate::db::{DbError, TenantTx};

/// Rows per page of the export: each page is one read transaction and one chunk of the body.
pub const EXPORT_PAGE_ROWS: i64 = 5000;

/// A page of events, newest first, with the counts of its whole range.
#[derive(Debug)]
pub struct EventsPage {
    pub events: Vec<EventRow>,
    /// Counts over `[from, to)` in whole hours (from the hourly rollups).
    pub summary: Tally,
    /// Where the next (older) page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl EventsPage {
    /// From up to `window.fetch()` events: the one past the page only tells that more follow.
    fn new(window: &EventWindow, mut events: Vec<EventRow>, summary: Tally) -> Self {
        let next = if events.len() as i64 > window.limit {
            events.truncate(window.limit as usize);
            events.last().map(EventRow::cursor)
        } else {
            None
        };
        Self {
            events,
            summary,
            next,
        }
    }
}

/// The counts of a time series, one per bucket of its bounds.
#[derive(Debug)]
pub struct SeriesCounts {
    pub buckets: Vec<Tally>,
    /// Visitors first seen in each bucket's hours (a visitor id lives one UTC day).
    pub visitors: Vec<i64>,
    /// Visitors over the whole range: each daily visitor id once.
    pub visitors_total: i64,
}

impl SeriesCounts {
    /// From the running totals at each of `bounds` bounds (a bound without a row totals 0).
    fn between(bounds: usize, totals: &[RunningTotal]) -> Self {
        let mut at = vec![(Tally::default(), 0); bounds];
        for total in totals {
            if let Some(slot) = usize::try_from(total.bound - 1)
                .ok()
                .and_then(|i| at.get_mut(i))
            {
                *slot = (total.tally, total.visitors);
            }
        }
        let buckets = at.windows(2).map(|w| w[1].0.minus(&w[0].0)).collect();
        let visitors = at.windows(2).map(|w| w[1].1 - w[0].1).collect();
        let visitors_total = match (at.first(), at.last()) {
            (Some(first), Some(last)) => last.1 - first.1,
            _ => 0,
        };
        Self {
            buckets,
            visitors,
            visitors_total,
        }
    }
}

/// What a breakdown groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Device,
    Region,
}

fn exists(row: &tokio_postgres::Row) -> Result<bool, DbError> {
    Ok(row.try_get(0)?)
}

/// A company's latest events and its summary.
pub async fn company_events(
    tx: &TenantTx,
    company_id: Uuid,
    window: &EventWindow,
) -> Result<Option<EventsPage>, DbError> {
    let fetch = window.fetch();
    let (found, events, summary) = tokio::join!(
        tx.query_one(COMPANY_EXISTS, [&company_id]),
        tx.query(
            COMPANY_EVENTS,
            [
                &company_id,
                &window.from,
                &window.below.occurred_at,
                &window.below.id,
                &fetch,
            ],
        ),
        tx.query(COMPANY_SUMMARY, [&company_id, &window.from, &window.to]),
    );
    if !exists(&found?)? {
        return Ok(None);
    }
    let summary = Tally::of_rows(&summary?)?;
    Ok(Some(EventsPage::new(window, all(&events?)?, summary)))
}

/// An employee's latest events and summary, and whether `user_id` may see them.
pub async fn employee_events(
    tx: &TenantTx,
    company_id: Uuid,
    employee_id: Uuid,
    user_id: Uuid,
    window: &EventWindow,
) -> Result<(EmployeeAccess, EventsPage), DbError> {
    let fetch = window.fetch();
    let (access, events, summary) = tokio::join!(
        tx.query_one(EMPLOYEE_ACCESS, [&company_id, &user_id, &employee_id]),
        tx.query(
            EMPLOYEE_EVENTS,
            [
                &company_id,
                &window.from,
                &window.below.occurred_at,
                &window.below.id,
                &fetch,
                &employee_id,
            ],
        ),
        tx.query(
            EMPLOYEE_SUMMARY,
            [&company_id, &window.from, &window.to, &employee_id],
        ),
    );
    let access = EmployeeAccess::try_from(&access?)?;
    let summary = Tally::of_rows(&summary?)?;
    Ok((access, EventsPage::new(window, all(&events?)?, summary)))
}

/// An employee's latest events without the summary (the console's card page shows its own
/// series instead), and whether `user_id` may see them.
pub async fn employee_latest_events(
    tx: &TenantTx,
    company_id: Uuid,
    employee_id: Uuid,
    user_id: Uuid,
    window: &EventWindow,
) -> Result<(EmployeeAccess, Vec<EventRow>), DbError> {
    let fetch = window.fetch();
    let (access, events) = tokio::join!(
        tx.query_one(EMPLOYEE_ACCESS, [&company_id, &user_id, &employee_id]),
        tx.query(
            EMPLOYEE_EVENTS,
            [
                &company_id,
                &window.from,
                &window.below.occurred_at,
                &window.below.id,
                &fetch,
                &employee_id,
            ],
        ),
    );
    let access = EmployeeAccess::try_from(&access?)?;
    let page = EventsPage::new(window, all(&events?)?, Tally::default());
    Ok((access, page.events))
}

/// A company's counts per bucket; bucket `i` is `bounds[i]..bounds[i + 1]` (sorted): the
/// differences of the running totals at the bounds, so a year costs what a day costs.
pub async fn company_series(
    tx: &TenantTx,
    company_id: Uuid,
    bounds: &[DateTime<Utc>],
) -> Result<Option<SeriesCounts>, DbError> {
    let (found, totals) = tokio::join!(
        tx.query_one(COMPANY_EXISTS, [&company_id]),
        tx.query(COMPANY_TOTALS_AT_BOUNDS, [&company_id, &bounds]),
    );
    if !exists(&found?)? {
        return Ok(None);
    }
    Ok(Some(SeriesCounts::between(bounds.len(), &all(&totals?)?)))
}

/// As [`company_series`] for one employee's card, and whether `user_id` may see it.
pub async fn employee_series(
    tx: &TenantTx,
    company_id: Uuid,
    employee_id: Uuid,
    user_id: Uuid,
    bounds: &[DateTime<Utc>],
) -> Result<(EmployeeAccess, SeriesCounts), DbError> {
    let (access, totals) = tokio::join!(
        tx.query_one(EMPLOYEE_ACCESS, [&company_id, &user_id, &employee_id]),
        tx.query(
            EMPLOYEE_TOTALS_AT_BOUNDS,
            [&company_id, &bounds, &employee_id]
        ),
    );
    let access = EmployeeAccess::try_from(&access?)?;
    Ok((access, SeriesCounts::between(bounds.len(), &all(&totals?)?)))
}

/// People's events and views per device or region, most events first.
pub async fn breakdown(
    tx: &TenantTx,
    company_id: Uuid,
    by: Dimension,
    tiers: &Tiers,
) -> Result<Option<Vec<BreakdownCount>>, DbError> {
    let sql = match by {
        Dimension::Device => BREAKDOWN_BY_DEVICE,
        Dimension::Region => BREAKDOWN_BY_REGION,
    };
    let (head, days, tail) = tiers.params();
    let (found, rows) = tokio::join!(
        tx.query_one(COMPANY_EXISTS, [&company_id]),
        tx.query(
            sql,
            [&company_id, head.0, head.1, days.0, days.1, tail.0, tail.1]
        ),
    );
    if !exists(&found?)? {
        return Ok(None);
    }
    Ok(Some(all(&rows?)?))
}

/// The `limit` employees with the most engagements, then views.
pub async fn leaderboard(
    tx: &TenantTx,
    company_id: Uuid,
    tiers: &Tiers,
    limit: i64,
) -> Result<Option<Vec<LeaderboardRow>>, DbError> {
    let (head, days, tail) = tiers.params();
    let (found, rows) = tokio::join!(
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
    if !exists(&found?)? {
        return Ok(None);
    }
    Ok(Some(all(&rows?)?))
}

/// The company's slug and the first page of its export, oldest first.
pub async fn export_start(
    tx: &TenantTx,
    company_id: Uuid,
    (from, to): (Option<DateTime<Utc>>, DateTime<Utc>),
) -> Result<Option<(String, Vec<EventRow>)>, DbError> {
    let (slug, rows) = tokio::join!(
        tx.query_opt(COMPANY_SLUG, [&company_id]),
        export_page(tx, company_id, (from, to), None),
    );
    let Some(slug) = slug? else {
        return Ok(None);
    };
    Ok(Some((slug.try_get(0)?, rows?)))
}

/// The page of the export after `after` (from the start without one), oldest first, at most
/// [`EXPORT_PAGE_ROWS`] events.
pub async fn export_page(
    tx: &TenantTx,
    company_id: Uuid,
    (from, to): (Option<DateTime<Utc>>, DateTime<Utc>),
    after: Option<Cursor>,
) -> Result<Vec<EventRow>, DbError> {
    let after_time = after.map(|c| c.occurred_at);
    let after_id = after.map_or(Uuid::nil(), |c| c.id);
    let rows = tx
        .query(
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
        .await?;
    Ok(all(&rows)?)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn event(n: i64) -> EventRow {
        EventRow {
            id: Uuid::from_u128(n as u128),
            occurred_at: DateTime::from_timestamp(1_800_000_000 - n, 0).unwrap(),
            employee_id: Uuid::nil(),
            action: "view".into(),
            link: None,
            device: None,
            region: None,
        }
    }

    fn window(limit: i64) -> EventWindow {
        let to = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        EventWindow {
            from: Some(to - TimeDelta::days(1)),
            to,
            below: Cursor {
                occurred_at: to,
                id: Uuid::nil(),
            },
            limit,
        }
    }

    #[test]
    fn a_page_past_its_limit_points_at_its_last_event() {
        let page = EventsPage::new(&window(2), (1..=3).map(event).collect(), Tally::default());
        assert_eq!(page.events.len(), 2);
        assert_eq!(page.next, Some(event(2).cursor()));
    }

    #[test]
    fn the_last_page_has_no_next() {
        for n in [0, 1, 2] {
            let page = EventsPage::new(&window(2), (1..=n).map(event).collect(), Tally::default());
            assert_eq!(page.events.len() as i64, n);
            assert_eq!(page.next, None, "{n} events");
        }
    }
}
