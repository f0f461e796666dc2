//! The model: one module per resource, holding its SQL, its rows and its operations. Every
//! operation takes the tenant's transaction first, so the tenant wall stays the only door; no
//! HTTP in here (the JSON API in `api/` and any other door call these).

pub mod account_token;
pub mod analytics;
pub mod audit;
pub mod card;
pub mod company;
pub mod console_import;
pub mod employee;
pub mod employee_import;
pub mod employee_list;
pub mod invitation;
pub mod lead;
pub mod media;
pub mod outbox;
pub mod outbox_stats;
pub mod session;
pub mod slug;
pub mod subscription;
pub mod user;
pub mod webhook;

use tokio_postgres::Row;

use crate::db::DbError;

/// Rows mapped to `T` (any `T: TryFrom<&Row>`, as every row type of the model is).
pub fn from_rows<T>(rows: &[Row]) -> Result<Vec<T>, DbError>
where
    T: for<'r> TryFrom<&'r Row, Error = DbError>,
{
    rows.iter().map(T::try_from).collect()
}

/// A value of a row that does not decode (JSON, an enum's text) as [`DbError::Decode`].
pub(crate) fn decode_error(what: &str, e: impl std::fmt::Display) -> DbError {
    DbError::Decode(format!("{what}: {e}"))
}
