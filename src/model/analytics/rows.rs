//! What the dashboards' statements return, mapped from their rows.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Datelike, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::analytics::Action;

/// Every [`Action`], the people's and preview.
const ACTIONS: usize = Action::PEOPLE.len() + 1;

/// Counts indexed by [`Action`] (its declaration order: the people's actions, then preview).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally([i64; ACTIONS]);

impl Tally {
    pub fn add(&mut self, action: &str, events: i64) {
        match Action::parse(action) {
            Some(action) => self.0[action as usize] += events,
            None => tracing::warn!(action, "unknown action in the analytics rollups"),
        }
    }

    pub fn get(&self, action: Action) -> i64 {
        self.0[action as usize]
    }

    pub fn merge(&mut self, other: &Tally) {
        for (sum, n) in self.0.iter_mut().zip(other.0) {
            *sum += n;
        }
    }

    /// Each count of `self` less that of `other`.
    pub fn minus(&self, other: &Tally) -> Tally {
        let mut difference = *self;
        for (n, m) in difference.0.iter_mut().zip(other.0) {
            *n -= m;
        }
        difference
    }

    /// `view` + `scan_qr`.
    pub fn views(&self) -> i64 {
        self.get(Action::View) + self.get(Action::ScanQr)
    }

    /// `(action, events)` rows.
    pub(super) fn of_rows(rows: &[Row]) -> Result<Self, tokio_postgres::Error> {
        let mut tally = Tally::default();
        for row in rows {
            let ActionEvents { action, events } = row.try_into()?;
            tally.add(&action, events);
        }
        Ok(tally)
    }
}

/// An `(action, events)` row of a summary.
struct ActionEvents {
    action: String,
    events: i64,
}

impl TryFrom<&Row> for ActionEvents {
    type Error = tokio_postgres::Error;

    fn try_from(row: &Row) -> Result<Self, Self::Error> {
        Ok(Self {
            action: row.try_get(0)?,
            events: row.try_get(1)?,
        })
    }
}

/// The keyset position of an event: the event lists page below one, the export after one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub occurred_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// As handed out in `next_cursor`: base64url of the event's time in microseconds
    /// (big-endian) and its id.
    pub fn encode(self) -> String {
        let mut raw = [0u8; 24];
        raw[..8].copy_from_slice(&self.occurred_at.timestamp_micros().to_be_bytes());
        raw[8..].copy_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// `None` for anything [`Cursor::encode`] did not make.
    pub fn decode(text: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(text).ok()?;
        let raw: [u8; 24] = raw.try_into().ok()?;
        let micros = i64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
        // Within what PostgreSQL stores, so a forged cursor is refused, not a database error.
        let occurred_at =
            DateTime::from_timestamp_micros(micros).filter(|t| (1..=9999).contains(&t.year()))?;
        let id = Uuid::from_bytes(raw[8..].try_into().expect("16 bytes"));
        Some(Self { occurred_at, id })
    }
}

/// A row of `card_events` as the lists and the export select it. `action` and `device` are as
/// stored: the doors decide what an unexpected one means.
#[derive(Debug)]
pub struct EventRow {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub employee_id: Uuid,
    pub action: String,
    pub link: Option<String>,
    pub device: Option<String>,
    pub region: Option<String>,
}

impl EventRow {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            occurred_at: self.occurred_at,
            id: self.id,
        }
    }
}

impl TryFrom<&Row> for EventRow {
    type Error = tokio_postgres::Error;

    fn try_from(row: &Row) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.try_get(0)?,
            occurred_at: row.try_get(1)?,
            employee_id: row.try_get(2)?,
            action: row.try_get(3)?,
            link: row.try_get(4)?,
            device: row.try_get(5)?,
            region: row.try_get(6)?,
        })
    }
}

/// Whether an employee exists, and whether the caller's login is linked to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmployeeAccess {
    pub found: bool,
    pub linked: bool,
}

impl TryFrom<&Row> for EmployeeAccess {
    type Error = tokio_postgres::Error;

    fn try_from(row: &Row) -> Result<Self, Self::Error> {
        Ok(Self {
            found: row.try_get(0)?,
            linked: row.try_get(1)?,
        })
    }
}

/// People's events and views for one device or region.
#[derive(Debug)]
pub struct BreakdownCount {
    /// `unknown` when not known.
    pub value: String,
    pub events: i64,
    pub views: i64,
}

impl TryFrom<&Row> for BreakdownCount {
    type Error = tokio_postgres::Error;

    fn try_from(row: &Row) -> Result<Self, Self::Error> {
        Ok(Self {
            value: row.try_get(0)?,
            events: row.try_get(1)?,
            views: row.try_get(2)?,
        })
    }
}

/// One employee's place on the leaderboard.
#[derive(Debug)]
pub struct LeaderboardRow {
    pub employee_id: Uuid,
    /// `None` when the employee has been deleted since.
    pub full_name: Option<String>,
    pub views: i64,
    pub engagements: i64,
    pub saved_contacts: i64,
    pub leads: i64,
}

impl TryFrom<&Row> for LeaderboardRow {
    type Error = tokio_postgres::Error;

    fn try_from(row: &Row) -> Result<Self, Self::Error> {
        Ok(Self {
            employee_id: row.try_get(0)?,
            full_name: row.try_get(1)?,
            views: row.try_get(2)?,
            engagements: row.try_get(3)?,
            saved_contacts: row.try_get(4)?,
            leads: row.try_get(5)?,
        })
    }
}

/// The running totals at one bound of a time series: the bound's 1-based index, a count per
/// action in [`Action`] order, unique visitors.
pub(super) struct RunningTotal {
    pub bound: i64,
    pub tally: Tally,
    pub visitors: i64,
}

impl TryFrom<&Row> for RunningTotal {
    type Error = tokio_postgres::Error;

    fn try_from(row: &Row) -> Result<Self, Self::Error> {
        let mut counts = [0; ACTIONS];
        for (i, count) in counts.iter_mut().enumerate() {
            *count = row.try_get(i + 1)?;
        }
        Ok(Self {
            bound: row.try_get(0)?,
            tally: Tally(counts),
            visitors: row.try_get(ACTIONS + 1)?,
        })
    }
}

/// Every row mapped, or the first column that did not fit.
pub(super) fn all<T>(rows: &[Row]) -> Result<Vec<T>, tokio_postgres::Error>
where
    T: for<'r> TryFrom<&'r Row, Error = tokio_postgres::Error>,
{
    rows.iter().map(T::try_from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        tally.add("lead", 5);
        tally.add("preview", 7);
        assert_eq!(tally.get(Action::Lead), 5);
        assert_eq!(
            (
                tally.get(Action::View),
                tally.get(Action::ScanQr),
                tally.get(Action::Preview)
            ),
            (3, 1, 7)
        );
        assert_eq!(tally.views(), 4);
        let mut twice = tally;
        twice.merge(&tally);
        assert_eq!(twice.get(Action::DownloadVcard), 4);
    }
}
