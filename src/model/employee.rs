//! Employees and their cards. Creating an employee creates its public slug and its card row in
//! the same transaction, within the limit of the company's plan.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::{Row, types::Json as JsonColumn};
use uuid::Uuid;

use super::{decode_error, media, slug};
use crate::{
    card::CardUrls,
    db::{DbError, TenantTx},
    error::ApiError,
    validate,
};

/// The columns every employee query returns, in [`Employee`]'s terms, from `employees e` joined
/// with `companies c`.
macro_rules! employee_columns {
    () => {
        "e.id, e.company_id, e.full_name, e.job_title, e.email, e.phone, e.whatsapp,
         e.photo_url, e.photo_hash, e.bio, e.social_links, e.public_slug, c.slug AS company_slug,
         e.created_at, e.updated_at"
    };
}
// The list (`employee_list`) selects the same columns, and its sort key.
pub(crate) use employee_columns;

/// Whether the login `$2` is linked to the employee `e`: such a login may edit that record.
macro_rules! linked_to_login {
    () => {
        "EXISTS (SELECT 1 FROM users u
                 WHERE u.company_id = e.company_id AND u.id = $2 AND u.employee_id = e.id
                   AND u.is_active)"
    };
}
// For every other check of the same link (the analytics of one employee's card).
pub(crate) use linked_to_login;

/// An employee as stored.
#[derive(Debug, Clone)]
pub struct Employee {
    pub id: Uuid,
    pub company_id: Uuid,
    pub full_name: String,
    pub job_title: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub whatsapp: Option<String>,
    /// The URL set on the employee (the uploaded photo, if any, takes its place when shown).
    pub photo_url: Option<String>,
    pub photo_hash: Option<String>,
    pub bio: Option<String>,
    pub social_links: BTreeMap<String, String>,
    pub public_slug: String,
    pub company_slug: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<&Row> for Employee {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        // Straight from the jsonb bytes, without a serde_json::Value in between.
        let links: JsonColumn<BTreeMap<String, String>> = row.try_get("social_links")?;
        Ok(Self {
            id: row.try_get("id")?,
            company_id: row.try_get("company_id")?,
            full_name: row.try_get("full_name")?,
            job_title: row.try_get("job_title")?,
            email: row.try_get("email")?,
            phone: row.try_get("phone")?,
            whatsapp: row.try_get("whatsapp")?,
            photo_url: row.try_get("photo_url")?,
            photo_hash: row.try_get("photo_hash")?,
            bio: row.try_get("bio")?,
            social_links: links.0,
            public_slug: row.try_get("public_slug")?,
            company_slug: row.try_get("company_slug")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

impl Employee {
    /// What the employee shows as photo: the uploaded one (a path under the service), or else
    /// the URL set on it.
    pub fn shown_photo(&self, base_url: &str) -> Option<String> {
        match &self.photo_hash {
            Some(hash) => Some(format!(
                "{base_url}{}",
                media::photo_path(self.company_id, hash)
            )),
            None => self.photo_url.clone(),
        }
    }

    /// The address of the employee's public card page (only that one: a list shows it for
    /// every row, and [`CardUrls::new`] would format all the card's addresses).
    pub fn card_page_url(&self, base_url: &str) -> String {
        CardUrls::page_url(base_url, &self.company_slug, &self.public_slug)
    }
}

/// An employee's text fields, as every door checks them: the JSON API's create and update, and
/// each row of an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmployeeField {
    FullName,
    JobTitle,
    Email,
    Phone,
    Whatsapp,
    PhotoUrl,
    Bio,
}

impl EmployeeField {
    pub const ALL: [EmployeeField; 7] = [
        Self::FullName,
        Self::JobTitle,
        Self::Email,
        Self::Phone,
        Self::Whatsapp,
        Self::PhotoUrl,
        Self::Bio,
    ];

    /// The field's name, as in the API and in an import's columns.
    pub fn name(self) -> &'static str {
        match self {
            Self::FullName => "full_name",
            Self::JobTitle => "job_title",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Whatsapp => "whatsapp",
            Self::PhotoUrl => "photo_url",
            Self::Bio => "bio",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The value as stored: trimmed and checked; `None` for an empty optional field (a
    /// `full_name` must not be empty).
    pub fn check(self, value: &str) -> Result<Option<String>, ApiError> {
        let name = self.name();
        match self {
            Self::FullName => validate::required_text(name, value, 200).map(Some),
            Self::JobTitle => validate::optional_text(name, Some(value), 200),
            Self::Email => validate::optional_email(name, Some(value)),
            Self::Phone | Self::Whatsapp => validate::optional_phone(name, Some(value)),
            Self::PhotoUrl => validate::optional_http_url(name, Some(value)),
            Self::Bio => validate::optional_multiline_text(name, Some(value), 2000),
        }
    }

    /// [`EmployeeField::check`] of an optional field; absent is `None`.
    pub fn check_optional(
        self,
        value: Option<impl AsRef<str>>,
    ) -> Result<Option<String>, ApiError> {
        match value {
            Some(value) => self.check(value.as_ref()),
            None => Ok(None),
        }
    }
}

/// `{name: url}` links as every door checks them (see [`validate::social_links`]).
pub fn check_social_links(
    links: BTreeMap<String, impl AsRef<str>>,
) -> Result<BTreeMap<String, String>, ApiError> {
    validate::social_links(links)
}

/// A new employee's public slug, from its name: `jane-smith-3f9a2c`.
pub fn new_public_slug(full_name: &str) -> String {
    format!(
        "{}-{}",
        slug::slug_base(full_name, 60, "card"),
        slug::random_suffix()
    )
}

/// A new employee's fields, validated.
pub struct NewEmployee {
    pub id: Uuid,
    pub full_name: String,
    pub job_title: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub whatsapp: Option<String>,
    pub photo_url: Option<String>,
    pub bio: Option<String>,
    pub social_links: BTreeMap<String, String>,
    pub public_slug: String,
}

/// A change of an employee: `None` keeps a field, `Some(None)` clears it.
#[derive(Default)]
pub struct EmployeeChange {
    pub full_name: Option<String>,
    pub job_title: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub whatsapp: Option<Option<String>>,
    pub photo_url: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub social_links: Option<BTreeMap<String, String>>,
}

/// Who wants to change an employee: admins and superadmins may change any of the company's,
/// an employee login only the record it is linked to.
#[derive(Clone, Copy, Debug)]
pub struct Editor {
    pub user_id: Uuid,
    pub is_admin: bool,
}

/// Why an employee cannot be changed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no such employee")]
    NotFound,
    #[error("the editor may only edit the employee its login is linked to")]
    NotLinked,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Why an employee cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("no such company")]
    NoCompany,
    #[error("the {plan_title} plan allows {limit} employees")]
    PlanFull { plan_title: String, limit: i32 },
    #[error(transparent)]
    Db(#[from] DbError),
}

const GET_EMPLOYEE: &str = concat!(
    "SELECT ",
    employee_columns!(),
    " FROM employees e JOIN companies c ON c.id = e.company_id
     WHERE e.id = $1"
);

/// Locks the employee for an update, and tells whether the caller's login is linked to it.
const GET_EMPLOYEE_FOR_UPDATE: &str = concat!(
    "SELECT ",
    employee_columns!(),
    ", ",
    linked_to_login!(),
    " AS linked_to_caller
     FROM employees e JOIN companies c ON c.id = e.company_id
     WHERE e.id = $1
     FOR UPDATE OF e"
);

/// The link check of [`GET_EMPLOYEE_FOR_UPDATE`], without the lock.
const EMPLOYEE_LINKED_TO_CALLER: &str = concat!(
    "SELECT ",
    linked_to_login!(),
    " FROM employees e WHERE e.id = $1"
);

/// Serializes employee creation per company (the lock on its active subscription) so that the
/// plan limit holds under concurrent requests.
const LOCK_PLAN: &str = "SELECT c.slug, p.employee_limit, p.title
     FROM companies c
     JOIN subscriptions s ON s.company_id = c.id AND s.active
     JOIN plans p ON p.plan = s.plan
     WHERE c.id = $1
     FOR UPDATE OF s";

/// A new statement, so its snapshot sees employees committed while we waited for the lock.
const INSERT_EMPLOYEE: &str = concat!(
    "WITH e AS (
         INSERT INTO employees (company_id, id, full_name, job_title, email, phone, whatsapp, photo_url, bio,
                                social_links, public_slug)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
         WHERE $12::int IS NULL OR (SELECT count(*) FROM employees WHERE company_id = $1) < $12::int
         RETURNING *
     ), card AS (
         INSERT INTO cards (company_id, id, employee_id, url, qr_code, vcard_url)
         SELECT company_id, gen_random_uuid(), id, $13, $14, $15 FROM e
     )
     SELECT ",
    employee_columns!(),
    " FROM e JOIN companies c ON c.id = e.company_id"
);

const UPDATE_EMPLOYEE: &str = concat!(
    "WITH e AS (
         UPDATE employees SET full_name = $2, job_title = $3, email = $4, phone = $5, whatsapp = $6,
                              photo_url = $7, bio = $8, social_links = $9
         WHERE id = $1
         RETURNING *
     )
     SELECT ",
    employee_columns!(),
    " FROM e JOIN companies c ON c.id = e.company_id"
);

/// The employee, and its photo unless another employee shows the same image. (The subquery
/// still sees the deleted row, a statement's snapshot being taken before it: hence `e.id <> $1`.)
const DELETE_EMPLOYEE: &str = "WITH gone AS (
         DELETE FROM employees WHERE id = $1 RETURNING company_id, photo_hash
     ), unused_photo AS (
         DELETE FROM media m USING gone
         WHERE m.company_id = gone.company_id AND m.hash = gone.photo_hash
           AND NOT EXISTS (SELECT 1 FROM employees e
                           WHERE e.company_id = m.company_id AND e.photo_hash = m.hash AND e.id <> $1)
           AND NOT EXISTS (SELECT 1 FROM companies c WHERE c.id = m.company_id AND c.logo_hash = m.hash)
     )
     SELECT count(*) FROM gone";

/// Every name of a social link the company's employees have, once each: the columns of an export.
const SOCIAL_LINK_NAMES: &str = "SELECT DISTINCT name
     FROM employees e, jsonb_object_keys(e.social_links) AS name
     WHERE e.company_id = $1
     ORDER BY name";

/// Which company an employee id belongs to, for a superadmin only (a SECURITY DEFINER lookup).
const SUPERADMIN_EMPLOYEE_COMPANY: &str = "SELECT superadmin_employee_company($1)";

fn links_json(links: &BTreeMap<String, String>) -> Result<serde_json::Value, DbError> {
    serde_json::to_value(links).map_err(|e| decode_error("social_links", e))
}

pub async fn get(tx: &TenantTx, employee_id: Uuid) -> Result<Option<Employee>, DbError> {
    tx.query_opt(GET_EMPLOYEE, [&employee_id])
        .await?
        .as_ref()
        .map(Employee::try_from)
        .transpose()
}

/// The names of the social links `company_id`'s employees have, sorted (an export's
/// `social_links.<name>` columns).
pub async fn social_link_names(tx: &TenantTx, company_id: Uuid) -> Result<Vec<String>, DbError> {
    tx.query(SOCIAL_LINK_NAMES, [&company_id])
        .await?
        .iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect()
}

/// The company of an employee, when the transaction is a superadmin's (`None` otherwise, and
/// for an unknown id).
pub async fn company_for_superadmin(
    tx: &TenantTx,
    employee_id: Uuid,
) -> Result<Option<Uuid>, DbError> {
    Ok(tx
        .query_one(SUPERADMIN_EMPLOYEE_COMPANY, [&employee_id])
        .await?
        .try_get(0)?)
}

/// Whether `editor` may change the employee, without locking it: checked before costly work
/// (decoding an upload), and again under the lock by [`lock_editable`].
pub async fn check_editable(
    tx: &TenantTx,
    employee_id: Uuid,
    editor: Editor,
) -> Result<(), EditError> {
    let row = tx
        .query_opt(EMPLOYEE_LINKED_TO_CALLER, [&employee_id, &editor.user_id])
        .await?
        .ok_or(EditError::NotFound)?;
    let linked: bool = row.try_get(0).map_err(DbError::from)?;
    if linked || editor.is_admin {
        Ok(())
    } else {
        Err(EditError::NotLinked)
    }
}

/// Locks the employee for a change by `editor`, until the transaction ends.
pub async fn lock_editable(
    tx: &TenantTx,
    employee_id: Uuid,
    editor: Editor,
) -> Result<Employee, EditError> {
    let row = tx
        .query_opt(GET_EMPLOYEE_FOR_UPDATE, [&employee_id, &editor.user_id])
        .await?
        .ok_or(EditError::NotFound)?;
    let linked: bool = row.try_get("linked_to_caller").map_err(DbError::from)?;
    if !editor.is_admin && !linked {
        return Err(EditError::NotLinked);
    }
    Ok(Employee::try_from(&row)?)
}

/// Creates the employee and its card, within the limit of the company's plan.
pub async fn create(
    tx: &TenantTx,
    company_id: Uuid,
    new: &NewEmployee,
) -> Result<Employee, CreateError> {
    let Some(plan) = tx.query_opt(LOCK_PLAN, [&company_id]).await? else {
        return Err(CreateError::NoCompany);
    };
    let company_slug: String = plan.try_get("slug").map_err(DbError::from)?;
    let limit: Option<i32> = plan.try_get("employee_limit").map_err(DbError::from)?;
    let plan_title: String = plan.try_get("title").map_err(DbError::from)?;
    // The card row stores paths: the public base URL is configuration.
    let urls = CardUrls::new("", &company_slug, &new.public_slug);
    let (card, qr, vcard) = (urls.page_path, urls.qr_png_path, urls.vcard_path);
    let links = links_json(&new.social_links)?;
    let row = tx
        .query_opt(
            INSERT_EMPLOYEE,
            [
                &company_id,
                &new.id,
                &new.full_name,
                &new.job_title,
                &new.email,
                &new.phone,
                &new.whatsapp,
                &new.photo_url,
                &new.bio,
                &links,
                &new.public_slug,
                &limit,
                &card,
                &qr,
                &vcard,
            ],
        )
        .await?;
    match row {
        Some(row) => Ok(Employee::try_from(&row)?),
        None => Err(CreateError::PlanFull {
            plan_title,
            limit: limit.unwrap_or_default(),
        }),
    }
}

/// Applies `change` to the employee, under its lock, if `editor` may change it.
pub async fn update(
    tx: &TenantTx,
    employee_id: Uuid,
    editor: Editor,
    change: EmployeeChange,
) -> Result<Employee, EditError> {
    let mut e = lock_editable(tx, employee_id, editor).await?;
    if let Some(name) = change.full_name {
        e.full_name = name;
    }
    let keep_or_set = |field: &mut Option<String>, change: Option<Option<String>>| {
        if let Some(value) = change {
            *field = value;
        }
    };
    keep_or_set(&mut e.job_title, change.job_title);
    keep_or_set(&mut e.email, change.email);
    keep_or_set(&mut e.phone, change.phone);
    keep_or_set(&mut e.whatsapp, change.whatsapp);
    keep_or_set(&mut e.photo_url, change.photo_url);
    keep_or_set(&mut e.bio, change.bio);
    if let Some(links) = change.social_links {
        e.social_links = links;
    }
    let links = links_json(&e.social_links)?;
    let row = tx
        .query_one(
            UPDATE_EMPLOYEE,
            [
                &e.id,
                &e.full_name,
                &e.job_title,
                &e.email,
                &e.phone,
                &e.whatsapp,
                &e.photo_url,
                &e.bio,
                &links,
            ],
        )
        .await?;
    Ok(Employee::try_from(&row)?)
}

/// Deletes the employee (its card goes with it, a linked login stays, unlinked); `false` if
/// there was no such employee.
pub async fn delete(tx: &TenantTx, employee_id: Uuid) -> Result<bool, DbError> {
    let deleted: i64 = tx
        .query_one(DELETE_EMPLOYEE, [&employee_id])
        .await?
        .try_get(0)?;
    Ok(deleted > 0)
}
