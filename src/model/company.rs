//! Companies, the tenants: their rows, creation (with the first subscription), branding.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{media, slug};
use crate::db::{DbError, TenantTx};

/// The columns every company query returns, in [`Company`]'s terms.
macro_rules! company_columns {
    () => {
        "id, name, domain, logo_url, logo_hash, brand_color, slug, created_at, \
         lead_capture_enabled, lead_consent_required, lead_consent_text, privacy_policy_url, \
         lead_retention_days"
    };
}

/// A company as stored.
#[derive(Debug, Clone)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    pub domain: Option<String>,
    /// The URL set on the company (the uploaded logo, if any, takes its place when shown).
    pub logo_url: Option<String>,
    pub logo_hash: Option<String>,
    pub brand_color: Option<String>,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub leads: LeadSettings,
}

/// How the company collects leads on its cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSettings {
    /// Cards show the "Share your contact" form and take leads.
    pub capture_enabled: bool,
    /// A lead needs the visitor's consent to `consent_text`.
    pub consent_required: bool,
    pub consent_text: Option<String>,
    pub privacy_policy_url: Option<String>,
    /// Leads older than this are erased; `None` keeps them.
    pub retention_days: Option<i32>,
}

impl TryFrom<&Row> for LeadSettings {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            capture_enabled: row.try_get("lead_capture_enabled")?,
            consent_required: row.try_get("lead_consent_required")?,
            consent_text: row.try_get("lead_consent_text")?,
            privacy_policy_url: row.try_get("privacy_policy_url")?,
            retention_days: row.try_get("lead_retention_days")?,
        })
    }
}

impl TryFrom<&Row> for Company {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            domain: row.try_get("domain")?,
            logo_url: row.try_get("logo_url")?,
            logo_hash: row.try_get("logo_hash")?,
            brand_color: row.try_get("brand_color")?,
            slug: row.try_get("slug")?,
            created_at: row.try_get("created_at")?,
            leads: LeadSettings::try_from(row)?,
        })
    }
}

impl Company {
    /// What the company shows as its logo: the uploaded one (a path under the service), or else
    /// the URL set on it.
    pub fn shown_logo(&self, base_url: &str) -> Option<String> {
        match &self.logo_hash {
            Some(hash) => Some(format!("{base_url}{}", media::logo_path(self.id, hash))),
            None => self.logo_url.clone(),
        }
    }
}

/// A new company's fields, validated.
pub struct NewCompany {
    pub id: Uuid,
    pub name: String,
    pub domain: Option<String>,
    pub logo_url: Option<String>,
    pub brand_color: Option<String>,
    pub plan: &'static str,
}

/// Tells an empty list from a missing company. (Row-level security already hides other tenants'
/// companies.)
pub const COMPANY_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1)";

const GET_COMPANY: &str = concat!(
    "SELECT ",
    company_columns!(),
    " FROM companies WHERE id = $1"
);

const GET_COMPANY_FOR_UPDATE: &str = concat!(
    "SELECT ",
    company_columns!(),
    " FROM companies WHERE id = $1 FOR UPDATE"
);

// No tenant filter: row-level security shows a tenant its own company, a superadmin all of them.
const LIST_COMPANIES: &str = concat!(
    "SELECT ",
    company_columns!(),
    " FROM companies ORDER BY created_at, id OFFSET $1 LIMIT $2"
);
const COUNT_COMPANIES: &str = "SELECT count(*) FROM companies";

const UPDATE_COMPANY: &str = concat!(
    "UPDATE companies SET name = $2, domain = $3, logo_url = $4, brand_color = $5,
         lead_capture_enabled = $6, lead_consent_required = $7, lead_consent_text = $8,
         privacy_policy_url = $9, lead_retention_days = $10
     WHERE id = $1
     RETURNING ",
    company_columns!()
);

/// The company and its first subscription in one statement: a pipelined COMMIT can never
/// commit one without the other. A taken slug inserts nothing and returns no row.
const CREATE_COMPANY: &str = concat!(
    "WITH company AS (
         INSERT INTO companies (id, name, domain, logo_url, brand_color, slug)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ON CONSTRAINT companies_slug_key DO NOTHING
         RETURNING ",
    company_columns!(),
    "
     ), subscription AS (
         INSERT INTO subscriptions (company_id, plan) SELECT id, $7 FROM company
     )
     SELECT ",
    company_columns!(),
    " FROM company"
);

const COMPANY_NAME: &str = "SELECT name FROM companies WHERE id = $1";

/// Whether the company exists (and the tenant may see it).
pub async fn exists(tx: &TenantTx, company_id: Uuid) -> Result<bool, DbError> {
    Ok(tx
        .query_one(COMPANY_EXISTS, [&company_id])
        .await?
        .try_get(0)?)
}

pub async fn get(tx: &TenantTx, company_id: Uuid) -> Result<Option<Company>, DbError> {
    tx.query_opt(GET_COMPANY, [&company_id])
        .await?
        .as_ref()
        .map(Company::try_from)
        .transpose()
}

/// The company, locked for an update until the transaction ends.
pub async fn lock(tx: &TenantTx, company_id: Uuid) -> Result<Option<Company>, DbError> {
    tx.query_opt(GET_COMPANY_FOR_UPDATE, [&company_id])
        .await?
        .as_ref()
        .map(Company::try_from)
        .transpose()
}

pub async fn name(tx: &TenantTx, company_id: Uuid) -> Result<Option<String>, DbError> {
    match tx.query_opt(COMPANY_NAME, [&company_id]).await? {
        Some(row) => Ok(Some(row.try_get(0)?)),
        None => Ok(None),
    }
}

/// One page of the companies the tenant sees (a superadmin: all), and their number.
pub async fn list(
    tx: &TenantTx,
    (offset, limit): (i64, i64),
) -> Result<(Vec<Company>, i64), DbError> {
    let (rows, count) = tokio::join!(
        tx.query(LIST_COMPANIES, [&offset, &limit]),
        tx.query_one(COUNT_COMPANIES, []),
    );
    let total: i64 = count?.try_get(0)?;
    Ok((super::from_rows(&rows?)?, total))
}

/// Creates the company with `slug`, and its first subscription; `None` if the slug is taken.
pub async fn create(
    tx: &TenantTx,
    new: &NewCompany,
    slug: &str,
) -> Result<Option<Company>, DbError> {
    tx.query_opt(
        CREATE_COMPANY,
        [
            &new.id,
            &new.name,
            &new.domain,
            &new.logo_url,
            &new.brand_color,
            &slug,
            &new.plan,
        ],
    )
    .await?
    .as_ref()
    .map(Company::try_from)
    .transpose()
}

/// A change of a company's name and branding: `None` keeps a field, `Some(None)` clears it.
#[derive(Default)]
pub struct CompanyChange {
    pub name: Option<String>,
    pub domain: Option<Option<String>>,
    pub logo_url: Option<Option<String>>,
    pub brand_color: Option<Option<String>>,
    pub leads: LeadSettingsChange,
}

/// A change of the lead settings, field by field as [`CompanyChange`].
#[derive(Default)]
pub struct LeadSettingsChange {
    pub capture_enabled: Option<bool>,
    pub consent_required: Option<bool>,
    pub consent_text: Option<Option<String>>,
    pub privacy_policy_url: Option<Option<String>>,
    pub retention_days: Option<Option<i32>>,
}

/// Applies `change` under the row lock; `None` if there is no such company.
pub async fn update(
    tx: &TenantTx,
    company_id: Uuid,
    change: CompanyChange,
) -> Result<Option<Company>, DbError> {
    let Some(mut company) = lock(tx, company_id).await? else {
        return Ok(None);
    };
    if let Some(name) = change.name {
        company.name = name;
    }
    if let Some(domain) = change.domain {
        company.domain = domain;
    }
    if let Some(logo_url) = change.logo_url {
        company.logo_url = logo_url;
    }
    if let Some(brand_color) = change.brand_color {
        company.brand_color = brand_color;
    }
    let (leads, to) = (change.leads, &mut company.leads);
    if let Some(enabled) = leads.capture_enabled {
        to.capture_enabled = enabled;
    }
    if let Some(required) = leads.consent_required {
        to.consent_required = required;
    }
    if let Some(text) = leads.consent_text {
        to.consent_text = text;
    }
    if let Some(url) = leads.privacy_policy_url {
        to.privacy_policy_url = url;
    }
    if let Some(days) = leads.retention_days {
        to.retention_days = days;
    }
    let row = tx
        .query_one(
            UPDATE_COMPANY,
            [
                &company.id,
                &company.name,
                &company.domain,
                &company.logo_url,
                &company.brand_color,
                &company.leads.capture_enabled,
                &company.leads.consent_required,
                &company.leads.consent_text,
                &company.leads.privacy_policy_url,
                &company.leads.retention_days,
            ],
        )
        .await?;
    Ok(Some(Company::try_from(&row)?))
}

/// One page of a company's list, its total, and whether the company exists at all (an empty
/// list of a missing company is not the same answer), in one pipelined read: the `list` query
/// takes `($1 company, $2 offset, $3 limit)`, the `count` query `($1 company)`.
/// `None` when the company does not exist (or row-level security hides it).
pub async fn page_of<T>(
    tx: &TenantTx,
    company_id: Uuid,
    (list, count): (&str, &str),
    (offset, limit): (i64, i64),
) -> Result<Option<(Vec<T>, i64)>, DbError>
where
    T: for<'r> TryFrom<&'r Row, Error = DbError>,
{
    let (exists, rows, total) = tokio::join!(
        exists(tx, company_id),
        tx.query(list, [&company_id, &offset, &limit]),
        tx.query_one(count, [&company_id]),
    );
    if !exists? {
        return Ok(None);
    }
    let total: i64 = total?.try_get(0)?;
    Ok(Some((super::from_rows(&rows?)?, total)))
}

/// Slugs to try for a company named `name`, in order: its slug base (at most 60 characters,
/// leaving room for a suffix), then `base-<random>`. Concurrent sign-ups of the same name each
/// end up with their own.
pub fn slug_candidates(name: &str) -> impl Iterator<Item = String> {
    let base = slug::slug_base(name, 60, "company");
    (0..5).map(move |i| {
        if i == 0 {
            base.clone()
        } else {
            format!("{base}-{}", slug::random_suffix())
        }
    })
}
