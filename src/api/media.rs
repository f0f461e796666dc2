//! Uploaded images (employee photos, company logos), served under the hash of their content
//! with caching forever. Uploading them is part of the employee and company endpoints.

use poem::{
    Request, Response,
    http::{StatusCode, header},
    web::{Data, Path as RoutePath},
};
use uuid::Uuid;

use super::{
    AppState,
    http::matches_etag,
    public_cards::{MissPayer, load_media},
};
use crate::error::ApiError;

// Where the service's set-up finds them.
pub use super::upload::{MAX_UPLOAD_REQUEST_BYTES, decode_units, is_upload_route};

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
    let media = match load_media(&state, &MissPayer::client(req), company_id, hash).await {
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
