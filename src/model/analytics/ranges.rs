//! The windows the dashboards read, once the doors have checked what was asked.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use tokio_postgres::types::ToSql;

use super::Cursor;

/// One page of an event list.
#[derive(Debug)]
pub struct EventWindow {
    /// `None`: from the start of retention.
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    /// Events strictly below this keyset: the cursor, or `(to, nil)` (everything before `to`).
    pub below: Cursor,
    pub limit: i64,
}

impl EventWindow {
    /// One row more than the page, to tell whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }
}

/// `[start, end)` of an aggregate over whole hours (breakdowns, leaderboard).
#[derive(Debug, PartialEq, Eq)]
pub struct HourRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// How an [`HourRange`] reads the rollups: its whole UTC days from the daily tier, the hours
/// before the first whole day (`head`) and from the end of the last one (`tail`) from the hourly
/// tier. A range without a whole day is all head; `days` and `tail` are then empty.
#[derive(Debug, PartialEq, Eq)]
pub struct Tiers {
    pub head: (DateTime<Utc>, DateTime<Utc>),
    pub days: (NaiveDate, NaiveDate),
    pub tail: (DateTime<Utc>, DateTime<Utc>),
}

/// A parameter of a query.
type Param<'a> = &'a (dyn ToSql + Sync);

impl Tiers {
    /// The bounds as the tiered queries' `($2, $3)`, `($4, $5)` and `($6, $7)`.
    pub(super) fn params(
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
    pub fn tiers(&self) -> Tiers {
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

/// The 0-based bucket of a `width_bucket` result (1-based, 0 and n + 1 outside) among
/// `buckets` buckets.
pub fn bucket_index(bucket: i32, buckets: usize) -> Option<usize> {
    usize::try_from(bucket)
        .ok()
        .and_then(|b| b.checked_sub(1))
        .filter(|&i| i < buckets)
}
