//! The public card: which company a slug names, and what a card shows, read as a visitor.

use tokio_postgres::Row;
use uuid::Uuid;

use super::company::LeadSettings;
use super::employee::{Employee, employee_columns};
use crate::db::{DbError, TenantTx};

/// Which company a slug names (SECURITY DEFINER: runs before any tenant is known).
const CARD_COMPANY: &str = "SELECT card_company($1)";

/// Under the visitor's tenant: row-level security limits this to the company of the slug, so an
/// employee slug of another company finds nothing.
const CARD: &str = concat!(
    "SELECT ",
    employee_columns!(),
    ", c.name AS company_name, c.domain, c.logo_url, c.logo_hash, c.brand_color,
            c.lead_capture_enabled, c.lead_consent_required, c.lead_consent_text,
            c.privacy_policy_url, c.lead_retention_days
     FROM employees e JOIN companies c ON c.id = e.company_id
     WHERE e.public_slug = $1"
);

/// What a public card shows, as stored: the employee, and their company's branding.
#[derive(Debug, Clone)]
pub struct CardRecord {
    pub employee: Employee,
    pub company_name: String,
    pub domain: Option<String>,
    pub logo_url: Option<String>,
    pub logo_hash: Option<String>,
    pub brand_color: Option<String>,
    /// Whether (and how) the card takes leads.
    pub leads: LeadSettings,
}

impl TryFrom<&Row> for CardRecord {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            employee: Employee::try_from(row)?,
            company_name: row.try_get("company_name")?,
            domain: row.try_get("domain")?,
            logo_url: row.try_get("logo_url")?,
            logo_hash: row.try_get("logo_hash")?,
            brand_color: row.try_get("brand_color")?,
            leads: LeadSettings::try_from(row)?,
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
