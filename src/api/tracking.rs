//! `POST /api/analytics/track`: what a visitor did on a card, reported by the card page's
//! beacons. Public, rate limited per client address, answered once the event is stored.

use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, param::Query, payload::Json};
use uuid::Uuid;

use super::{
    ApiTags, AppState,
    json_string::JsonString,
    public_cards,
    schemas::{DeviceKind, TrackAction},
};
use crate::{
    analytics::{
        Action,
        agent::Device,
        collector::Card,
        ingest::{self, IngestError},
    },
    error::{ApiError, ErrorBody},
};

/// Largest tracking request body: a beacon is a few dozen bytes.
pub const MAX_TRACK_BODY_BYTES: usize = 2048;

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct TrackRequest {
    pub action: TrackAction,
    /// Derived from the User-Agent when absent.
    #[oai(nullable)]
    pub device: Option<DeviceKind>,
    /// A country or region code; a trusted CDN header (`REGION_HEADER`) takes precedence. One
    /// line of visible text, as `link`.
    #[oai(nullable, validator(max_length = 64))]
    pub region: Option<JsonString>,
    /// The link's name (e.g. `linkedin`); required for `link_click`, ignored otherwise. One line
    /// of visible text: control characters and bidirectional overrides are refused (422).
    #[oai(nullable, validator(min_length = 1, max_length = 100))]
    pub link: Option<JsonString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum TrackStatus {
    /// Stored.
    Tracked,
    /// A bot or link-preview fetcher: counted apart as a preview, not as what it claimed.
    Ignored,
}

#[derive(Debug, Object)]
pub struct Tracked {
    pub status: TrackStatus,
    /// The stored event; `null` when ignored.
    #[oai(nullable)]
    pub event_id: Option<Uuid>,
}

#[derive(ApiResponse)]
pub enum TrackResponse {
    /// Stored (durably) or ignored.
    #[oai(status = 200)]
    Ok(Json<Tracked>),
    /// Too many tracking requests from this address.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

pub struct TrackingApi;

#[OpenApi(tag = "ApiTags::Analytics")]
impl TrackingApi {
    /// Record what a visitor did on a card
    ///
    /// Public; the card page calls it with `navigator.sendBeacon`. Page views and vCard
    /// downloads are also recorded by the server when it serves them.
    #[oai(
        path = "/analytics/track",
        method = "post",
        operation_id = "trackEvent"
    )]
    async fn track(
        &self,
        state: Data<&AppState>,
        req: &Request,
        company_slug: Query<String>,
        employee_slug: Query<String>,
        body: Json<TrackRequest>,
    ) -> Result<TrackResponse, ApiError> {
        if let Err(wait) = state.analytics.check_track_limit(req) {
            return Ok(TrackResponse::TooManyRequests(
                Json(ErrorBody {
                    detail: "Too many tracking requests; try again later".into(),
                    code: "rate_limited".into(),
                }),
                wait.as_secs().max(1),
            ));
        }
        let body = body.0;
        // Before trimming: a trailing line break is refused too, not quietly dropped.
        visible_line("link", body.link.as_deref())?;
        visible_line("region", body.region.as_deref())?;
        let action = Action::from(body.action);
        let link = body
            .link
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty());
        if action == Action::LinkClick && link.is_none() {
            return Err(ApiError::invalid("`link` is required for `link_click`"));
        }
        let card = public_cards::load_card(
            &state,
            &company_slug,
            &employee_slug,
            &public_cards::MissPayer::nobody(),
        )
        .await?;
        let card = Card {
            company_id: card.profile.company_id,
            employee_id: card.profile.employee_id,
        };
        let event = state.analytics.event(
            req,
            &card,
            action,
            link,
            body.device.map(Device::from),
            body.region.map(JsonString::into_inner),
        );
        let tracked = event.action != Action::Preview;
        let id = event.id;
        state
            .analytics
            .sink
            .record(event)
            .await
            .map_err(|e| not_stored(&e))?;
        Ok(TrackResponse::Ok(Json(Tracked {
            status: if tracked {
                TrackStatus::Tracked
            } else {
                TrackStatus::Ignored
            },
            event_id: tracked.then_some(id),
        })))
    }
}

/// Refuses a visitor's text that is not one line of visible text: control characters (a NUL
/// PostgreSQL cannot store, terminal escapes, line breaks) and the bidirectional overrides and
/// isolates that make a value read as another in a dashboard or a spreadsheet. The lengths are
/// checked by the schema.
fn visible_line(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    let refused = |c: char| {
        c.is_control()
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
            || matches!(c, '\u{2028}' | '\u{2029}')
    };
    match value {
        Some(value) if value.chars().any(refused) => Err(ApiError::invalid(format!(
            "`{field}` must be one line of visible text: no control characters or \
             bidirectional overrides"
        ))),
        _ => Ok(()),
    }
}

/// Why an event was not stored, for its client: refused alone (the writer isolates a bad event
/// from the rest of its batch) is the request's fault; an outage is a 503, to retry.
fn not_stored(error: &IngestError) -> ApiError {
    use tokio_postgres::error::SqlState;
    match error {
        IngestError::Closed => ApiError::unavailable("The service is shutting down"),
        IngestError::Refused(e) => {
            if e.as_db_error()
                .is_some_and(|db| *db.code() == SqlState::FOREIGN_KEY_VIOLATION)
            {
                // The company was deleted while the event waited.
                ApiError::not_found("Card not found")
            } else {
                // Logged by the writer, with the event.
                ApiError::unprocessable("event_refused", "This event cannot be stored")
            }
        }
        IngestError::Database(e) if ingest::is_outage(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "The database is unavailable, try again shortly",
        ),
        IngestError::Database(e) => ApiError::internal(e),
    }
}
