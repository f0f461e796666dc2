//! The public card path's caches, shared by all requests of this instance, and what their
//! misses may cost: rendered cards (dropped when PostgreSQL notifies a change, see
//! `card::cache`), company ids of slugs, QR images and stored media, each miss charged to the
//! client's budget before the database is asked.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use poem::Request;
use poem_openapi::{Object, types::ToJSON};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{AppState, http::Tagged};
use crate::{
    analytics::{collector, rate_limit::RateLimiter},
    card::{
        CardProfile, CardUrls,
        budget::WorkBudget,
        cache::{BoundedCache, CardCache},
        lead_form::{self, LeadForm},
        page, qr,
    },
    config::PublicLimits,
    db::{
        Db, Tenant,
        notifications::{ListenEvent, Listener},
    },
    error::ApiError,
    model::{
        self,
        card::CardRecord,
        company::LeadSettings,
        media::{self, StoredMedia},
    },
};

pub const CARD_NOT_FOUND: &str = "Card not found";

/// What the public sees of a card, as JSON.
#[derive(Debug, Clone, Object)]
pub struct PublicCard {
    pub employee_id: Uuid,
    pub employee_name: String,
    pub company_name: String,
    pub company_id: Uuid,
    pub company_slug: String,
    pub employee_slug: String,
    #[oai(nullable)]
    pub job_title: Option<String>,
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub phone: Option<String>,
    #[oai(nullable)]
    pub whatsapp: Option<String>,
    #[oai(nullable)]
    pub bio: Option<String>,
    /// The uploaded photo, or else the photo URL set on the employee.
    #[oai(nullable)]
    pub photo_url: Option<String>,
    /// `{name: url}`.
    pub social_links: BTreeMap<String, String>,
    /// The QR code image (PNG) of the card; `qr.svg` beside it is the same as SVG.
    pub qr_code: String,
    /// The "save contact" vCard.
    pub vcard_url: String,
    /// The card page.
    pub card_url: String,
    /// The uploaded logo, or else the logo URL set on the company.
    #[oai(nullable)]
    pub company_logo: Option<String>,
    #[oai(nullable)]
    pub company_brand_color: Option<String>,
}

/// A card rendered once for every representation, shared by all requests until it changes.
pub struct RenderedCard {
    pub profile: CardProfile,
    pub urls: CardUrls,
    pub(super) photo_hash: Option<String>,
    pub(super) json: Bytes,
    pub(super) json_etag: String,
    pub(super) html: Bytes,
    pub(super) html_etag: String,
    pub(super) content_security_policy: String,
    /// Whether (and how) the card takes leads, as rendered.
    pub leads: LeadSettings,
    /// Where the lead form's start token goes in `html` (the page's handler puts one in at each
    /// response); `None` without a form.
    pub(super) lead_token_at: Option<usize>,
    /// vCard 3.0 and 4.0, made on first request (the photo must be fetched and downscaled).
    pub(super) vcards: [OnceCell<Tagged>; 2],
}

impl RenderedCard {
    pub fn analytics_card(&self) -> collector::Card {
        collector::Card {
            company_id: self.profile.company_id,
            employee_id: self.profile.employee_id,
        }
    }

    fn render(card: CardRecord, base_url: &str) -> Result<Self, ApiError> {
        let employee = card.employee;
        let company_id = employee.company_id;
        let profile = CardProfile {
            employee_id: employee.id,
            company_id,
            company_slug: employee.company_slug,
            employee_slug: employee.public_slug,
            employee_name: employee.full_name,
            company_name: card.company_name,
            job_title: employee.job_title,
            email: employee.email,
            phone: employee.phone,
            whatsapp: employee.whatsapp,
            bio: employee.bio,
            website: card.domain.map(|d| format!("https://{d}")),
            social_links: employee
                .social_links
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            photo_path: employee
                .photo_hash
                .as_deref()
                .map(|h| media::photo_path(company_id, h)),
            logo_path: card
                .logo_hash
                .as_deref()
                .map(|h| media::logo_path(company_id, h)),
            brand_color: card.brand_color,
        };
        let urls = CardUrls::new(base_url, &profile.company_slug, &profile.employee_slug);
        let absolute = |path: &Option<String>| path.as_ref().map(|p| format!("{base_url}{p}"));
        let json = PublicCard {
            employee_id: profile.employee_id,
            employee_name: profile.employee_name.clone(),
            company_name: profile.company_name.clone(),
            company_id,
            company_slug: profile.company_slug.clone(),
            employee_slug: profile.employee_slug.clone(),
            job_title: profile.job_title.clone(),
            email: profile.email.clone(),
            phone: profile.phone.clone(),
            whatsapp: profile.whatsapp.clone(),
            bio: profile.bio.clone(),
            photo_url: absolute(&profile.photo_path).or(employee.photo_url),
            social_links: employee.social_links,
            qr_code: urls.qr_png.clone(),
            vcard_url: urls.vcard.clone(),
            card_url: urls.page.clone(),
            company_logo: absolute(&profile.logo_path).or(card.logo_url),
            company_brand_color: profile.brand_color.clone(),
        };
        let json = serde_json::to_vec(&json.to_json()).map_err(ApiError::internal)?;
        let action = format!(
            "/api/card/{}/{}/leads",
            profile.company_slug, profile.employee_slug
        );
        let form = LeadForm::of(&card.leads, &profile.company_name, action);
        let mut rendered = page::render_with_lead_form(&profile, &urls, form.as_ref());
        let lead_token_at = rendered.html.find(lead_form::STARTED_PLACEHOLDER);
        if let Some(at) = lead_token_at {
            rendered
                .html
                .replace_range(at..at + lead_form::STARTED_PLACEHOLDER.len(), "");
        }
        let (json, html) = (Tagged::new(json), Tagged::new(rendered.html));
        Ok(Self {
            profile,
            urls,
            photo_hash: employee.photo_hash,
            json: json.body,
            json_etag: json.etag,
            html: html.body,
            html_etag: html.etag,
            content_security_policy: rendered.content_security_policy,
            leads: card.leads,
            lead_token_at,
            vcards: [OnceCell::new(), OnceCell::new()],
        })
    }
}

impl RenderedCard {
    /// The page's ETag at `now` (unix seconds): the rendering's, and with a lead form also the
    /// UTC day, so that a page revalidated from a cache carries a start token of the same day
    /// (see `card::lead_token::MAX_AGE`).
    pub(super) fn page_etag(&self, now: i64) -> String {
        match self.lead_token_at {
            None => self.html_etag.clone(),
            Some(_) => {
                let inner = self.html_etag.trim_matches('"');
                format!("\"{inner}-{}\"", now.div_euclid(86_400))
            }
        }
    }

    /// The page with `token` as its lead form's start token (made only when it has a form).
    pub(super) fn page_body(&self, token: impl FnOnce() -> String) -> Bytes {
        let Some(at) = self.lead_token_at else {
            return self.html.clone();
        };
        let token = token();
        let mut body = Vec::with_capacity(self.html.len() + token.len());
        body.extend_from_slice(&self.html[..at]);
        body.extend_from_slice(token.as_bytes());
        body.extend_from_slice(&self.html[at..]);
        Bytes::from(body)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum QrFormat {
    Png,
    Svg,
}

/// The caches of the public path, shared by all requests of this instance, and the bounds on
/// what their misses may cost.
pub struct PublicCards {
    cards: CardCache<Arc<RenderedCard>>,
    /// Company slugs never change, so their ids never go stale.
    company_ids: BoundedCache<String, Uuid>,
    pub(super) qr_images: BoundedCache<(String, qr::QrOptions, QrFormat), Tagged>,
    media: BoundedCache<(Uuid, String), StoredMedia>,
    /// Cache misses per client address: hits are free, misses cost a query or a rendering.
    misses: RateLimiter,
    /// QR codes being rendered on the blocking pool, in total.
    pub(super) qr_renders: WorkBudget,
    /// Database transactions opened by the public path (for tests and monitoring).
    lookups: AtomicU64,
    listener: Mutex<Option<Listener>>,
}

/// Client addresses whose miss budgets are tracked at once (bounded memory, see `RateLimiter`).
const TRACKED_ADDRESSES: usize = 100_000;
/// Unknown slugs remembered at once.
const MAX_UNKNOWN_SLUGS: usize = 50_000;
/// How long a request waits for a QR rendering slot before it is told to come back.
const QR_RENDER_WAIT: Duration = Duration::from_secs(1);

impl PublicCards {
    pub fn new(limits: &PublicLimits) -> Self {
        Self {
            cards: CardCache::with_unknown(
                20_000,
                Duration::from_secs(600),
                MAX_UNKNOWN_SLUGS,
                limits.unknown_slug_ttl,
            ),
            company_ids: BoundedCache::new(4 << 20),
            qr_images: BoundedCache::new(32 << 20),
            media: BoundedCache::new(64 << 20),
            misses: RateLimiter::new(limits.miss_burst, limits.miss_per_second, TRACKED_ADDRESSES),
            qr_renders: WorkBudget::new(
                u32::try_from(limits.qr_renders).unwrap_or(u32::MAX),
                limits.qr_renders,
                limits.qr_renders * 4,
                QR_RENDER_WAIT,
            ),
            lookups: AtomicU64::new(0),
            listener: Mutex::new(None),
        }
    }

    /// Starts hearing `card_changed` notifications; until then (and whenever that connection is
    /// lost) cards are not cached.
    pub fn listen(self: &Arc<Self>, db: &Db) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let listener = db.listen("card_changed", Duration::from_secs(1), move |event| {
            let Some(cards) = weak.upgrade() else { return };
            match event {
                ListenEvent::Listening => cards.cards.set_live(true),
                ListenEvent::Lost => cards.cards.set_live(false),
                ListenEvent::Notification(payload) => cards.apply_notification(&payload),
            }
        });
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) = Some(listener);
    }

    /// Stops hearing notifications (at shutdown: its connection goes, whoever still holds this).
    pub fn stop_listening(&self) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(listener);
        self.cards.set_live(false);
    }

    /// Drops a changed card at once on this instance (the others hear of it by notification),
    /// and the company's images: one may have been replaced or removed.
    pub fn forget_employee(&self, company_id: Uuid, employee_id: Uuid) {
        self.cards.forget_employee(company_id, employee_id);
        self.media.retain(|(company, _)| *company != company_id);
    }

    /// A new card: neither its company slug nor its own is unknown any more.
    pub fn card_created(&self, company_id: Uuid, company_slug: &str, employee_id: Uuid) {
        self.cards.forget_unknown_company(company_slug);
        self.cards.forget_employee(company_id, employee_id);
    }

    pub fn forget_company(&self, company_id: Uuid) {
        self.cards.forget_company(company_id);
        self.media.retain(|(company, _)| *company != company_id);
    }

    fn apply_notification(&self, payload: &str) {
        self.cards.apply_notification(payload);
        if payload.starts_with("company_created:") {
            // A new company has no images yet.
            return;
        }
        // `company:{id}` or `employee:{company_id}:{id}`: the company is the second part.
        match payload.split(':').nth(1).map(Uuid::parse_str) {
            Some(Ok(company_id)) => self.media.retain(|(company, _)| *company != company_id),
            _ => self.media.retain(|_| false),
        }
    }

    /// Whether rendered cards are being cached (change notifications are heard).
    pub fn is_caching(&self) -> bool {
        self.cards.is_live()
    }

    /// The bound on QR renders in flight (tests fill it).
    pub fn qr_renders(&self) -> &WorkBudget {
        &self.qr_renders
    }

    /// Transactions the public path has opened since start.
    pub fn database_lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    pub(super) fn count_lookup(&self) {
        self.lookups.fetch_add(1, Ordering::Relaxed);
    }
}

/// Who pays for the cache misses of one request: a visitor's request takes one token of its
/// address's miss budget, however many misses it makes; internal callers pay nothing.
pub struct MissPayer<'a> {
    client: Option<&'a Request>,
    charged: AtomicBool,
}

impl<'a> MissPayer<'a> {
    /// The client that sent `req`.
    pub fn client(req: &'a Request) -> Self {
        Self {
            client: Some(req),
            charged: AtomicBool::new(false),
        }
    }

    /// Nobody: for callers with limits of their own (tracking).
    pub fn nobody() -> Self {
        Self {
            client: None,
            charged: AtomicBool::new(false),
        }
    }

    /// Takes the request's token before it costs the server anything, or refuses it with 429.
    pub fn charge(&self, state: &AppState) -> Result<(), ApiError> {
        let Some(req) = self.client else {
            return Ok(());
        };
        if self.charged.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let key = state.analytics.client_key(req);
        state
            .cards
            .misses
            .check(&key, Instant::now())
            .map_err(|wait| {
                ApiError::too_many_requests(
                    "rate_limited",
                    "Too many requests for cards that are not cached; try again later",
                    wait,
                )
            })
    }
}

/// Slugs are `[a-z0-9-]`, at most 100 characters (database constraints): anything else cannot
/// name a card, and needs no trip to the database.
fn plausible_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 100
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The card behind two slugs, from the cache or the database. A miss is charged to `payer`
/// before the database is asked; a slug found to name no card is remembered for a while.
pub async fn load_card(
    state: &AppState,
    company_slug: &str,
    employee_slug: &str,
    payer: &MissPayer<'_>,
) -> Result<Arc<RenderedCard>, ApiError> {
    if !plausible_slug(company_slug) || !plausible_slug(employee_slug) {
        return Err(ApiError::not_found(CARD_NOT_FOUND));
    }
    let cards = &state.cards;
    if let Some(card) = cards.cards.get(company_slug, employee_slug) {
        return Ok(card);
    }
    if cards.cards.is_unknown_company(company_slug) {
        return Err(ApiError::not_found(CARD_NOT_FOUND));
    }
    let ticket = cards.cards.ticket();
    let company_id = match cards.company_ids.get(&company_slug.to_owned()) {
        Some(id) => id,
        None => {
            payer.charge(state)?;
            cards.count_lookup();
            let id = state
                .db
                .read_public(async |tx| model::card::company_of_slug(&tx, company_slug).await)
                .await?;
            let Some(id) = id else {
                cards.cards.remember_unknown_company(ticket, company_slug);
                return Err(ApiError::not_found(CARD_NOT_FOUND));
            };
            cards
                .company_ids
                .insert(company_slug.to_owned(), id, company_slug.len() + 64);
            id
        }
    };
    if cards.cards.is_unknown_employee(company_id, employee_slug) {
        return Err(ApiError::not_found(CARD_NOT_FOUND));
    }
    payer.charge(state)?;
    cards.count_lookup();
    let record = state
        .db
        .read(&Tenant::visitor(company_id), async |tx| {
            model::card::get(&tx, employee_slug).await
        })
        .await?;
    let Some(record) = record else {
        cards
            .cards
            .remember_unknown_employee(ticket, company_id, employee_slug);
        return Err(ApiError::not_found(CARD_NOT_FOUND));
    };
    let card = Arc::new(RenderedCard::render(record, &state.public_base_url)?);
    cards.cards.insert(
        ticket,
        (company_slug, employee_slug),
        (company_id, card.profile.employee_id),
        card.clone(),
    );
    Ok(card)
}

/// A stored image, from the cache or the database (as a visitor of its company: images are
/// public, and the hash in the URL is what makes them unguessable).
pub async fn load_media(
    state: &AppState,
    payer: &MissPayer<'_>,
    company_id: Uuid,
    hash: &str,
) -> Result<Option<StoredMedia>, ApiError> {
    let key = (company_id, hash.to_owned());
    if let Some(media) = state.cards.media.get(&key) {
        return Ok(Some(media));
    }
    payer.charge(state)?;
    let media = state
        .db
        .read(&Tenant::visitor(company_id), async |tx| {
            model::media::get(&tx, hash).await
        })
        .await?;
    let Some(media) = media else { return Ok(None) };
    let size = media.bytes.len();
    state.cards.media.insert(key, media.clone(), size);
    Ok(Some(media))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implausible_slugs_are_refused_without_a_query() {
        assert!(plausible_slug("jane-smith-1a2b3c"));
        assert!(!plausible_slug(""));
        assert!(!plausible_slug("Jane"));
        assert!(!plausible_slug("a/b"));
        assert!(!plausible_slug(&"a".repeat(101)));
    }
}
