//! The public card, the product's hot path: its JSON, its HTML page, its QR code and its vCard.
//! No authentication. The company slug goes through the `card_company` SECURITY DEFINER lookup;
//! everything else is read under the tenant wall as a visitor of that one company.
//!
//! Rendered cards are cached in process and dropped when PostgreSQL notifies a change (see
//! `card::cache`); every answer carries an `ETag`, and a matching `If-None-Match` gets a 304.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use poem::{
    IntoResponse, Request, Response,
    http::{HeaderMap, StatusCode, header},
    web::{Data, Path as RoutePath},
};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Header, Path, Query},
    payload::{Binary, Json, Payload},
    registry::{MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use tokio::sync::OnceCell;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{ApiTags, AppState, attachment, media};
use crate::{
    analytics::{Action, collector, rate_limit::RateLimiter},
    card::{
        CardProfile, CardUrls, SCAN_SOURCE,
        budget::WorkBudget,
        cache::{BoundedCache, CardCache},
        page, photo, qr, vcard,
    },
    config::PublicLimits,
    db::{
        Db, Tenant,
        notifications::{ListenEvent, Listener},
    },
    error::{ApiError, ErrorBody},
};

/// Revalidate every time (a 304 is cheap): a card must show a change at once.
const CARD_CACHE_CONTROL: &str = "public, no-cache";

fn card_cache_control() -> String {
    CARD_CACHE_CONTROL.to_owned()
}
/// A QR code depends only on the card's URL, which never changes.
fn qr_cache_control() -> String {
    "public, max-age=86400".to_owned()
}

const CARD_NOT_FOUND: &str = "Card not found";

/// Which company a slug names (SECURITY DEFINER: runs before any tenant is known).
const CARD_COMPANY: &str = "SELECT card_company($1)";

/// Under the visitor's tenant: row-level security limits this to the company of the slug, so an
/// employee slug of another company finds nothing.
const CARD: &str =
    "SELECT e.id, e.company_id, e.full_name, e.job_title, e.email, e.phone, e.whatsapp,
            e.photo_url, e.photo_hash, e.bio, e.social_links, e.public_slug,
            c.name AS company_name, c.slug AS company_slug, c.domain, c.logo_url, c.logo_hash,
            c.brand_color
     FROM employees e JOIN companies c ON c.id = e.company_id
     WHERE e.public_slug = $1";

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
    photo_hash: Option<String>,
    json: Bytes,
    json_etag: String,
    html: Bytes,
    html_etag: String,
    content_security_policy: String,
    /// vCard 3.0 and 4.0, made on first request (the photo must be fetched and downscaled).
    vcards: [OnceCell<Tagged>; 2],
}

/// A body and its entity tag.
#[derive(Clone)]
struct Tagged {
    body: Bytes,
    etag: String,
}

impl Tagged {
    fn new(body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let etag = entity_tag(&body);
        Self { body, etag }
    }
}

/// A strong entity tag from the content.
pub fn entity_tag(body: &[u8]) -> String {
    format!("\"{}\"", photo::content_hash(body))
}

/// Whether an `If-None-Match` header matches `etag` (weak comparison, as RFC 9110 asks for GET).
pub fn matches_etag(if_none_match: Option<&str>, etag: &str) -> bool {
    let Some(header) = if_none_match else {
        return false;
    };
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let ours = bare(etag);
    header
        .split(',')
        .any(|tag| tag.trim() == "*" || bare(tag) == ours)
}

/// `/media/photos/{company}/{hash}.jpg`
pub fn photo_path(company_id: Uuid, hash: &str) -> String {
    format!("/media/photos/{company_id}/{hash}.jpg")
}

/// `/media/logos/{company}/{hash}.png`
pub fn logo_path(company_id: Uuid, hash: &str) -> String {
    format!("/media/logos/{company_id}/{hash}.png")
}

impl RenderedCard {
    pub fn analytics_card(&self) -> collector::Card {
        collector::Card {
            company_id: self.profile.company_id,
            employee_id: self.profile.employee_id,
        }
    }

    fn from_row(row: &Row, base_url: &str) -> Result<Self, ApiError> {
        let get = |e| ApiError::internal(e);
        let company_id: Uuid = row.try_get("company_id").map_err(get)?;
        let photo_hash: Option<String> = row.try_get("photo_hash").map_err(get)?;
        let logo_hash: Option<String> = row.try_get("logo_hash").map_err(get)?;
        let domain: Option<String> = row.try_get("domain").map_err(get)?;
        let links: serde_json::Value = row.try_get("social_links").map_err(get)?;
        let social_links: BTreeMap<String, String> =
            serde_json::from_value(links).map_err(ApiError::internal)?;
        let profile = CardProfile {
            employee_id: row.try_get("id").map_err(get)?,
            company_id,
            company_slug: row.try_get("company_slug").map_err(get)?,
            employee_slug: row.try_get("public_slug").map_err(get)?,
            employee_name: row.try_get("full_name").map_err(get)?,
            company_name: row.try_get("company_name").map_err(get)?,
            job_title: row.try_get("job_title").map_err(get)?,
            email: row.try_get("email").map_err(get)?,
            phone: row.try_get("phone").map_err(get)?,
            whatsapp: row.try_get("whatsapp").map_err(get)?,
            bio: row.try_get("bio").map_err(get)?,
            website: domain.map(|d| format!("https://{d}")),
            social_links: social_links
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            photo_path: photo_hash.as_deref().map(|h| photo_path(company_id, h)),
            logo_path: logo_hash.as_deref().map(|h| logo_path(company_id, h)),
            brand_color: row.try_get("brand_color").map_err(get)?,
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
            photo_url: absolute(&profile.photo_path).or(row.try_get("photo_url").map_err(get)?),
            social_links,
            qr_code: urls.qr_png.clone(),
            vcard_url: urls.vcard.clone(),
            card_url: urls.page.clone(),
            company_logo: absolute(&profile.logo_path).or(row.try_get("logo_url").map_err(get)?),
            company_brand_color: profile.brand_color.clone(),
        };
        let json = serde_json::to_vec(&json.to_json()).map_err(ApiError::internal)?;
        let rendered = page::render(&profile, &urls);
        let (json, html) = (Tagged::new(json), Tagged::new(rendered.html));
        Ok(Self {
            profile,
            urls,
            photo_hash,
            json: json.body,
            json_etag: json.etag,
            html: html.body,
            html_etag: html.etag,
            content_security_policy: rendered.content_security_policy,
            vcards: [OnceCell::new(), OnceCell::new()],
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum QrFormat {
    Png,
    Svg,
}

/// The caches of the public path, shared by all requests of this instance, and the bounds on
/// what their misses may cost.
pub struct PublicCards {
    cards: CardCache<Arc<RenderedCard>>,
    /// Company slugs never change, so their ids never go stale.
    company_ids: BoundedCache<String, Uuid>,
    qr_images: BoundedCache<(String, qr::QrOptions, QrFormat), Tagged>,
    pub(super) media: BoundedCache<(Uuid, String), media::StoredMedia>,
    /// Cache misses per client address: hits are free, misses cost a query or a rendering.
    misses: RateLimiter,
    /// QR codes being rendered on the blocking pool, in total.
    qr_renders: WorkBudget,
    /// Database transactions opened by the public path (for tests and monitoring).
    lookups: AtomicU64,
    listener: Mutex<Option<Listener>>,
}

/// Client addresses whose miss budgets are tracked at once (bounded memory, see `RateLimiter`).
const TRACKED_ADDRESSES: usize = 100_000;
/// Unknown slugs remembered at once.
const MAX_UNKNOWN_SLUGS: usize = 50_000;
/// What decoding a stored photo for a vCard may take: its pixels and the downscaling.
const VCARD_PHOTO_DECODE_BYTES: u64 = 4 * (photo::PHOTO_PX as u64).pow(2) + (16 << 20);
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

    fn count_lookup(&self) {
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
            let row = state
                .db
                .read_public(async |tx| tx.query_one(CARD_COMPANY, [&company_slug]).await)
                .await?;
            let id: Option<Uuid> = row.try_get(0).map_err(ApiError::internal)?;
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
    let row = state
        .db
        .read(&Tenant::visitor(company_id), async |tx| {
            tx.query_opt(CARD, [&employee_slug]).await
        })
        .await?;
    let Some(row) = row else {
        cards
            .cards
            .remember_unknown_employee(ticket, company_id, employee_slug);
        return Err(ApiError::not_found(CARD_NOT_FOUND));
    };
    let card = Arc::new(RenderedCard::from_row(&row, &state.public_base_url)?);
    cards.cards.insert(
        ticket,
        (company_slug, employee_slug),
        (company_id, card.profile.employee_id),
        card.clone(),
    );
    Ok(card)
}

/// JSON that was serialized once, sent as is; documented as `T`.
pub struct PreRenderedJson<T>(Bytes, std::marker::PhantomData<T>);

impl<T> PreRenderedJson<T> {
    fn new(body: Bytes) -> Self {
        Self(body, std::marker::PhantomData)
    }
}

impl<T: Type + Send> Payload for PreRenderedJson<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for PreRenderedJson<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(self.0)
    }
}

#[derive(ApiResponse)]
pub enum CardJson {
    /// The card.
    #[oai(status = 200)]
    Ok(
        PreRenderedJson<PublicCard>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    /// The copy the client holds is current.
    #[oai(status = 304)]
    NotModified(
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "qr_png_bad_request")]
pub enum QrPng {
    /// The QR code as PNG.
    #[oai(status = 200, content_type = "image/png")]
    Ok(
        Binary<Bytes>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    #[oai(status = 304)]
    NotModified(
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    /// An option is invalid (`invalid_qr_options`).
    #[oai(status = 422)]
    InvalidOptions(Json<ErrorBody>),
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "qr_svg_bad_request")]
pub enum QrSvg {
    /// The QR code as SVG.
    #[oai(status = 200, content_type = "image/svg+xml")]
    Ok(
        Binary<Bytes>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    #[oai(status = 304)]
    NotModified(
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
    /// An option is invalid (`invalid_qr_options`).
    #[oai(status = 422)]
    InvalidOptions(Json<ErrorBody>),
}

#[derive(ApiResponse)]
pub enum VCardFile {
    /// The vCard, as an attachment.
    #[oai(status = 200, content_type = "text/vcard; charset=utf-8")]
    Ok(
        Binary<Bytes>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Content-Disposition")] String,
    ),
    #[oai(status = 304)]
    NotModified(
        #[oai(header = "ETag")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

/// The QR code of a card with `options`, from the cache or made now (off the async executor:
/// a large PNG takes milliseconds).
/// Each distinct set of options is a miss, charged to `payer`; renders in flight are bounded
/// in total (503 when all slots stay taken for a moment).
async fn qr_image(
    state: &AppState,
    payer: &MissPayer<'_>,
    card: &RenderedCard,
    options: qr::QrOptions,
    format: QrFormat,
) -> Result<Tagged, ApiError> {
    let key = (card.urls.scan.clone(), options, format);
    if let Some(image) = state.cards.qr_images.get(&key) {
        return Ok(image);
    }
    payer.charge(state)?;
    let admission = state.cards.qr_renders.admit(1).await.map_err(|busy| {
        ApiError::busy(
            "Too many QR codes are being made; try again shortly",
            busy.retry_after,
        )
    })?;
    let (data, opts) = (key.0.clone(), key.1.clone());
    let image = tokio::task::spawn_blocking(move || {
        let _admission = admission;
        match format {
            QrFormat::Png => Tagged::new(qr::png(&data, &opts)),
            QrFormat::Svg => Tagged::new(qr::svg(&data, &opts)),
        }
    })
    .await
    .map_err(ApiError::internal)?;
    let size = image.body.len();
    state.cards.qr_images.insert(key, image.clone(), size);
    Ok(image)
}

/// Error correction level of a QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum QrEcc {
    /// About 7 % of the code may be damaged.
    L,
    /// About 15 %.
    M,
    /// About 25 %.
    Q,
    /// About 30 %.
    H,
}

/// The options of a QR code request. Each one alone is checked by its parameter's schema; what
/// only the whole can tell (the colors' contrast) is checked here.
fn qr_options(
    size: Option<u32>,
    ecc: Option<QrEcc>,
    fg: Option<String>,
    bg: Option<String>,
    margin: Option<u32>,
) -> Result<qr::QrOptions, ApiError> {
    let ecc = ecc.map(|ecc| format!("{ecc:?}"));
    qr::QrOptions::parse(
        size.map(|size| size.to_string()).as_deref(),
        ecc.as_deref(),
        fg.as_deref(),
        bg.as_deref(),
        margin.map(|margin| margin.to_string()).as_deref(),
    )
    .map_err(|detail| ApiError::unprocessable("invalid_qr_options", detail))
}

/// A QR option its schema refuses answers like one [`qr_options`] refuses.
fn invalid_qr_option(err: poem::Error) -> Json<ErrorBody> {
    let ApiError::Default(_, Json(mut body), _) = ApiError::from_request_error(err);
    body.code = "invalid_qr_options".to_owned();
    Json(body)
}

fn qr_png_bad_request(err: poem::Error) -> QrPng {
    QrPng::InvalidOptions(invalid_qr_option(err))
}

fn qr_svg_bad_request(err: poem::Error) -> QrSvg {
    QrSvg::InvalidOptions(invalid_qr_option(err))
}

/// `version` of a vCard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum VCardVersion {
    #[oai(rename = "3.0")]
    V3,
    #[oai(rename = "4.0")]
    V4,
    /// The same as `3.0`.
    #[oai(rename = "3")]
    V3Short,
    /// The same as `4.0`.
    #[oai(rename = "4")]
    V4Short,
}

/// The vCard of a card (`0`: 3.0, `1`: 4.0), with the photo embedded, made once per card.
async fn vcard_of(
    state: &AppState,
    payer: &MissPayer<'_>,
    card: &RenderedCard,
    v4: bool,
) -> Result<Tagged, ApiError> {
    let cell = &card.vcards[usize::from(v4)];
    let tagged = cell
        .get_or_try_init(|| async {
            payer.charge(state)?;
            let photo = match &card.photo_hash {
                Some(hash) => vcard_photo(state, card.profile.company_id, hash).await?,
                None => None,
            };
            let text = if v4 {
                vcard::v4(&card.profile, &card.urls, photo.as_deref())
            } else {
                vcard::v3(&card.profile, &card.urls, photo.as_deref())
            };
            Ok::<_, ApiError>(Tagged::new(text))
        })
        .await?;
    Ok(tagged.clone())
}

/// The stored photo, downscaled for a vCard. A photo that cannot be read is left out (and
/// logged) rather than failing the whole contact.
async fn vcard_photo(
    state: &AppState,
    company_id: Uuid,
    hash: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(stored) = media::load(state, &MissPayer::nobody(), company_id, hash).await? else {
        return Ok(None);
    };
    // A stored photo is small (at most `PHOTO_PX` square), but its decode shares the budget.
    let admission = state
        .image_decodes
        .admit(media::decode_units(VCARD_PHOTO_DECODE_BYTES))
        .await
        .map_err(|busy| {
            ApiError::busy(
                "Too many images are being processed; try again shortly",
                busy.retry_after,
            )
        })?;
    let thumbnail = tokio::task::spawn_blocking(move || {
        let _admission = admission;
        photo::vcard_thumbnail(&stored.bytes)
    })
    .await
    .map_err(ApiError::internal)?;
    match thumbnail {
        Ok(jpeg) => Ok(Some(jpeg)),
        Err(e) => {
            tracing::warn!(%company_id, hash, error = %e, "stored photo unusable for a vCard");
            Ok(None)
        }
    }
}

pub struct CardsApi;

#[OpenApi(tag = "ApiTags::Cards")]
impl CardsApi {
    /// A public card
    ///
    /// No authentication. Answers 304 to an `If-None-Match` holding the current `ETag`.
    #[oai(path = "/card/:company_slug/:employee_slug", method = "get")]
    async fn card(
        &self,
        state: Data<&AppState>,
        company_slug: Path<String>,
        employee_slug: Path<String>,
        req: &Request,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<CardJson, ApiError> {
        let payer = MissPayer::client(req);
        let card = load_card(&state, &company_slug, &employee_slug, &payer).await?;
        if matches_etag(if_none_match.as_deref(), &card.json_etag) {
            return Ok(CardJson::NotModified(
                card.json_etag.clone(),
                card_cache_control(),
            ));
        }
        Ok(CardJson::Ok(
            PreRenderedJson::new(card.json.clone()),
            card.json_etag.clone(),
            card_cache_control(),
        ))
    }

    /// The QR code of a card, as PNG
    ///
    /// Encodes the card page's URL with `?src=qr`, so scans can be told from shared links.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/card/:company_slug/:employee_slug/qr.png", method = "get")]
    async fn qr_png(
        &self,
        state: Data<&AppState>,
        company_slug: Path<String>,
        employee_slug: Path<String>,
        /// Width and height in pixels, 64 to 2048 (default 512).
        #[oai(validator(minimum(value = "64"), maximum(value = "2048")))]
        size: Query<Option<u32>>,
        /// Error correction: L, M (default), Q or H.
        ecc: Query<Option<QrEcc>>,
        /// Dark color, `rgb`, `rrggbb`, `#rgb` or `#rrggbb` (default black). Must be darker
        /// than `bg`, with a contrast ratio of at least 3:1.
        #[oai(validator(pattern = r"^#?([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"))]
        fg: Query<Option<String>>,
        /// Light color (default white).
        #[oai(validator(pattern = r"^#?([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"))]
        bg: Query<Option<String>>,
        /// Quiet zone in modules, 4 to 16 (default 4).
        #[oai(validator(minimum(value = "4"), maximum(value = "16")))]
        margin: Query<Option<u32>>,
        req: &Request,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<QrPng, ApiError> {
        let options = qr_options(size.0, ecc.0, fg.0, bg.0, margin.0)?;
        let payer = MissPayer::client(req);
        let card = load_card(&state, &company_slug, &employee_slug, &payer).await?;
        let image = qr_image(&state, &payer, &card, options, QrFormat::Png).await?;
        if matches_etag(if_none_match.as_deref(), &image.etag) {
            return Ok(QrPng::NotModified(image.etag, qr_cache_control()));
        }
        Ok(QrPng::Ok(
            Binary(image.body),
            image.etag,
            qr_cache_control(),
        ))
    }

    /// The QR code of a card, as SVG
    ///
    /// The same code and options as the PNG; `size` sets the SVG's width and height.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/card/:company_slug/:employee_slug/qr.svg", method = "get")]
    async fn qr_svg(
        &self,
        state: Data<&AppState>,
        company_slug: Path<String>,
        employee_slug: Path<String>,
        /// Width and height in pixels, 64 to 2048 (default 512).
        #[oai(validator(minimum(value = "64"), maximum(value = "2048")))]
        size: Query<Option<u32>>,
        /// Error correction: L, M (default), Q or H.
        ecc: Query<Option<QrEcc>>,
        /// Dark color, `rgb`, `rrggbb`, `#rgb` or `#rrggbb` (default black).
        #[oai(validator(pattern = r"^#?([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"))]
        fg: Query<Option<String>>,
        /// Light color (default white).
        #[oai(validator(pattern = r"^#?([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"))]
        bg: Query<Option<String>>,
        /// Quiet zone in modules, 4 to 16 (default 4).
        #[oai(validator(minimum(value = "4"), maximum(value = "16")))]
        margin: Query<Option<u32>>,
        req: &Request,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<QrSvg, ApiError> {
        let options = qr_options(size.0, ecc.0, fg.0, bg.0, margin.0)?;
        let payer = MissPayer::client(req);
        let card = load_card(&state, &company_slug, &employee_slug, &payer).await?;
        let image = qr_image(&state, &payer, &card, options, QrFormat::Svg).await?;
        if matches_etag(if_none_match.as_deref(), &image.etag) {
            return Ok(QrSvg::NotModified(image.etag, qr_cache_control()));
        }
        Ok(QrSvg::Ok(
            Binary(image.body),
            image.etag,
            qr_cache_control(),
        ))
    }

    /// The card as a vCard ("save contact")
    ///
    /// vCard 3.0 by default, which phones import most reliably; `version=4.0` for RFC 6350.
    /// The photo is embedded.
    #[oai(path = "/card/:company_slug/:employee_slug/vcard", method = "get")]
    async fn vcard(
        &self,
        state: Data<&AppState>,
        company_slug: Path<String>,
        employee_slug: Path<String>,
        /// `3.0` (default) or `4.0`.
        version: Query<Option<VCardVersion>>,
        req: &Request,
        #[oai(name = "If-None-Match")] if_none_match: Header<Option<String>>,
    ) -> Result<VCardFile, ApiError> {
        let v4 = matches!(version.0, Some(VCardVersion::V4 | VCardVersion::V4Short));
        let payer = MissPayer::client(req);
        let card = load_card(&state, &company_slug, &employee_slug, &payer).await?;
        let file = vcard_of(&state, &payer, &card, v4).await?;
        state
            .analytics
            .record_served(req, &card.analytics_card(), Action::DownloadVcard);
        if matches_etag(if_none_match.as_deref(), &file.etag) {
            return Ok(VCardFile::NotModified(file.etag, card_cache_control()));
        }
        Ok(VCardFile::Ok(
            Binary(file.body),
            file.etag,
            card_cache_control(),
            attachment::content_disposition(
                &vcard::file_name(&card.profile.employee_name),
                &vcard::file_name_utf8(&card.profile.employee_name),
            ),
        ))
    }
}

/// `GET /card/{company_slug}/{employee_slug}`: the card page, rendered on the server.
#[poem::handler]
pub async fn card_page(
    state: Data<&AppState>,
    RoutePath((company_slug, employee_slug)): RoutePath<(String, String)>,
    req: &Request,
) -> Response {
    let card = match load_card(
        &state,
        &company_slug,
        &employee_slug,
        &MissPayer::client(req),
    )
    .await
    {
        Ok(card) => card,
        Err(e) if e.status() == StatusCode::NOT_FOUND && wants_html(req.headers()) => {
            return not_found_page();
        }
        Err(e) => return e.into_response(),
    };
    // Counted on the server, so numbers do not depend on JavaScript; a revalidated page (304)
    // is a view too. A scan is the QR code's URL, marked `?src=qr`.
    let scanned = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.strip_prefix("src=") == Some(SCAN_SOURCE))
    });
    state.analytics.record_served(
        req,
        &card.analytics_card(),
        if scanned {
            Action::ScanQr
        } else {
            Action::View
        },
    );
    let if_none_match = req.header(header::IF_NONE_MATCH);
    let builder = Response::builder()
        .header(header::ETAG, card.html_etag.as_str())
        .header(header::CACHE_CONTROL, CARD_CACHE_CONTROL);
    if matches_etag(if_none_match, &card.html_etag) {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    security_headers(builder)
        .header(
            "Content-Security-Policy",
            card.content_security_policy.as_str(),
        )
        .content_type("text/html; charset=utf-8")
        .body(card.html.clone())
}

fn security_headers(builder: poem::ResponseBuilder) -> poem::ResponseBuilder {
    builder
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "strict-origin-when-cross-origin")
        .header("X-Frame-Options", "DENY")
}

/// A browser (not an API client) asked for the page.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// A person who opened a dead link gets a page, not JSON.
fn not_found_page() -> Response {
    let page = page::render_not_found();
    security_headers(Response::builder())
        .status(StatusCode::NOT_FOUND)
        .header(
            "Content-Security-Policy",
            page.content_security_policy.as_str(),
        )
        .content_type("text/html; charset=utf-8")
        .body(page.html.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching() {
        let tag = entity_tag(b"hello");
        assert!(matches_etag(Some(&tag), &tag));
        assert!(matches_etag(Some(&format!("W/{tag}")), &tag));
        assert!(matches_etag(Some(&format!("\"other\", {tag}")), &tag));
        assert!(matches_etag(Some("*"), &tag));
        assert!(!matches_etag(Some("\"other\""), &tag));
        assert!(!matches_etag(None, &tag));
    }

    #[test]
    fn implausible_slugs_are_refused_without_a_query() {
        assert!(plausible_slug("jane-smith-1a2b3c"));
        assert!(!plausible_slug(""));
        assert!(!plausible_slug("Jane"));
        assert!(!plausible_slug("a/b"));
        assert!(!plausible_slug(&"a".repeat(101)));
    }
}
