//! One error type for every endpoint: `{"detail": "<for a person>", "code": "<for code>"}`.
//! Internal details are logged, never sent.

use poem::{Response, http::StatusCode};
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::db::DbError;

mod request;

pub use request::{ParameterWords, with_parameters, with_request_body};

/// The `code` of every answer during a database outage, `/api/health` included.
pub const DATABASE_UNAVAILABLE: &str = "database_unavailable";

#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub detail: String,
    /// What went wrong, for code: stable, snake_case.
    pub code: String,
}

#[derive(Debug, ApiResponse)]
#[oai(bad_request_handler = "ApiError::from_request_error")]
pub enum ApiError {
    /// Any error. The status tells its class; `code` tells which.
    Default(
        StatusCode,
        Json<ErrorBody>,
        /// Seconds to wait before trying again (with 429 and 503 when the server is busy).
        #[oai(header = "Retry-After")]
        Option<u64>,
    ),
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        ApiError::Default(
            status,
            Json(ErrorBody {
                detail: detail.into(),
                code: code.to_owned(),
            }),
            None,
        )
    }

    /// Too many requests from this client: 429 with `Retry-After` (whole seconds, at least 1).
    pub fn too_many_requests(code: &str, detail: &str, wait: std::time::Duration) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, detail).retry_after(wait)
    }

    /// The server is at its bound for this kind of work: 503 with `Retry-After`.
    pub fn busy(detail: &str, wait: std::time::Duration) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", detail).retry_after(wait)
    }

    /// Adds `Retry-After`, rounded up to whole seconds (at least 1).
    pub fn retry_after(self, wait: std::time::Duration) -> Self {
        let ApiError::Default(status, body, _) = self;
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::Default(status, body, Some(secs.max(1)))
    }

    /// The `Retry-After` seconds, if any.
    pub fn retry_after_secs(&self) -> Option<u64> {
        let ApiError::Default(_, _, secs) = self;
        *secs
    }

    pub fn status(&self) -> StatusCode {
        let ApiError::Default(status, _, _) = self;
        *status
    }

    pub fn code(&self) -> &str {
        let ApiError::Default(_, body, _) = self;
        &body.code
    }

    pub fn detail(&self) -> &str {
        let ApiError::Default(_, body, _) = self;
        &body.detail
    }

    pub fn not_found(detail: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// A signed-in caller's session refused its transaction: 401, `session_ended` (log in
    /// again) or `token_outdated` (the login's role changed: refresh the token).
    pub fn session_refused(refusal: crate::db::SessionRefusal) -> Self {
        use crate::db::SessionRefusal;
        match refusal {
            SessionRefusal::Ended => Self::new(
                StatusCode::UNAUTHORIZED,
                "session_ended",
                "This session has ended; log in again",
            ),
            SessionRefusal::RoleChanged => Self::new(
                StatusCode::UNAUTHORIZED,
                "token_outdated",
                "This login's role has changed; refresh the token",
            ),
        }
    }

    pub fn forbidden(detail: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn conflict(code: &str, detail: &str) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unprocessable(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::unprocessable("validation_error", detail)
    }

    pub fn unavailable(detail: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            detail,
        )
    }

    /// PostgreSQL is out of reach (down, frozen, shutting down, or every connection busy past the
    /// deadline): the same 503 for every way an outage shows.
    pub fn database_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            DATABASE_UNAVAILABLE,
            "The database is unavailable, try again shortly",
        )
    }

    /// Logs `cause` and answers a bare 500.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
        )
    }

    /// Turns the framework's request errors (bad JSON, bad parameters, missing or bad
    /// credentials, wrong content type, a refused CORS origin…) into our error shape, in words
    /// that name the field or parameter.
    pub fn from_request_error(err: poem::Error) -> Self {
        use poem::error::CorsError;
        use poem_openapi::error::{
            AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
            ParseRequestPayloadError,
        };
        if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
            return Self::invalid(request::explain_body(&e.reason));
        }
        if let Some(e) = err.downcast_ref::<ParseParamError>() {
            return Self::unprocessable(
                "invalid_parameter",
                request::explain_parameter(e.name, &e.reason),
            );
        }
        if let Some(e) = err.downcast_ref::<ParsePathError>() {
            let name = request::path_parameter(e.name);
            let detail = if e.reason.contains("uuid") {
                format!("`{name}` in the path must be a UUID")
            } else {
                request::explain_parameter(&name, &e.reason)
            };
            return Self::unprocessable("invalid_parameter", detail);
        }
        if err.is::<AuthorizationError>() {
            return Self::unauthorized("Missing or malformed bearer token");
        }
        if err.is::<ContentTypeError>() {
            return Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as application/json",
            );
        }
        if let Some(e) = err.downcast_ref::<CorsError>() {
            let detail = match e {
                CorsError::OriginNotAllowed => {
                    "Requests from this origin are not allowed (see CORS_ORIGINS)"
                }
                CorsError::MethodNotAllowed => "This method is not allowed across origins",
                CorsError::HeadersNotAllowed => "These headers are not allowed across origins",
            };
            return Self::new(StatusCode::FORBIDDEN, "cors_refused", detail);
        }
        from_status(err.status(), &err.to_string())
    }
}

/// Our shape for a framework error that only carries a status.
fn from_status(status: StatusCode, message: &str) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found("Not found"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(status, "method_not_allowed", "Method not allowed")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "payload_too_large", "Request body too large")
        }
        StatusCode::UNAUTHORIZED => ApiError::unauthorized("Invalid or expired token"),
        s if s.is_client_error() => ApiError::new(s, "bad_request", message),
        _ => ApiError::internal(message),
    }
}

/// The last stop for any error on the way out: errors that are already ours pass unchanged,
/// anything else (routing, body limits, framework parsing) is reshaped.
pub async fn render(err: poem::Error) -> Response {
    use poem::IntoResponse;
    if err.is_from_response() {
        return err.into_response();
    }
    ApiError::from_request_error(err).into_response()
}

/// What a 503 that does not say otherwise tells clients to wait, in seconds.
pub const RETRY_AFTER_SECS: u32 = 2;

/// Adds `Retry-After` to every 503 without one (a database outage, a pool with no connection to
/// spare), so that clients back off rather than retry at once.
pub async fn retry_after_on_503<E: poem::Endpoint>(
    next: std::sync::Arc<E>,
    req: poem::Request,
) -> poem::Result<Response> {
    use poem::IntoResponse;
    let mut resp = match next.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => render(err).await,
    };
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE
        && !resp.headers().contains_key(poem::http::header::RETRY_AFTER)
    {
        resp.headers_mut()
            .insert(poem::http::header::RETRY_AFTER, RETRY_AFTER_SECS.into());
    }
    Ok(resp)
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(format!("{err:#}"))
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        use tokio_postgres::error::SqlState;
        if err.is_outage() {
            tracing::warn!(error = %err, "database unavailable");
            return Self::database_unavailable();
        }
        let Some(db) = err.as_db_error() else {
            return match err {
                // Discarded by the pipeline, which runs the read again: nothing to log.
                DbError::PreparedLate => Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Internal server error",
                ),
                DbError::SessionEnded(refusal) => Self::session_refused(refusal),
                other => Self::internal(other),
            };
        };
        let constraint = db.constraint().unwrap_or_default();
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            return match constraint {
                "users_email_key" => {
                    Self::conflict("email_taken", "An account with this email already exists")
                }
                "companies_slug_key" => Self::conflict("slug_taken", "This company slug is taken"),
                "employees_public_slug_key" => {
                    Self::conflict("slug_taken", "This employee slug is taken")
                }
                "users_employee_key" => Self::conflict(
                    "employee_already_linked",
                    "This employee already has a login",
                ),
                _ => Self::conflict("conflict", "This conflicts with an existing record"),
            };
        }
        if *code == SqlState::FOREIGN_KEY_VIOLATION {
            return match constraint {
                "users_employee_fkey" => {
                    Self::unprocessable("employee_not_found", "No such employee in this company")
                }
                _ => Self::unprocessable("invalid_reference", "A referenced record does not exist"),
            };
        }
        if *code == SqlState::CHECK_VIOLATION
            || *code == SqlState::NOT_NULL_VIOLATION
            || *code == SqlState::STRING_DATA_RIGHT_TRUNCATION
            || *code == SqlState::INVALID_TEXT_REPRESENTATION
        {
            let field = constraint.split('_').skip(1).collect::<Vec<_>>().join("_");
            let detail = if field.is_empty() {
                "A value is out of range or badly formed".to_owned()
            } else {
                format!("Invalid value ({field})")
            };
            return Self::invalid(detail);
        }
        // NUL is refused at the door (`api::nul`); this is the net behind it.
        if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE {
            return Self::invalid("Text must not contain NUL characters");
        }
        // Writing a row of another tenant (a row-level security policy refused it): answer as if
        // it did not exist. Told by its SQLSTATE, never by the server's wording; a missing GRANT
        // shares the code, so it is logged.
        if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            tracing::warn!(error = %db.message(), "statement refused: insufficient privilege");
            return Self::not_found("Not found");
        }
        if *code == SqlState::QUERY_CANCELED {
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "The request took too long",
            );
        }
        Self::internal(format!("{}: {}", code.code(), db.message()))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ApiError::Default(status, body, _) = self;
        write!(f, "{} {}: {}", status.as_u16(), body.code, body.detail)
    }
}

impl std::error::Error for ApiError {}

impl From<crate::model::employee::EditError> for ApiError {
    fn from(err: crate::model::employee::EditError) -> Self {
        use crate::model::employee::EditError;
        match err {
            EditError::NotFound => Self::not_found("Employee not found"),
            EditError::NotLinked => Self::forbidden("You can only edit your own card"),
            EditError::Db(e) => e.into(),
        }
    }
}

impl From<crate::model::employee::CreateError> for ApiError {
    fn from(err: crate::model::employee::CreateError) -> Self {
        use crate::model::employee::CreateError;
        match err {
            CreateError::NoCompany => Self::not_found("Company not found"),
            CreateError::PlanFull { plan_title, limit } => Self::new(
                StatusCode::PAYMENT_REQUIRED,
                "plan_limit_reached",
                format!(
                    "The {plan_title} plan allows {limit} employees. Upgrade the plan to add more."
                ),
            ),
            CreateError::Db(e) => e.into(),
        }
    }
}

impl ApiError {
    /// No free slug was found for a new company's name.
    pub fn no_free_slug() -> Self {
        Self::conflict(
            "slug_taken",
            "Could not find a free slug for this name, try another",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_errors_name_the_parameter() {
        let err = poem::Error::from(poem_openapi::error::ParseParamError {
            name: "limit",
            reason: "verification failed. maximum(100, exclusive: false)".into(),
        });
        let err = ApiError::from_request_error(err);
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.code(), "invalid_parameter");
        assert!(
            err.to_string().ends_with("`limit` must be at most 100"),
            "{err}"
        );
    }

    #[test]
    fn a_refused_origin_is_a_403_in_the_error_shape() {
        let err = ApiError::from_request_error(poem::error::CorsError::OriginNotAllowed.into());
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert_eq!(err.code(), "cors_refused");
    }
}
