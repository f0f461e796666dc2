//! Turns a public request into a [`CardEvent`]: who (a daily visitor id, never the address),
//! with what (device), from where (a trusted region header, or what the page says), and whether
//! it is a person at all.

use std::{net::IpAddr, time::Instant};

use chrono::Utc;
use poem::Request;
use uuid::Uuid;

use super::{
    Action,
    agent::{self, Device, Visitor},
    ingest::{CardEvent, EventSink, IngestError},
    rate_limit::RateLimiter,
    visitor::VisitorKey,
};

/// Tracking requests per client address: a burst, then a steady rate.
const TRACK_BURST: u32 = 60;
const TRACK_PER_SECOND: f64 = 1.0;
/// Page views and vCard downloads recorded per client address; past this a flood still gets its
/// pages, but no longer moves the numbers.
const PAGE_BURST: u32 = 30;
const PAGE_PER_SECOND: f64 = 0.5;
const TRACKED_ADDRESSES: usize = 100_000;

pub struct Collector {
    pub sink: EventSink,
    visitor_key: VisitorKey,
    track_limit: RateLimiter,
    page_limit: RateLimiter,
    client_ip_header: Option<String>,
    region_header: Option<String>,
}

/// Where a card's event comes from.
pub struct Card {
    pub company_id: Uuid,
    pub employee_id: Uuid,
}

impl Collector {
    pub fn new(
        sink: EventSink,
        secret: &[u8],
        client_ip_header: Option<String>,
        region_header: Option<String>,
    ) -> Self {
        Self {
            sink,
            visitor_key: VisitorKey::new(secret),
            track_limit: RateLimiter::new(TRACK_BURST, TRACK_PER_SECOND, TRACKED_ADDRESSES),
            page_limit: RateLimiter::new(PAGE_BURST, PAGE_PER_SECOND, TRACKED_ADDRESSES),
            client_ip_header,
            region_header,
        }
    }

    /// The client's address: from the trusted proxy header when configured (its last entry,
    /// the one our proxy added), else the connection's peer.
    pub fn client_ip(&self, req: &Request) -> IpAddr {
        let from_header = self.client_ip_header.as_deref().and_then(|name| {
            let value = req.header(name)?;
            value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        });
        from_header
            .or_else(|| req.remote_addr().as_socket_addr().map(|a| a.ip()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// A key for per-client limits: a keyed hash of the client's address (its /64 for IPv6).
    pub fn client_key(&self, req: &Request) -> [u8; 16] {
        self.visitor_key.rate_key(self.client_ip(req))
    }

    /// `Err(retry after)` when this client sent too many tracking requests.
    pub fn check_track_limit(&self, req: &Request) -> Result<(), std::time::Duration> {
        self.track_limit
            .check(&self.client_key(req), Instant::now())
    }

    /// Builds the event of `action` on `card` by this request's visitor. A bot's event becomes
    /// a `Preview`, whatever it claimed to do.
    pub fn event(
        &self,
        req: &Request,
        card: &Card,
        action: Action,
        link: Option<String>,
        device: Option<Device>,
        region: Option<String>,
    ) -> CardEvent {
        let user_agent = req.header("user-agent");
        let now = Utc::now();
        let (action, device, visitor) = match agent::classify(user_agent) {
            Visitor::Bot => (Action::Preview, None, None),
            Visitor::Person(from_agent) => {
                let id = self.visitor_key.visitor_id(
                    self.client_ip(req),
                    user_agent.unwrap_or_default(),
                    now.date_naive(),
                );
                (action, Some(device.unwrap_or(from_agent)), Some(id))
            }
        };
        // A trusted header, when present, decides (even when it says "unknown"): the page's own
        // claim is only for deployments without one.
        let trusted_region = self
            .region_header
            .as_deref()
            .and_then(|name| req.header(name))
            .map(normalize_region);
        CardEvent {
            id: Uuid::new_v4(),
            occurred_at: now,
            company_id: card.company_id,
            employee_id: card.employee_id,
            action,
            link: link.filter(|_| action == Action::LinkClick),
            device: device.map(Device::as_str),
            region: match trusted_region {
                Some(trusted) => trusted,
                None => region.as_deref().and_then(normalize_region),
            },
            visitor,
        }
    }

    /// Counts a lead that was just stored on `card`, as this request's visitor's `lead`, and
    /// returns once the event is committed. The lead door has already decided a person left it
    /// (honeypot, form timing, limits), so it counts as a lead whatever the user agent says.
    pub async fn record_lead(&self, req: &Request, card: &Card) -> Result<(), IngestError> {
        let mut event = self.event(req, card, Action::Lead, None, None, None);
        event.action = Action::Lead;
        self.sink.record(event).await
    }

    /// Records what the server saw (a page view, a vCard download) without making the visitor
    /// wait, unless this address is flooding.
    pub fn record_served(&self, req: &Request, card: &Card, action: Action) {
        let key = self.visitor_key.rate_key(self.client_ip(req));
        if self.page_limit.check(&key, Instant::now()).is_err() {
            return;
        }
        self.sink
            .record_later(self.event(req, card, action, None, None, None));
    }
}

/// A region as stored: 1 to 64 letters, digits, spaces, `-` or `_`; two-letter codes uppercase
/// (`de` → `DE`). Anything else is dropped (`XX`/`T1`, a CDN's "unknown" and Tor, too).
pub fn normalize_region(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > 64
        || !trimmed
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_')
    {
        return None;
    }
    let region = if trimmed.len() == 2 {
        trimmed.to_ascii_uppercase()
    } else {
        trimmed.to_owned()
    };
    (region != "XX" && region != "T1").then_some(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_normalized_or_dropped() {
        assert_eq!(normalize_region(" de "), Some("DE".into()));
        assert_eq!(
            normalize_region("Île-de-France"),
            Some("Île-de-France".into())
        );
        assert_eq!(normalize_region("XX"), None);
        assert_eq!(normalize_region(""), None);
        assert_eq!(normalize_region("<script>"), None);
        assert_eq!(normalize_region(&"a".repeat(65)), None);
    }
}
