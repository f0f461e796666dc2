//! What the console answers when a page cannot be shown: an HTML page in the console's style
//! with the status of the JSON API's answer, or a trip to the login page.

use poem::{
    IntoResponse, Response,
    http::{StatusCode, header},
};

use super::{csrf::Refusal, layout};
use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session, or one that has ended: to the login page, and back to `next` after it.
    #[error("signed out")]
    SignedOut { next: Option<String> },
    /// A state-changing request that did not come from the console's own page.
    #[error("cross-site request refused")]
    Csrf(Refusal),
    /// A form body that is not a form.
    #[error("malformed form: {0}")]
    BadForm(String),
    /// Whatever the model or the shared flows answered.
    #[error("{}", .0.detail())]
    Api(ApiError),
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError::Api(e)
    }
}

impl From<crate::db::DbError> for ConsoleError {
    fn from(e: crate::db::DbError) -> Self {
        ConsoleError::Api(e.into())
    }
}

impl poem::error::ResponseError for ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::SignedOut { .. } => StatusCode::SEE_OTHER,
            ConsoleError::Csrf(_) => StatusCode::FORBIDDEN,
            ConsoleError::BadForm(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Api(e) if e.status() == StatusCode::UNAUTHORIZED => StatusCode::SEE_OTHER,
            ConsoleError::Api(e) => e.status(),
        }
    }

    fn as_response(&self) -> Response {
        match self {
            ConsoleError::SignedOut { next } => to_login(next.as_deref()),
            ConsoleError::Api(e) if e.status() == StatusCode::UNAUTHORIZED => to_login(None),
            ConsoleError::Csrf(refusal) => {
                let detail = match refusal {
                    Refusal::Origin => {
                        "This form was sent from another site, or without saying where from, \
                         so it was not accepted. Open the page in CallingCard and try again."
                    }
                    Refusal::Token => {
                        "This form has expired (it may have been open in an old tab). Reload \
                         the page and try again."
                    }
                };
                layout::error_page(StatusCode::FORBIDDEN, "Request refused", detail)
            }
            ConsoleError::BadForm(_) => layout::error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The form could not be read. Reload the page and try again.",
            ),
            ConsoleError::Api(e) => {
                let status = e.status();
                let (title, detail) = if status.is_server_error() {
                    let detail = if status == StatusCode::SERVICE_UNAVAILABLE {
                        "CallingCard is busy right now. Try again in a moment."
                    } else {
                        "Something went wrong on our side. Try again in a moment."
                    };
                    ("Something went wrong", detail.to_owned())
                } else if status == StatusCode::NOT_FOUND {
                    ("Not found", e.detail().to_owned())
                } else if status == StatusCode::FORBIDDEN {
                    ("Not allowed", e.detail().to_owned())
                } else {
                    ("That did not work", e.detail().to_owned())
                };
                let mut response = layout::error_page(status, title, &detail);
                if let Some(secs) = e.retry_after_secs() {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
                }
                response
            }
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        poem::error::ResponseError::as_response(&self)
    }
}

/// To the login page, forgetting the session's cookies (the middleware clears them).
fn to_login(next: Option<&str>) -> Response {
    let location = match next {
        Some(next) if next != "/app" => format!(
            "/app/login?next={}",
            percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
        ),
        _ => "/app/login".to_owned(),
    };
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location.as_str())
        .header("HX-Redirect", location.as_str())
        .header(super::session::SIGNED_OUT_MARK, "1")
        .finish()
}
