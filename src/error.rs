//! One error type for every endpoint: `{"detail": "<for a person>", "code": "<for code>"}`.
//! Internal details are logged, never sent.

use poem::{Response, http::StatusCode};
use poem_openapi::{ApiResponse, Object, payload::Json};

use crate::db::DbError;

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
        /// With 429 and 503: seconds to wait before trying again.
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

    /// The same error, telling the client to try again in `seconds` (at least 1).
    pub fn retry_after(self, seconds: u64) -> Self {
        let ApiError::Default(status, body, _) = self;
        ApiError::Default(status, body, Some(seconds.max(1)))
    }

    /// 429: this client or account tried too often; `seconds` until it may try again.
    pub fn too_many(code: &str, detail: &str, seconds: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, detail).retry_after(seconds)
    }

    pub fn status(&self) -> StatusCode {
        let ApiError::Default(status, _, _) = self;
        *status
    }

    pub fn code(&self) -> &str {
        let ApiError::Default(_, body, _) = self;
        &body.code
    }

    pub fn not_found(detail: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
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
    /// credentials, wrong content type…) into our error shape.
    pub fn from_request_error(err: poem::Error) -> Self {
        use poem_openapi::error::{
            AuthorizationError, ContentTypeError, ParseParamError, ParsePathError,
            ParseRequestPayloadError,
        };
        if err.is::<ParseRequestPayloadError>() {
            return Self::invalid(format!("Invalid request body: {}", payload_reason(&err)));
        }
        if let Some(e) = err.downcast_ref::<ParseParamError>() {
            return Self::unprocessable(
                "invalid_parameter",
                format!("Invalid `{}`: {}", e.name, e.reason),
            );
        }
        if let Some(e) = err.downcast_ref::<ParsePathError>() {
            let detail = if e.reason.contains("uuid") {
                "An id in the path is not a valid UUID".to_owned()
            } else {
                format!("Invalid path parameter: {}", e.reason)
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
        from_status(err.status(), &err.to_string())
    }
}

fn payload_reason(err: &poem::Error) -> String {
    let reason = err.to_string();
    reason
        .strip_prefix("parse request payload error: ")
        .unwrap_or(&reason)
        .to_owned()
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

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(format!("{err:#}"))
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        use tokio_postgres::error::SqlState;
        let Some(db) = err.as_db_error() else {
            return match err {
                DbError::Unavailable(e) => {
                    tracing::warn!(error = %e, "database unavailable");
                    Self::unavailable("The database is unavailable, try again shortly")
                }
                // Discarded by the pipeline, which runs the read again: nothing to log.
                DbError::PreparedLate => Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Internal server error",
                ),
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
        // Writing a row of another tenant: answer as if it did not exist.
        if *code == SqlState::INSUFFICIENT_PRIVILEGE && db.message().contains("row-level security")
        {
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
