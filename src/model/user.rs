//! Logins: sign-up (a company with its first admin), teammates, passwords, the platform's
//! superadmins.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::decode_error;
use crate::db::{DbError, Role, TenantTx};

macro_rules! user_columns {
    () => {
        "id, company_id, email, full_name, role, is_active, employee_id, created_at, \
         email_verified_at IS NOT NULL AS email_verified"
    };
}

/// A login as stored (without its password hash).
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub company_id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub is_active: bool,
    /// The employee record this login may edit, if any.
    pub employee_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// A link sent to the address was followed (a verification, or a password reset).
    pub email_verified: bool,
}

fn role(raw: &str) -> Result<Role, DbError> {
    Role::parse(raw).ok_or_else(|| decode_error("role", format!("unknown role {raw}")))
}

impl TryFrom<&Row> for User {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: row.try_get("id")?,
            company_id: row.try_get("company_id")?,
            email: row.try_get("email")?,
            full_name: row.try_get("full_name")?,
            role: role(row.try_get("role")?)?,
            is_active: row.try_get("is_active")?,
            employee_id: row.try_get("employee_id")?,
            created_at: row.try_get("created_at")?,
            email_verified: row.try_get("email_verified")?,
        })
    }
}

/// A new login's fields, validated, its password already hashed.
pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub full_name: &'a str,
    pub role: Role,
    pub employee_id: Option<Uuid>,
}

/// What a login attempt needs to know of an account (found before any tenant is known).
pub struct LoginAccount {
    pub user_id: Uuid,
    pub company_id: Uuid,
    pub role: Role,
    pub is_active: bool,
    pub password_hash: String,
}

impl TryFrom<&Row> for LoginAccount {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            user_id: row.try_get("user_id")?,
            company_id: row.try_get("company_id")?,
            role: role(row.try_get("role")?)?,
            is_active: row.try_get("is_active")?,
            password_hash: row.try_get("password_hash")?,
        })
    }
}

/// What changing a password needs: the hash to check, and the words the new one must avoid.
pub struct PasswordRecord {
    pub password_hash: String,
    pub email: String,
    pub full_name: String,
    pub company_name: String,
}

const INSERT_USER: &str = concat!(
    "INSERT INTO users (company_id, id, email, password_hash, full_name, role, employee_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     RETURNING ",
    user_columns!()
);

const LIST_USERS: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE company_id = $1 ORDER BY created_at, id OFFSET $2 LIMIT $3"
);

const COUNT_USERS: &str = "SELECT count(*) FROM users WHERE company_id = $1";

const GET_USER: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");

/// The company, its admin and its free subscription in one statement. A taken slug inserts
/// nothing (and returns no row); a taken email fails the whole statement.
const SIGN_UP: &str = "WITH company AS (
         INSERT INTO companies (id, name, slug) VALUES ($1, $2, $3)
         ON CONFLICT ON CONSTRAINT companies_slug_key DO NOTHING
         RETURNING id
     ), subscription AS (
         INSERT INTO subscriptions (company_id, plan) SELECT id, 'free' FROM company
     ), account AS (
         INSERT INTO users (company_id, id, email, password_hash, full_name, role)
         SELECT id, $4, $5, $6, $7, 'admin' FROM company
         RETURNING id
     )
     SELECT id FROM account";

const LOGIN_LOOKUP: &str =
    "SELECT user_id, company_id, role, is_active, password_hash FROM login_lookup($1)";

const GET_PASSWORD_HASH: &str = "SELECT u.password_hash, u.email, u.full_name, c.name
     FROM users u JOIN companies c ON c.id = u.company_id
     WHERE u.id = $1 AND u.is_active";

const SET_PASSWORD_HASH: &str = "UPDATE users SET password_hash = $2 WHERE id = $1";

const CREATE_PLATFORM_COMPANY: &str = "WITH company AS (
         INSERT INTO companies (id, name, slug) VALUES ($1, $3, $2) RETURNING id
     )
     INSERT INTO subscriptions (company_id, plan) SELECT id, 'enterprise' FROM company";

pub async fn create(tx: &TenantTx, company_id: Uuid, new: &NewUser<'_>) -> Result<User, DbError> {
    let row = tx
        .query_one(
            INSERT_USER,
            [
                &company_id,
                &new.id,
                &new.email,
                &new.password_hash,
                &new.full_name,
                &new.role.as_str(),
                &new.employee_id,
            ],
        )
        .await?;
    User::try_from(&row)
}

pub async fn get(tx: &TenantTx, user_id: Uuid) -> Result<Option<User>, DbError> {
    tx.query_opt(GET_USER, [&user_id])
        .await?
        .as_ref()
        .map(User::try_from)
        .transpose()
}

/// One page of the company's logins, oldest first, and their number; `None` if there is no such
/// company.
pub async fn list(
    tx: &TenantTx,
    company_id: Uuid,
    page: (i64, i64),
) -> Result<Option<(Vec<User>, i64)>, DbError> {
    super::company::page_of(tx, company_id, (LIST_USERS, COUNT_USERS), page).await
}

/// A new company with `slug` and its first admin, on the free plan; `false` if the slug is
/// taken (nothing was created).
pub async fn sign_up(
    tx: &TenantTx,
    (company_id, company_name, slug): (Uuid, &str, &str),
    admin: &NewUser<'_>,
) -> Result<bool, DbError> {
    let row = tx
        .query_opt(
            SIGN_UP,
            [
                &company_id,
                &company_name,
                &slug,
                &admin.id,
                &admin.email,
                &admin.password_hash,
                &admin.full_name,
            ],
        )
        .await?;
    Ok(row.is_some())
}

/// The account of an email, if any (a SECURITY DEFINER lookup: no tenant needed).
pub async fn login_lookup(tx: &TenantTx, email: &str) -> Result<Option<LoginAccount>, DbError> {
    tx.query_opt(LOGIN_LOOKUP, [&email])
        .await?
        .as_ref()
        .map(LoginAccount::try_from)
        .transpose()
}

/// The password record of an active login.
pub async fn password_record(
    tx: &TenantTx,
    user_id: Uuid,
) -> Result<Option<PasswordRecord>, DbError> {
    let Some(row) = tx.query_opt(GET_PASSWORD_HASH, [&user_id]).await? else {
        return Ok(None);
    };
    Ok(Some(PasswordRecord {
        password_hash: row.try_get(0)?,
        email: row.try_get(1)?,
        full_name: row.try_get(2)?,
        company_name: row.try_get(3)?,
    }))
}

pub async fn set_password_hash(tx: &TenantTx, user_id: Uuid, hash: &str) -> Result<(), DbError> {
    tx.execute(SET_PASSWORD_HASH, [&user_id, &hash]).await?;
    Ok(())
}

/// Creates the platform company (the superadmins' own), on the enterprise plan.
pub async fn create_platform_company(
    tx: &TenantTx,
    company_id: Uuid,
    (slug, name): (&str, &str),
) -> Result<(), DbError> {
    tx.execute(CREATE_PLATFORM_COMPANY, [&company_id, &slug, &name])
        .await?;
    Ok(())
}
