//! Analytics: what people do on a card. Classifying the visitor, hashing them into a daily
//! visitor id, rate limiting, and storing events and their rollups with group commit.

pub mod agent;
pub mod collector;
pub mod ingest;
pub mod live;
pub mod rate_limit;
pub mod running;
pub mod visitor;

use std::time::Duration;

use crate::db::{Db, Tenant};

/// Runs `analytics_maintain()` now and then every `period`: partitions for the coming days, and
/// retention (dropping partitions past every plan's detail period). Failures are logged; the next
/// round tries again.
pub async fn maintain_every(db: Db, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        // The function is SECURITY DEFINER and takes no tenant's data.
        let result = db
            .write(&Tenant::maintenance(), async |tx| {
                tx.query_one(
                    "SELECT dropped_partitions, purged_events FROM analytics_maintain()",
                    [],
                )
                .await
            })
            .await;
        match result {
            Ok(row) => {
                let dropped: i32 = row.get(0);
                let purged: i64 = row.get(1);
                if dropped > 0 || purged > 0 {
                    tracing::info!(dropped, purged, "analytics retention applied");
                }
            }
            Err(e) => tracing::warn!(error = %e, "analytics maintenance failed"),
        }
    }
}

/// What a visitor did on a card; `Preview` is a bot or link-preview fetch, which is counted
/// apart from everything people do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    View,
    ScanQr,
    Call,
    Email,
    Whatsapp,
    DownloadVcard,
    LinkClick,
    Share,
    /// A contact left on the card (a lead), recorded by the server once the lead is stored:
    /// never reported by a visitor.
    Lead,
    Preview,
}

impl Action {
    /// Everything a person can do, in the order dashboards show it.
    pub const PEOPLE: [Action; 9] = [
        Action::View,
        Action::ScanQr,
        Action::Call,
        Action::Email,
        Action::Whatsapp,
        Action::DownloadVcard,
        Action::LinkClick,
        Action::Share,
        Action::Lead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::ScanQr => "scan_qr",
            Action::Call => "call",
            Action::Email => "email",
            Action::Whatsapp => "whatsapp",
            Action::DownloadVcard => "download_vcard",
            Action::LinkClick => "link_click",
            Action::Share => "share",
            Action::Lead => "lead",
            Action::Preview => "preview",
        }
    }

    pub fn parse(raw: &str) -> Option<Action> {
        Action::PEOPLE
            .into_iter()
            .chain([Action::Preview])
            .find(|a| a.as_str() == raw)
    }

    /// Whether the action shows interest beyond opening the card (the leaderboard's measure).
    /// A lead is counted on its own (`leads`), not as an engagement.
    pub fn is_engagement(self) -> bool {
        !matches!(
            self,
            Action::View | Action::ScanQr | Action::Lead | Action::Preview
        )
    }
}

// The daily rollups keep one column per action (see `sql/V5__analytics_daily_rollups.sql`). These
// spell the columns once for the SQL that writes them; a test holds them to `Action`.

/// The per-action columns of the daily rollups, in `Action` order.
macro_rules! action_columns {
    () => {
        "view, scan_qr, call, email, whatsapp, download_vcard, link_click, share, lead, preview"
    };
}

/// Counts of each action over grouped rows of an `action` column, in [`action_columns`] order.
macro_rules! count_per_action {
    () => {
        "count(*) FILTER (WHERE action = 'view'), count(*) FILTER (WHERE action = 'scan_qr'),
         count(*) FILTER (WHERE action = 'call'), count(*) FILTER (WHERE action = 'email'),
         count(*) FILTER (WHERE action = 'whatsapp'),
         count(*) FILTER (WHERE action = 'download_vcard'),
         count(*) FILTER (WHERE action = 'link_click'), count(*) FILTER (WHERE action = 'share'),
         count(*) FILTER (WHERE action = 'lead'), count(*) FILTER (WHERE action = 'preview')"
    };
}

/// The `ON CONFLICT DO UPDATE` list adding a new row's counts to the stored row `r`.
macro_rules! add_per_action {
    () => {
        "view = r.view + excluded.view, scan_qr = r.scan_qr + excluded.scan_qr,
         call = r.call + excluded.call, email = r.email + excluded.email,
         whatsapp = r.whatsapp + excluded.whatsapp,
         download_vcard = r.download_vcard + excluded.download_vcard,
         link_click = r.link_click + excluded.link_click, share = r.share + excluded.share,
         lead = r.lead + excluded.lead, preview = r.preview + excluded.preview"
    };
}

pub(crate) use {action_columns, add_per_action, count_per_action};

/// The same lists, for SQL put together at run time (the benchmark's bulk loader).
pub const ACTION_COLUMNS: &str = action_columns!();
pub const COUNT_PER_ACTION: &str = count_per_action!();
pub const ADD_PER_ACTION: &str = add_per_action!();

#[cfg(test)]
mod tests {
    use super::*;

    fn all_actions() -> Vec<&'static str> {
        Action::PEOPLE
            .into_iter()
            .chain([Action::Preview])
            .map(Action::as_str)
            .collect()
    }

    #[test]
    fn daily_rollup_columns_follow_the_actions() {
        let columns: Vec<&str> = action_columns!().split(", ").collect();
        assert_eq!(columns, all_actions());
        let counted: Vec<&str> = count_per_action!()
            .split("action = '")
            .skip(1)
            .map(|rest| rest.split('\'').next().unwrap())
            .collect();
        assert_eq!(counted, all_actions());
        let added: Vec<&str> = add_per_action!()
            .split(',')
            .map(|assignment| assignment.trim().split(' ').next().unwrap())
            .collect();
        assert_eq!(added, all_actions());
        for action in all_actions() {
            assert!(
                add_per_action!().contains(&format!("{action} = r.{action} + excluded.{action}"))
            );
        }
    }

    #[test]
    fn actions_round_trip_through_their_names() {
        for action in Action::PEOPLE.into_iter().chain([Action::Preview]) {
            assert_eq!(Action::parse(action.as_str()), Some(action));
        }
        assert_eq!(Action::parse("View"), None);
        assert_eq!(Action::parse(""), None);
    }

    #[test]
    fn a_lead_is_a_persons_action_but_not_an_engagement() {
        assert!(Action::PEOPLE.contains(&Action::Lead));
        assert_eq!(Action::Lead.as_str(), "lead");
        assert!(!Action::Lead.is_engagement());
        let engagements: Vec<&str> = Action::PEOPLE
            .into_iter()
            .filter(|a| a.is_engagement())
            .map(Action::as_str)
            .collect();
        assert_eq!(
            engagements,
            [
                "call",
                "email",
                "whatsapp",
                "download_vcard",
                "link_click",
                "share"
            ]
        );
    }
}
