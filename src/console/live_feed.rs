//! The live feed of the analytics page: `GET /app/analytics/live` streams, as Server-Sent Events,
//! what visitors do on the caller's cards, from the same hub (and under the same limits and
//! scoping) as the API's `GET /api/company/{id}/analytics/live`. Each event's data is an HTML
//! fragment (an `<li>`, made and escaped here) that console.js prepends to the page's list.
//! Without JavaScript, the page shows the latest events read from the model instead.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use maud::{Markup, html};
use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, handler,
    middleware::Compression,
    web::{
        Data,
        sse::{Event, SSE},
    },
};
use uuid::Uuid;

use super::{error::ConsoleError, session::SignedIn};
use crate::{
    analytics::{
        Action,
        live::{FeedItem, LiveEvent},
    },
    api::{
        AppState,
        analytics::live::{HEARTBEAT, refusal},
    },
};

/// The path of the stream, as the page's list names it.
pub const PATH: &str = "/app/analytics/live";

#[handler]
pub async fn stream(
    state: Data<&AppState>,
    SignedIn(user): SignedIn,
) -> Result<Response, ConsoleError> {
    let caller = user.caller();
    // An employee sees only their own card's events (the hub's rule, as for the API).
    let feed = state
        .live
        .feed(
            state.db.clone(),
            caller.tenant(),
            caller.user_id(),
            !caller.is_admin(),
        )
        .await
        .map_err(refusal)?;
    let events = feed.map(|item| match item {
        FeedItem::Event(event) => {
            Event::message(live_item(&event).into_string()).event_type("visit")
        }
        FeedItem::Missed { events } => {
            Event::message(missed_item(events).into_string()).event_type("missed")
        }
    });
    let mut response = SSE::new(events).keep_alive(HEARTBEAT).into_response();
    response.headers_mut().insert(
        "Cache-Control",
        poem::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Compresses the console's answers, except the live stream: the compressor holds bytes back
/// until it has enough of them, which would keep a quiet stream's events from the browser.
pub async fn compression<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    if req.original_uri().path() == PATH {
        return next.call(req).await.map(IntoResponse::into_response);
    }
    Compression::new().transform(next).call(req).await
}

/// One event of the feed, as the list shows it.
pub struct FeedLine<'a> {
    pub occurred_at: DateTime<Utc>,
    pub action: &'a str,
    pub employee_id: Uuid,
    /// `None` when the employee is gone (or not known).
    pub employee_name: Option<&'a str>,
    pub device: Option<&'a str>,
    pub region: Option<&'a str>,
}

/// What an action reads as in a sentence.
pub fn action_phrase(action: &str) -> &'static str {
    match Action::parse(action) {
        Some(Action::View) => "card viewed",
        Some(Action::ScanQr) => "QR code scanned",
        Some(Action::Call) => "call tapped",
        Some(Action::Email) => "email tapped",
        Some(Action::Whatsapp) => "WhatsApp tapped",
        Some(Action::DownloadVcard) => "contact saved",
        Some(Action::LinkClick) => "link opened",
        Some(Action::Share) => "card shared",
        Some(Action::Lead) => "lead left",
        Some(Action::Preview) | None => "other activity",
    }
}

pub fn item(line: &FeedLine<'_>) -> Markup {
    let when = line.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let shown = line.occurred_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let context: Vec<&str> = [line.device, line.region].into_iter().flatten().collect();
    html! {
        li class="feed-item" {
            time datetime=(when) { (shown) }
            " "
            a href=(format!("/app/analytics/employees/{}", line.employee_id)) {
                (line.employee_name.unwrap_or("A deleted card"))
            }
            ": " (action_phrase(line.action))
            @if !context.is_empty() { span class="muted" { " (" (context.join(", ")) ")" } }
        }
    }
}

fn live_item(event: &LiveEvent) -> Markup {
    item(&FeedLine {
        occurred_at: event.occurred_at,
        action: &event.action,
        employee_id: event.employee_id,
        employee_name: event.employee_name.as_deref(),
        device: event.device.as_deref(),
        region: event.region.as_deref(),
    })
}

fn missed_item(events: Option<u64>) -> Markup {
    html! {
        li class="feed-item muted" {
            @match events {
                Some(n) => { (n) " more events happened; reload the page for the full numbers." }
                None => { "Some events may have been missed; reload the page for the full numbers." }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_escapes_what_visitors_and_admins_wrote() {
        let html = item(&FeedLine {
            occurred_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            action: "download_vcard",
            employee_id: Uuid::nil(),
            employee_name: Some("<script>x</script>"),
            device: Some("mobile"),
            region: Some("<b>DE</b>"),
        })
        .into_string();
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
        assert!(html.contains("&lt;b&gt;DE&lt;/b&gt;"), "{html}");
        assert!(html.contains("contact saved"), "{html}");
        assert!(!html.contains('\n'), "one line of SSE data: {html}");
    }

    #[test]
    fn a_lead_reads_as_a_lead_left() {
        assert_eq!(action_phrase("lead"), "lead left");
    }
}
