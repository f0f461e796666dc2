//! The public card, the product's hot path: its JSON, its HTML page, its QR code and its vCard.
//! No authentication. The company slug goes through the `card_company` SECURITY DEFINER lookup;
//! everything else is read under the tenant wall as a visitor of that one company.
//!
//! Rendered cards are cached in process (see [`public_cards`](super::public_cards)); every
//! answer carries an `ETag`, and a matching `If-None-Match` gets a 304.

use bytes::Bytes;
use poem::{
    IntoResponse, Request, Response,
    http::{StatusCode, header},
    web::{Data, Path as RoutePath},
};
use poem_openapi::{
    ApiResponse, Enum, OpenApi,
    param::{Header, Path, Query},
    payload::{Binary, Json},
};
use uuid::Uuid;

use super::{
    ApiTags, AppState, attachment,
    http::{PreRenderedJson, Tagged, matches_etag, security_headers, wants_html},
    public_cards::{QrFormat, RenderedCard},
    upload,
};
use crate::{
    analytics::Action,
    card::{SCAN_SOURCE, photo, qr, vcard},
    error::{ApiError, ErrorBody},
};

// Where the service's set-up, the tracking endpoint and the tests find them.
pub use super::public_cards::{MissPayer, PublicCard, PublicCards, load_card};

/// Revalidate every time (a 304 is cheap): a card must show a change at once.
const CARD_CACHE_CONTROL: &str = "public, no-cache";

fn card_cache_control() -> String {
    CARD_CACHE_CONTROL.to_owned()
}
/// A QR code depends only on the card's URL, which never changes.
fn qr_cache_control() -> String {
    "public, max-age=86400".to_owned()
}

/// What decoding a stored photo for a vCard may take: its pixels and the downscaling.
const VCARD_PHOTO_DECODE_BYTES: u64 = 4 * (photo::PHOTO_PX as u64).pow(2) + (16 << 20);

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
pub(super) async fn vcard_of(
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
    let Some(stored) =
        super::public_cards::load_media(state, &MissPayer::nobody(), company_id, hash).await?
    else {
        return Ok(None);
    };
    // A stored photo is small (at most `PHOTO_PX` square), but its decode shares the budget.
    let admission = upload::admit_decode(state, VCARD_PHOTO_DECODE_BYTES).await?;
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

/// A QR code answer, in whichever format was asked for.
enum QrAnswer {
    Image(Tagged),
    NotModified(String),
}

/// The one path of both QR endpoints: the options checked, the card found, the image made or
/// taken from the cache, and the client's copy compared.
#[allow(clippy::too_many_arguments)]
async fn qr_answer(
    state: &AppState,
    (company_slug, employee_slug): (&str, &str),
    (size, ecc, fg, bg, margin): QrParams,
    format: QrFormat,
    req: &Request,
    if_none_match: Option<&str>,
) -> Result<QrAnswer, ApiError> {
    let options = qr_options(size, ecc, fg, bg, margin)?;
    let payer = MissPayer::client(req);
    let card = load_card(state, company_slug, employee_slug, &payer).await?;
    let image = qr_image(state, &payer, &card, options, format).await?;
    if matches_etag(if_none_match, &image.etag) {
        return Ok(QrAnswer::NotModified(image.etag));
    }
    Ok(QrAnswer::Image(image))
}

/// `size`, `ecc`, `fg`, `bg`, `margin`.
type QrParams = (
    Option<u32>,
    Option<QrEcc>,
    Option<String>,
    Option<String>,
    Option<u32>,
);

pub struct CardsApi;

#[OpenApi(tag = "ApiTags::Cards")]
impl CardsApi {
    /// A public card
    ///
    /// No authentication. Answers 304 to an `If-None-Match` holding the current `ETag`.
    #[oai(
        path = "/card/:company_slug/:employee_slug",
        method = "get",
        operation_id = "getCard"
    )]
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
    #[oai(
        path = "/card/:company_slug/:employee_slug/qr.png",
        method = "get",
        operation_id = "getCardQrPng"
    )]
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
        let params = (size.0, ecc.0, fg.0, bg.0, margin.0);
        let slugs = (company_slug.as_str(), employee_slug.as_str());
        let inm = if_none_match.as_deref();
        Ok(
            match qr_answer(&state, slugs, params, QrFormat::Png, req, inm).await? {
                QrAnswer::NotModified(etag) => QrPng::NotModified(etag, qr_cache_control()),
                QrAnswer::Image(image) => {
                    QrPng::Ok(Binary(image.body), image.etag, qr_cache_control())
                }
            },
        )
    }

    /// The QR code of a card, as SVG
    ///
    /// The same code and options as the PNG; `size` sets the SVG's width and height.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/card/:company_slug/:employee_slug/qr.svg",
        method = "get",
        operation_id = "getCardQrSvg"
    )]
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
        let params = (size.0, ecc.0, fg.0, bg.0, margin.0);
        let slugs = (company_slug.as_str(), employee_slug.as_str());
        let inm = if_none_match.as_deref();
        Ok(
            match qr_answer(&state, slugs, params, QrFormat::Svg, req, inm).await? {
                QrAnswer::NotModified(etag) => QrSvg::NotModified(etag, qr_cache_control()),
                QrAnswer::Image(image) => {
                    QrSvg::Ok(Binary(image.body), image.etag, qr_cache_control())
                }
            },
        )
    }

    /// The card as a vCard ("save contact")
    ///
    /// vCard 3.0 by default, which phones import most reliably; `version=4.0` for RFC 6350.
    /// The photo is embedded.
    #[oai(
        path = "/card/:company_slug/:employee_slug/vcard",
        method = "get",
        operation_id = "getCardVcard"
    )]
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
    let now = chrono::Utc::now().timestamp();
    let etag = card.page_etag(now);
    let builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        .header(header::CACHE_CONTROL, CARD_CACHE_CONTROL);
    if matches_etag(if_none_match, &etag) {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    security_headers(builder)
        .header(
            "Content-Security-Policy",
            card.content_security_policy.as_str(),
        )
        .content_type("text/html; charset=utf-8")
        .body(card.page_body(|| {
            let profile = &card.profile;
            (state.leads).form_token(profile.company_id, profile.employee_id, now)
        }))
}

/// A person who opened a dead link gets a page, not JSON.
fn not_found_page() -> Response {
    service_page(StatusCode::NOT_FOUND, crate::card::page::render_not_found())
}

/// A page of the service's own, with its content security policy.
fn service_page(status: StatusCode, page: &'static crate::card::page::RenderedPage) -> Response {
    security_headers(Response::builder())
        .status(status)
        .header(
            "Content-Security-Policy",
            page.content_security_policy.as_str(),
        )
        .content_type("text/html; charset=utf-8")
        .body(page.html.as_str())
}
