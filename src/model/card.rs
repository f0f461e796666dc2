//! The public card: which company a slug names, and what a card shows, read as a visitor.

use std::collections::BTreeMap;

use tokio_postgres::Row;
use uuid::Uuid;

use super::decode_error;
use crate::db::{DbError, TenantTx};

/// Which company a slug names (SECURITY DEFINER: runs before any tenant is known).
const CARD_COMPANY: &str = "SELECT card_company($1)";

/// Under the visitor's tenant: row-level security limits this to the company of the slug, so an
/// employee slug of another company finds nothing.
const CARD: &str =
    "SELECT e.id, e.company_id, e.full_name, e.job_title, e.email, e.phone, e.whatsapp,
            e.photo_url, e.photo_hash, e.bio, e.social_links, e.public_slug,
            c.name AS company_name, c.slug AS company_slug, c.domain, c.logo_url, c.logo_hash,
            c.brand_color
     FROM employees e JOIN companies c ON c.id = e.company_id
     WHERE e.public_slug = $1";

/// What a public card shows, as stored.
#[derive(Debug, Clone)]
pub struct CardRecord {
    pub employee_id: Uuid,
    pub company_id: Uuid,
    pub employee_name: String,
    pub job_title: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub whatsapp: Option<String>,
    pub photo_url: Option<String>,
    pub photo_hash: Option<String>,
    pub bio: Option<String>,
    pub social_links: BTreeMap<String, String>,
    pub employee_slug: String,
    pub company_name: String,
    pub company_slug: String,
    pub domain: Option<String>,
    pub logo_url: Option<String>,
    pub logo_hash: Option<String>,
    pub brand_color: Option<String>,
}

impl TryFrom<&Row> for CardRecord {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        let links: serde_json::Value = row.try_get("social_links")?;
        Ok(Self {
            employee_id: row.try_get("id")?,
            company_id: row.try_get("company_id")?,
            employee_name: row.try_get("full_name")?,
            job_title: row.try_get("job_title")?,
            email: row.try_get("email")?,
            phone: row.try_get("phone")?,
            whatsapp: row.try_get("whatsapp")?,
            photo_url: row.try_get("photo_url")?,
            photo_hash: row.try_get("photo_hash")?,
            bio: row.try_get("bio")?,
            social_links: serde_json::from_value(links)
                .map_err(|e| decode_error("social_links", e))?,
            employee_slug: row.try_get("public_slug")?,
            company_name: row.try_get("company_name")?,
            company_slug: row.try_get("company_slug")?,
            domain: row.try_get("domain")?,
            logo_url: row.try_get("logo_url")?,
            logo_hash: row.try_get("logo_hash")?,
            brand_color: row.try_get("brand_color")?,
        })
    }
}

/// The company a slug names, if any. Needs no tenant (`Db::read_public`).
pub async fn company_of_slug(tx: &TenantTx, company_slug: &str) -> Result<Option<Uuid>, DbError> {
    Ok(tx
        .query_one(CARD_COMPANY, [&company_slug])
        .await?
        .try_get(0)?)
}

/// The card of an employee slug, in the visitor's company.
pub async fn get(tx: &TenantTx, employee_slug: &str) -> Result<Option<CardRecord>, DbError> {
    tx.query_opt(CARD, [&employee_slug])
        .await?
        .as_ref()
        .map(CardRecord::try_from)
        .transpose()
}
