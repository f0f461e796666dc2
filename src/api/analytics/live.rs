//! The live activity feed as Server-Sent Events: a thin wrapper over
//! [`crate::analytics::live::LiveHub::feed`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream::BoxStream};
use poem::web::{Data, sse::Event};
use poem_openapi::{Object, OpenApi, Union, param::Path, payload::EventStream, types::ToJSON};
use uuid::Uuid;

use crate::{
    analytics::live::{FeedItem, FeedRefused, LiveEvent},
    api::{ApiTags, AppState},
    auth::BearerAuth,
    error::ApiError,
};

/// A comment line this often keeps proxies from closing an idle stream.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// When a refused feed may try again.
const RETRY_FULL: Duration = Duration::from_secs(30);

pub struct LiveFeedApi;

#[OpenApi(tag = "ApiTags::Analytics")]
impl LiveFeedApi {
    /// A company's live activity
    ///
    /// `text/event-stream` of what visitors do on the company's cards as it is stored, on
    /// whichever instance: an `event: visit` per event (bots and link previews left out, as
    /// the dashboards do) and `event: missed` when events were skipped (`events`: how many, or
    /// null when not known). Never the visitor's identity. Admins and superadmins see the whole
    /// company; an employee sees only their own card's events (403 when their login is linked
    /// to no card). A comment line every 15 s keeps the stream open; it ends when the session
    /// ends or the caller loses access (checked every minute), and at shutdown. Open feeds are
    /// bounded: 429 past the company's share, 503 when the instance is full, with
    /// `Retry-After`.
    #[oai(
        path = "/company/:company_id/analytics/live",
        method = "get",
        operation_id = "getCompanyAnalyticsLive"
    )]
    async fn live(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
    ) -> Result<EventStream<BoxStream<'static, LiveMessage>>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        let feed = state
            .live
            .feed(
                state.db.clone(),
                tenant,
                caller.user_id(),
                !caller.is_admin(),
            )
            .await
            .map_err(refusal)?;
        Ok(EventStream::new(feed.map(LiveMessage::from).boxed())
            .keep_alive(HEARTBEAT)
            .to_event(LiveMessage::into_event))
    }
}

pub fn refusal(refused: FeedRefused) -> ApiError {
    match refused {
        FeedRefused::NotFound => ApiError::not_found("Company not found"),
        FeedRefused::NoLinkedCard => ApiError::forbidden("Your login is linked to no card"),
        FeedRefused::CompanyFull => ApiError::too_many_requests(
            "too_many_live_feeds",
            "Too many live feeds are open for this company",
            RETRY_FULL,
        ),
        FeedRefused::Full => ApiError::busy("Too many live feeds are open", RETRY_FULL),
        FeedRefused::Closed => ApiError::unavailable("The service is shutting down"),
        FeedRefused::Database(e) => e.into(),
    }
}

/// One visitor event of the live feed (`event: visit`).
#[derive(Object)]
pub struct LiveVisit {
    /// `view`, `scan_qr`, `call`, `email`, `whatsapp`, `download_vcard`, `link_click`, `share`,
    /// `lead` (a contact left on the card).
    pub action: String,
    pub employee_id: Uuid,
    /// The employee's name (its first 60 characters); null when the employee is gone.
    #[oai(nullable)]
    pub employee_name: Option<String>,
    #[oai(nullable)]
    pub employee_slug: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// `mobile`, `tablet` or `desktop`, when known.
    #[oai(nullable)]
    pub device: Option<String>,
    /// Country or region, when known.
    #[oai(nullable)]
    pub region: Option<String>,
}

/// Events the feed skipped (`event: missed`).
#[derive(Object)]
pub struct LiveMissed {
    /// How many; null when not known (some may have been missed).
    #[oai(nullable)]
    pub events: Option<u64>,
}

/// What the live feed sends.
#[derive(Union)]
pub enum LiveMessage {
    Visit(LiveVisit),
    Missed(LiveMissed),
}

impl From<FeedItem> for LiveMessage {
    fn from(item: FeedItem) -> Self {
        match item {
            FeedItem::Event(LiveEvent {
                action,
                employee_id,
                employee_name,
                employee_slug,
                occurred_at,
                device,
                region,
            }) => LiveMessage::Visit(LiveVisit {
                action,
                employee_id,
                employee_name,
                employee_slug,
                occurred_at,
                device,
                region,
            }),
            FeedItem::Missed { events } => LiveMessage::Missed(LiveMissed { events }),
        }
    }
}

impl LiveMessage {
    fn into_event(self) -> Event {
        match self {
            LiveMessage::Visit(visit) => Event::message(visit.to_json_string()).event_type("visit"),
            LiveMessage::Missed(missed) => {
                Event::message(missed.to_json_string()).event_type("missed")
            }
        }
    }
}
