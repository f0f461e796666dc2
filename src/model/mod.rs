//! The model: one module per resource, holding its SQL, its rows and its operations. Every
//! operation takes the tenant's transaction first, so the tenant wall stays the only door; no
//! HTTP in here (the JSON API in `api/` and any other door call these).

pub mod card;
pub mod company;
pub mod employee;
pub mod media;
pub mod slug;
pub mod subscription;
pub mod user;

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

/// One page of a company's list, its total, and whether the company exists at all (an empty
/// list of a missing company is not the same answer), in one pipelined read: the `list` query
/// takes `($1 company, $2 offset, $3 limit)`, the `count` query `($1 company)`.
/// `None` when the company does not exist (or row-level security hides it).
pub async fn company_page<T>(
    tx: &crate::db::TenantTx,
    company_id: uuid::Uuid,
    (list, count): (&str, &str),
    (offset, limit): (i64, i64),
) -> Result<Option<(Vec<T>, i64)>, DbError>
where
    T: for<'r> TryFrom<&'r Row, Error = DbError>,
{
    let (exists, rows, total) = tokio::join!(
        company::exists(tx, company_id),
        tx.query(list, [&company_id, &offset, &limit]),
        tx.query_one(count, [&company_id]),
    );
    if !exists? {
        return Ok(None);
    }
    let total: i64 = total?.try_get(0)?;
    Ok(Some((from_rows(&rows?)?, total)))
}
