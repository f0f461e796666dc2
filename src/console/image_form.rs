//! The console's upload forms (an employee's photo, the company's logo; the import's file is
//! read the same way): a multipart form with the CSRF token and a `file` field, read here; an
//! image itself is checked, decoded and stored by the same flow as the API's uploads.

use maud::{Markup, html};
use poem::{
    Request,
    http::StatusCode,
    web::{Field as MultipartField, Multipart},
};

use super::{
    csrf::{self, CsrfToken},
    error::ConsoleError,
    form::{self, FieldErrors},
};
use crate::error::ApiError;

/// The name of the form's file field, as the API's upload form names it too.
pub const FILE_FIELD: &str = "file";

/// The file of an upload form's `file` field: its name as the browser gave it, and its bytes.
pub struct UploadedFile {
    pub name: Option<String>,
    pub bytes: Vec<u8>,
}

/// The file of an upload form (an image's, or the import's CSV file), after its CSRF token was
/// checked; `None` when no file was chosen.
///
/// The whole body is read first (the token may come after the file; the body limit of upload
/// routes bounds it), then the token is checked before the file is looked at.
pub async fn read_file(
    req: &Request,
    mut multipart: Multipart,
) -> Result<Option<UploadedFile>, ConsoleError> {
    let mut token: Option<String> = None;
    let mut file: Option<UploadedFile> = None;
    let unreadable = |e: poem::error::ParseMultipartError| ConsoleError::BadForm(e.to_string());
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some(csrf::FIELD) => token = Some(field.text().await.map_err(unreadable)?),
            Some(FILE_FIELD) => file = file_of(field).await.map_err(unreadable)?,
            _ => {}
        }
    }
    form::verify_token(req, token.as_deref().or_else(|| csrf::from_header(req)))?;
    Ok(file)
}

/// The image of an image upload form: [`read_file`]'s bytes.
pub async fn read(req: &Request, multipart: Multipart) -> Result<Option<Vec<u8>>, ConsoleError> {
    Ok(read_file(req, multipart).await?.map(|file| file.bytes))
}

/// A file field's name and bytes; `None` for the empty part a browser sends when no file was
/// chosen.
async fn file_of(
    field: MultipartField,
) -> Result<Option<UploadedFile>, poem::error::ParseMultipartError> {
    let name = field.file_name().map(str::to_owned);
    let bytes = field.bytes().await?;
    Ok((!bytes.is_empty()).then_some(UploadedFile { name, bytes }))
}

/// The error of a refused upload, next to the file field, and the status the page answers with
/// (413 for a file too large, 422 for one that is not an image we take). Other failures (the
/// decode budget full, the database out) are not the form's: they stay errors.
pub fn upload_error(error: ApiError) -> Result<(StatusCode, FieldErrors), ConsoleError> {
    let status = error.status();
    if status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::PAYLOAD_TOO_LARGE {
        let mut errors = FieldErrors::new();
        errors.add(FILE_FIELD, error.detail());
        Ok((status, errors))
    } else {
        Err(error.into())
    }
}

/// The error for a form sent without a file.
pub fn no_file_chosen() -> FieldErrors {
    let mut errors = FieldErrors::new();
    errors.add(FILE_FIELD, "Choose an image file to upload");
    errors
}

/// An upload form: the current image (if any) as a preview, a labelled file input with its
/// hint and error, and the button.
pub struct UploadForm<'a> {
    pub action: &'a str,
    pub legend: &'a str,
    pub hint: &'a str,
    /// The current image, served by us (the console's CSP allows images from itself only).
    pub current: Option<&'a str>,
    /// What the preview shows, for its `alt`.
    pub current_alt: &'a str,
    pub button: &'a str,
}

impl UploadForm<'_> {
    pub fn render(&self, csrf: &CsrfToken, errors: &FieldErrors) -> Markup {
        let id = format!("f-{FILE_FIELD}");
        let hint_id = format!("{id}-hint");
        let error_id = format!("{id}-error");
        let error = errors.get(FILE_FIELD);
        let described = match error {
            Some(_) => format!("{hint_id} {error_id}"),
            None => hint_id.clone(),
        };
        html! {
            form hx-boost="true" class="upload" method="post" action=(self.action) enctype="multipart/form-data" {
                (form::csrf_field(csrf))
                fieldset {
                    legend { (self.legend) }
                    @if let Some(src) = self.current {
                        img class="preview" src=(src) alt=(self.current_alt) width="128" height="128";
                    } @else {
                        p class="muted" { "None uploaded yet." }
                    }
                    div class={ "field" @if error.is_some() { " invalid" } } {
                        label for=(id) { "Image file" }
                        p class="hint" id=(hint_id) { (self.hint) }
                        input id=(id) name=(FILE_FIELD) type="file" required
                            accept="image/jpeg,image/png,image/webp"
                            aria-describedby=(described)
                            aria-invalid=[error.map(|_| "true")];
                        @if let Some(error) = error { p class="error" id=(error_id) { (error) } }
                    }
                    button type="submit" { (self.button) }
                }
            }
        }
    }
}
