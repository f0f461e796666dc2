//! Employee photos and company logos: uploaded here, validated by decoding, stored normalized
//! in the database under a hash of their content, and served under that hash with caching
//! forever. The service never fetches an image from a URL a user gave.

use bytes::Bytes;
use poem::{
    Request, Response,
    http::{StatusCode, header},
    web::{Data, Path as RoutePath},
};
use poem_openapi::{
    ApiRequest, Multipart, OpenApi,
    param::Path,
    payload::{Binary, Json},
    types::multipart::Upload,
};
use uuid::Uuid;

use super::{
    ApiTags, AppState, NoContent,
    cards::{MissPayer, matches_etag},
    companies::{Company, GET_COMPANY, GET_COMPANY_FOR_UPDATE},
    employees::{Employee, GET_EMPLOYEE, employee_tenant, lock_editable},
};
use crate::{
    auth::{BearerAuth, Caller},
    card::photo::{self, ImageError, MAX_UPLOAD_BYTES, StoredImage},
    db::Tenant,
    error::ApiError,
};

/// A stored image, as served.
#[derive(Clone)]
pub struct StoredMedia {
    pub content_type: String,
    pub bytes: Bytes,
}

/// The largest request body of an upload route: the image plus room for a multipart envelope.
pub const MAX_UPLOAD_REQUEST_BYTES: usize = MAX_UPLOAD_BYTES + 64 * 1024;

/// Whether a request goes to an upload route (which gets a larger body limit).
pub fn is_upload_route(method: &poem::http::Method, path: &str) -> bool {
    method == poem::http::Method::PUT
        && (path.starts_with("/api/employees/") && path.ends_with("/photo")
            || path.starts_with("/api/company/") && path.ends_with("/logo"))
}

const INSERT_MEDIA: &str = "INSERT INTO media (company_id, hash, content_type, bytes)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (company_id, hash) DO NOTHING";

/// An image nothing refers to any more (a replaced photo or logo) goes; a shared one stays.
const DELETE_UNUSED_MEDIA: &str = "DELETE FROM media m
     WHERE m.hash = $1
       AND NOT EXISTS (SELECT 1 FROM employees e WHERE e.company_id = m.company_id AND e.photo_hash = m.hash)
       AND NOT EXISTS (SELECT 1 FROM companies c WHERE c.id = m.company_id AND c.logo_hash = m.hash)";

const SET_PHOTO: &str = "UPDATE employees SET photo_hash = $2 WHERE id = $1";
const SET_LOGO: &str = "UPDATE companies SET logo_hash = $2 WHERE id = $1";

const MEDIA: &str = "SELECT content_type, bytes FROM media WHERE hash = $1";

/// An image upload: the file itself, or a form carrying it.
#[derive(ApiRequest)]
pub enum ImageUpload {
    /// A form with the image in its `file` field.
    Form(ImageForm),
    /// The image itself: JPEG, PNG or WebP, up to 5 MB. It is recognized by its content, not by
    /// the content type sent with it.
    Raw(Binary<Vec<u8>>),
}

#[derive(Multipart)]
pub struct ImageForm {
    file: Upload,
}

impl ImageUpload {
    async fn into_bytes(self) -> Result<Vec<u8>, ApiError> {
        let bytes = match self {
            ImageUpload::Raw(body) => body.0,
            ImageUpload::Form(form) => form.file.into_vec().await.map_err(|e| {
                ApiError::unprocessable("invalid_upload", format!("Could not read the file: {e}"))
            })?,
        };
        if bytes.len() > MAX_UPLOAD_BYTES {
            return Err(image_error(ImageError::TooLarge));
        }
        Ok(bytes)
    }
}

fn image_error(e: ImageError) -> ApiError {
    let status = if e == ImageError::TooLarge {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// Decodes and normalizes an upload off the async executor, within the decode budget: the
/// header is read first, and the decode starts only once its estimated memory is free.
async fn normalize(
    state: &AppState,
    upload: Vec<u8>,
    normalize: fn(&[u8]) -> Result<StoredImage, ImageError>,
) -> Result<StoredImage, ApiError> {
    let (upload, header) = tokio::task::spawn_blocking(move || {
        let header = photo::probe(&upload);
        (upload, header)
    })
    .await
    .map_err(ApiError::internal)?;
    let cost = header.map_err(image_error)?.decode_cost();
    let admission = state
        .image_decodes
        .admit(decode_units(cost))
        .await
        .map_err(|busy| {
            ApiError::busy(
                "Too many images are being processed; try again shortly",
                busy.retry_after,
            )
        })?;
    tokio::task::spawn_blocking(move || {
        let _admission = admission;
        normalize(&upload)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(image_error)
}

/// The decode budget counts KiB, so a `u32` of units covers terabytes.
pub const DECODE_UNIT_BYTES: u64 = 1024;

pub fn decode_units(bytes: u64) -> u64 {
    bytes.div_ceil(DECODE_UNIT_BYTES)
}

/// A stored image, from the cache or the database (as a visitor of its company: images are
/// public, and the hash in the URL is what makes them unguessable).
pub async fn load(
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
    let row = state
        .db
        .read(&Tenant::visitor(company_id), async |tx| {
            tx.query_opt(MEDIA, [&hash]).await
        })
        .await?;
    let Some(row) = row else { return Ok(None) };
    let media = StoredMedia {
        content_type: row.try_get("content_type").map_err(ApiError::internal)?,
        bytes: Bytes::from(
            row.try_get::<_, Vec<u8>>("bytes")
                .map_err(ApiError::internal)?,
        ),
    };
    let size = media.bytes.len();
    state.cards.media.insert(key, media.clone(), size);
    Ok(Some(media))
}

/// An employee may change the photo of the employee record its login is linked to; admins
/// and superadmins any of the company's. Checked before the costly decode (and again under the
/// row lock when storing), so nobody makes the server decode an image for nothing.
async fn check_may_edit(
    state: &AppState,
    caller: &Caller,
    tenant: &Tenant,
    employee_id: Uuid,
) -> Result<(), ApiError> {
    let user_id = caller.user_id();
    let row = state
        .db
        .read(tenant, async |tx| {
            tx.query_opt(EMPLOYEE_LINKED_TO_CALLER, [&employee_id, &user_id])
                .await
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Employee not found"))?;
    let linked: bool = row.try_get(0).map_err(ApiError::internal)?;
    if linked || caller.require_admin().is_ok() {
        Ok(())
    } else {
        Err(ApiError::forbidden("You can only edit your own card"))
    }
}

/// The link check of [`lock_editable`], without the lock.
const EMPLOYEE_LINKED_TO_CALLER: &str = "SELECT EXISTS (SELECT 1 FROM users u
         WHERE u.company_id = e.company_id AND u.id = $2 AND u.employee_id = e.id AND u.is_active)
     FROM employees e WHERE e.id = $1";

pub struct MediaApi;

#[OpenApi(tag = "ApiTags::Employees")]
impl MediaApi {
    /// Upload an employee's photo
    ///
    /// Admins of the company, superadmins, and the employee linked to this record. A JPEG, PNG
    /// or WebP image up to 5 MB, as the request body or as the `file` field of a form. It is
    /// decoded, turned upright, cropped to a square, stripped of all metadata and stored as a
    /// 512 px JPEG; `photo_url` then points to it.
    #[oai(path = "/employees/:employee_id/photo", method = "put")]
    async fn put_photo(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
        body: ImageUpload,
    ) -> Result<Json<Employee>, ApiError> {
        let caller = auth.0;
        let tenant = employee_tenant(&state, &caller, employee_id.0).await?;
        check_may_edit(&state, &caller, &tenant, employee_id.0).await?;
        let image = normalize(&state, body.into_bytes().await?, photo::normalize_photo).await?;
        let (is_admin, user_id) = (caller.require_admin().is_ok(), caller.user_id());
        let row = state
            .db
            .write(&tenant, async |tx| {
                let row = lock_editable(&tx, employee_id.0, user_id, is_admin).await?;
                let old: Option<String> = row.try_get("photo_hash").map_err(ApiError::internal)?;
                tx.execute(
                    INSERT_MEDIA,
                    [
                        &tenant.company_id,
                        &image.hash,
                        &image.content_type,
                        &image.bytes,
                    ],
                )
                .await?;
                tx.execute(SET_PHOTO, [&employee_id.0, &image.hash]).await?;
                if let Some(old) = old.filter(|old| *old != image.hash) {
                    tx.execute(DELETE_UNUSED_MEDIA, [&old]).await?;
                }
                Ok::<_, ApiError>(tx.query_one(GET_EMPLOYEE, [&employee_id.0]).await?)
            })
            .await?;
        state
            .cards
            .forget_employee(tenant.company_id, employee_id.0);
        Ok(Json(Employee::from_row(&row, &state.public_base_url)?))
    }

    /// Remove an employee's photo
    ///
    /// Who may upload it may remove it. The photo URL set on the employee, if any, shows again.
    #[oai(path = "/employees/:employee_id/photo", method = "delete")]
    async fn delete_photo(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let caller = auth.0;
        let tenant = employee_tenant(&state, &caller, employee_id.0).await?;
        let (is_admin, user_id) = (caller.require_admin().is_ok(), caller.user_id());
        state
            .db
            .write(&tenant, async |tx| {
                let row = lock_editable(&tx, employee_id.0, user_id, is_admin).await?;
                let old: Option<String> = row.try_get("photo_hash").map_err(ApiError::internal)?;
                if let Some(old) = old {
                    tx.execute(SET_PHOTO, [&employee_id.0, &None::<String>])
                        .await?;
                    tx.execute(DELETE_UNUSED_MEDIA, [&old]).await?;
                }
                Ok::<_, ApiError>(())
            })
            .await?;
        state
            .cards
            .forget_employee(tenant.company_id, employee_id.0);
        Ok(NoContent::NoContent)
    }

    /// Upload the company's logo
    ///
    /// Admins of the company and superadmins. A JPEG, PNG or WebP image up to 5 MB, as the
    /// request body or as the `file` field of a form. It is decoded, stripped of all metadata,
    /// scaled to fit 512 px (keeping its proportions and transparency) and stored as PNG;
    /// `logo_url` then points to it.
    #[oai(path = "/company/:company_id/logo", method = "put")]
    async fn put_logo(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: ImageUpload,
    ) -> Result<Json<Company>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let image = normalize(&state, body.into_bytes().await?, photo::normalize_logo).await?;
        let row = state
            .db
            .write(&tenant, async |tx| {
                let row = tx
                    .query_opt(GET_COMPANY_FOR_UPDATE, [&company_id.0])
                    .await?
                    .ok_or_else(|| ApiError::not_found("Company not found"))?;
                let old: Option<String> = row.try_get("logo_hash").map_err(ApiError::internal)?;
                tx.execute(
                    INSERT_MEDIA,
                    [
                        &company_id.0,
                        &image.hash,
                        &image.content_type,
                        &image.bytes,
                    ],
                )
                .await?;
                tx.execute(SET_LOGO, [&company_id.0, &image.hash]).await?;
                if let Some(old) = old.filter(|old| *old != image.hash) {
                    tx.execute(DELETE_UNUSED_MEDIA, [&old]).await?;
                }
                Ok::<_, ApiError>(tx.query_one(GET_COMPANY, [&company_id.0]).await?)
            })
            .await?;
        state.cards.forget_company(company_id.0);
        Ok(Json(Company::from_row(&row, &state.public_base_url)?))
    }

    /// Remove the company's logo
    #[oai(path = "/company/:company_id/logo", method = "delete")]
    async fn delete_logo(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        state
            .db
            .write(&tenant, async |tx| {
                let row = tx
                    .query_opt(GET_COMPANY_FOR_UPDATE, [&company_id.0])
                    .await?
                    .ok_or_else(|| ApiError::not_found("Company not found"))?;
                let old: Option<String> = row.try_get("logo_hash").map_err(ApiError::internal)?;
                if let Some(old) = old {
                    tx.execute(SET_LOGO, [&company_id.0, &None::<String>])
                        .await?;
                    tx.execute(DELETE_UNUSED_MEDIA, [&old]).await?;
                }
                Ok::<_, ApiError>(())
            })
            .await?;
        state.cards.forget_company(company_id.0);
        Ok(NoContent::NoContent)
    }
}

/// `GET /media/{photos|logos}/{company_id}/{hash}.{jpg|png}`: an uploaded image. Its URL
/// changes with its content, so it may be cached forever.
#[poem::handler]
pub async fn serve(
    state: Data<&AppState>,
    RoutePath((kind, company_id, file)): RoutePath<(String, String, String)>,
    req: &Request,
) -> Response {
    let not_found = || poem::IntoResponse::into_response(ApiError::not_found("Image not found"));
    let content_type = match kind.as_str() {
        "photos" => "image/jpeg",
        "logos" => "image/png",
        _ => return not_found(),
    };
    let extension = if kind == "photos" { ".jpg" } else { ".png" };
    let (Ok(company_id), Some(hash)) = (Uuid::parse_str(&company_id), file.strip_suffix(extension))
    else {
        return not_found();
    };
    if hash.len() != 32
        || !hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return not_found();
    }
    let media = match load(&state, &MissPayer::client(req), company_id, hash).await {
        Ok(Some(media)) if media.content_type == content_type => media,
        Ok(_) => return not_found(),
        Err(e) => return poem::IntoResponse::into_response(e),
    };
    let etag = format!("\"{hash}\"");
    let builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    if matches_etag(req.header(header::IF_NONE_MATCH), &etag) {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    builder
        .header("X-Content-Type-Options", "nosniff")
        .header("Content-Security-Policy", "default-src 'none'")
        .content_type(content_type)
        .body(media.bytes)
}
