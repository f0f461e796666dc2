//! Image uploads (employee photos, company logos), as HTTP receives them: the raw body or a
//! form's `file` field, bounded in size, decoded off the executor within the decode budget. The
//! service never fetches an image from a URL a user gave.

use poem::http::StatusCode;
use poem_openapi::{ApiRequest, Multipart, payload::Binary, types::multipart::Upload};

use super::AppState;
use crate::{
    card::photo::{self, ImageError, MAX_UPLOAD_BYTES, StoredImage},
    error::ApiError,
};

/// The largest request body of an upload route: the image plus room for a multipart envelope.
pub const MAX_UPLOAD_REQUEST_BYTES: usize = MAX_UPLOAD_BYTES + 64 * 1024;

/// Whether a request goes to an upload route (which gets a larger body limit).
pub fn is_upload_route(method: &poem::http::Method, path: &str) -> bool {
    method == poem::http::Method::PUT
        && (path.starts_with("/api/employees/") && path.ends_with("/photo")
            || path.starts_with("/api/company/") && path.ends_with("/logo"))
        // The console's upload forms.
        || method == poem::http::Method::POST
            && (path.starts_with("/app/people/") && path.ends_with("/photo")
                || path == "/app/branding/logo"
                || path == "/app/me/photo")
}

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
    // Optional to the form parser only, so that a form without it is answered like any other
    // invalid field (422), not as an unreadable request.
    /// The image. Required: a form without it is refused (422, `invalid_upload`).
    file: Option<Upload>,
}

impl ImageUpload {
    pub async fn into_bytes(self) -> Result<Vec<u8>, ApiError> {
        let bytes = match self {
            ImageUpload::Raw(body) => body.0,
            ImageUpload::Form(ImageForm { file: None }) => {
                return Err(ApiError::unprocessable(
                    "invalid_upload",
                    "The form has no `file` field: send the image in it",
                ));
            }
            ImageUpload::Form(ImageForm { file: Some(file) }) => {
                file.into_vec().await.map_err(|e| {
                    ApiError::unprocessable(
                        "invalid_upload",
                        format!("Could not read the file: {e}"),
                    )
                })?
            }
        };
        check_size(bytes)
    }
}

/// The bytes of an upload, refused (413) when larger than an image may be.
pub fn check_size(bytes: Vec<u8>) -> Result<Vec<u8>, ApiError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(image_error(ImageError::TooLarge));
    }
    Ok(bytes)
}

/// No upload: what `change_photo`/`change_logo` take to remove the image.
pub const NO_UPLOAD: Option<std::future::Ready<Result<Vec<u8>, ApiError>>> = None;

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
pub async fn normalize(
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
    let admission = admit_decode(state, cost).await?;
    tokio::task::spawn_blocking(move || {
        let _admission = admission;
        normalize(&upload)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(image_error)
}

/// A place in the image decode budget for `bytes` of work, or 503 when it stays full.
pub async fn admit_decode(
    state: &AppState,
    bytes: u64,
) -> Result<crate::card::budget::Admission, ApiError> {
    state
        .image_decodes
        .admit(decode_units(bytes))
        .await
        .map_err(|busy| {
            ApiError::busy(
                "Too many images are being processed; try again shortly",
                busy.retry_after,
            )
        })
}

/// The decode budget counts KiB, so a `u32` of units covers terabytes.
pub const DECODE_UNIT_BYTES: u64 = 1024;

pub fn decode_units(bytes: u64) -> u64 {
    bytes.div_ceil(DECODE_UNIT_BYTES)
}
