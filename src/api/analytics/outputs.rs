//! What the dashboards answer, and how the model's rows become it.

use chrono::{DateTime, Utc};
use poem::Body;
use poem_openapi::{ApiResponse, Enum, Object, payload::Binary};
use uuid::Uuid;

use crate::{
    analytics::Action,
    api::schemas::{DeviceKind, EventAction},
    error::ApiError,
    model::analytics::{EventRow, Tally},
};

/// One thing a person did on a card.
#[derive(Debug, Object)]
pub struct AnalyticsEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// The card's employee; may no longer exist (history outlives employees).
    pub employee_id: Uuid,
    pub action: EventAction,
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
    /// Contacts left on the card (counted by the server when it stores the lead).
    pub lead: i64,
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
    /// Contacts left on the card (counted by the server when it stores the lead).
    pub lead: i64,
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
    /// `lead`: contacts left on the card.
    pub leads: i64,
    /// `leads / views`; 0 without views.
    pub lead_rate: f64,
    /// `leads / saved_contacts`; 0 without saved contacts.
    pub leads_per_saved_contact: f64,
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
    /// `lead` (not part of `engagements`).
    pub leads: i64,
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
            lead: t.get(Action::Lead),
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
            lead: t.get(Action::Lead),
        }
    }
}

/// `part / whole`; 0 when `whole` is 0.
fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl From<&Tally> for Conversion {
    fn from(t: &Tally) -> Self {
        let views = t.views();
        let saved_contacts = t.get(Action::DownloadVcard);
        let leads = t.get(Action::Lead);
        Self {
            views,
            saved_contacts,
            rate: ratio(saved_contacts, views),
            leads,
            lead_rate: ratio(leads, views),
            leads_per_saved_contact: ratio(leads, saved_contacts),
        }
    }
}

impl TryFrom<EventRow> for AnalyticsEvent {
    type Error = ApiError;

    /// A stored action or device this version does not know is a bug, not the client's fault.
    fn try_from(row: EventRow) -> Result<Self, ApiError> {
        let Some(action) = Action::parse(&row.action).and_then(EventAction::of) else {
            return Err(ApiError::internal(format!(
                "unexpected stored action {:?}",
                row.action
            )));
        };
        let device = match row.device.as_deref() {
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
        Ok(Self {
            id: row.id,
            occurred_at: row.occurred_at,
            employee_id: row.employee_id,
            action,
            link: row.link,
            device,
            region: row.region,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_conversion_follow_the_tally() {
        let mut tally = Tally::default();
        tally.add("view", 3);
        tally.add("scan_qr", 1);
        tally.add("download_vcard", 2);
        tally.add("preview", 7);
        let counts = ActionCounts::from(tally);
        assert_eq!((counts.view, counts.scan_qr, counts.preview), (3, 1, 7));
        let conversion = Conversion::from(&tally);
        assert_eq!((conversion.views, conversion.saved_contacts), (4, 2));
        assert!((conversion.rate - 0.5).abs() < f64::EPSILON);
        assert_eq!(Conversion::from(&Tally::default()).rate, 0.0);
    }

    #[test]
    fn the_lead_rates_divide_by_views_and_saved_contacts() {
        let mut tally = Tally::default();
        tally.add("view", 8);
        tally.add("download_vcard", 4);
        tally.add("lead", 2);
        let conversion = Conversion::from(&tally);
        assert_eq!(conversion.leads, 2);
        assert!((conversion.lead_rate - 0.25).abs() < f64::EPSILON);
        assert!((conversion.leads_per_saved_contact - 0.5).abs() < f64::EPSILON);
        assert_eq!(PeopleCounts::from(tally).lead, 2);

        let mut leads_only = Tally::default();
        leads_only.add("lead", 1);
        let conversion = Conversion::from(&leads_only);
        assert_eq!((conversion.leads, conversion.views), (1, 0));
        assert_eq!(conversion.lead_rate, 0.0);
        assert_eq!(conversion.leads_per_saved_contact, 0.0);
    }
}
