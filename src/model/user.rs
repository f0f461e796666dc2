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

// Teammates: one login of the company read, changed or deleted by an admin. Every change takes
// the company's row lock first (`LOCK_COMPANY_LOGINS`), so that two admins demoting each other
// at once cannot leave the company without an active admin, and reads the admins after it.

/// A change of a login: `None` keeps a field; `employee_id: Some(None)` unlinks it.
#[derive(Debug, Default)]
pub struct UserChange {
    pub full_name: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub employee_id: Option<Option<Uuid>>,
}

/// Who changes a login: a superadmin may change superadmins' logins, an admin may not.
#[derive(Debug, Clone, Copy)]
pub struct Changer {
    pub is_superadmin: bool,
}

/// Why a login cannot be changed or deleted.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no such login in this company")]
    NotFound,
    #[error("a superadmin's login is changed by superadmins only")]
    SuperadminProtected,
    #[error("the company's last active admin cannot be demoted, deactivated or deleted")]
    LastAdmin,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Serializes changes of the company's logins (FOR NO KEY UPDATE: rows that reference the
/// company, employees being added say, are not held up by it).
const LOCK_COMPANY_LOGINS: &str = "SELECT 1 FROM companies WHERE id = $1 FOR NO KEY UPDATE";

const GET_USER_FOR_UPDATE: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE company_id = $1 AND id = $2 FOR UPDATE"
);

/// A new statement after the company's lock: it sees every change committed before.
const COUNT_ACTIVE_ADMINS: &str =
    "SELECT count(*) FROM users WHERE company_id = $1 AND role = 'admin' AND is_active";

const UPDATE_USER: &str = concat!(
    "UPDATE users SET full_name = $3, role = $4, is_active = $5, employee_id = $6
     WHERE company_id = $1 AND id = $2
     RETURNING ",
    user_columns!()
);

const DELETE_USER: &str = "DELETE FROM users WHERE company_id = $1 AND id = $2";

const GET_COMPANY_USER: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE company_id = $1 AND id = $2"
);

/// One login of the company.
pub async fn get_in_company(
    tx: &TenantTx,
    company_id: Uuid,
    user_id: Uuid,
) -> Result<Option<User>, DbError> {
    tx.query_opt(GET_COMPANY_USER, [&company_id, &user_id])
        .await?
        .as_ref()
        .map(User::try_from)
        .transpose()
}

/// Locks the company's logins and the login itself, for a change by `changer`.
async fn lock_for_change(
    tx: &TenantTx,
    company_id: Uuid,
    user_id: Uuid,
    changer: Changer,
) -> Result<User, ChangeError> {
    if tx
        .query_opt(LOCK_COMPANY_LOGINS, [&company_id])
        .await?
        .is_none()
    {
        return Err(ChangeError::NotFound);
    }
    let row = tx
        .query_opt(GET_USER_FOR_UPDATE, [&company_id, &user_id])
        .await?
        .ok_or(ChangeError::NotFound)?;
    let user = User::try_from(&row)?;
    if user.role == Role::Superadmin && !changer.is_superadmin {
        return Err(ChangeError::SuperadminProtected);
    }
    Ok(user)
}

/// Refuses to remove `user` from the company's active admins when it is the last one.
async fn keep_an_admin(tx: &TenantTx, user: &User) -> Result<(), ChangeError> {
    if user.role != Role::Admin || !user.is_active {
        return Ok(());
    }
    let admins: i64 = tx
        .query_one(COUNT_ACTIVE_ADMINS, [&user.company_id])
        .await?
        .try_get(0)
        .map_err(DbError::from)?;
    if admins <= 1 {
        return Err(ChangeError::LastAdmin);
    }
    Ok(())
}

/// Applies `change` to the login; the login before and after it (for the audit trail).
/// Deactivating it or changing its role ends its sessions in the same transaction; the last
/// active admin keeps both.
pub async fn change(
    tx: &TenantTx,
    company_id: Uuid,
    user_id: Uuid,
    changer: Changer,
    change: UserChange,
) -> Result<(User, User), ChangeError> {
    let before = lock_for_change(tx, company_id, user_id, changer).await?;
    let role = change.role.unwrap_or(before.role);
    let is_active = change.is_active.unwrap_or(before.is_active);
    if role != Role::Admin || !is_active {
        keep_an_admin(tx, &before).await?;
    }
    let full_name = change.full_name.unwrap_or_else(|| before.full_name.clone());
    let employee_id = change.employee_id.unwrap_or(before.employee_id);
    let row = tx
        .query_one(
            UPDATE_USER,
            [
                &company_id,
                &user_id,
                &full_name,
                &role.as_str(),
                &is_active,
                &employee_id,
            ],
        )
        .await?;
    let after = User::try_from(&row)?;
    let ended = if before.is_active && !after.is_active {
        Some("deactivated")
    } else if before.role != after.role {
        Some("role_changed")
    } else {
        None
    };
    if let Some(reason) = ended {
        super::session::end_for_user(tx, user_id, None, reason).await?;
    }
    Ok((before, after))
}

/// Deletes the login, its sessions ended first; the last active admin stays. The login as it
/// was.
pub async fn delete(
    tx: &TenantTx,
    company_id: Uuid,
    user_id: Uuid,
    changer: Changer,
) -> Result<User, ChangeError> {
    let user = lock_for_change(tx, company_id, user_id, changer).await?;
    keep_an_admin(tx, &user).await?;
    super::session::end_for_user(tx, user_id, None, "deleted").await?;
    tx.execute(DELETE_USER, [&company_id, &user_id]).await?;
    Ok(user)
}

const EMAIL_HAS_LOGIN: &str = "SELECT email_has_login($1)";

/// Whether any company has a login with this email (logins are unique by email platform-wide;
/// a SECURITY DEFINER lookup).
pub async fn email_has_login(tx: &TenantTx, email: &str) -> Result<bool, DbError> {
    Ok(tx.query_one(EMAIL_HAS_LOGIN, [&email]).await?.try_get(0)?)
}

const EMPLOYEE_HAS_LOGIN: &str =
    "SELECT EXISTS (SELECT 1 FROM users WHERE company_id = $1 AND employee_id = $2)";

/// Whether a login of the company is linked to the employee already.
pub async fn employee_has_login(
    tx: &TenantTx,
    company_id: Uuid,
    employee_id: Uuid,
) -> Result<bool, DbError> {
    Ok(tx
        .query_one(EMPLOYEE_HAS_LOGIN, [&company_id, &employee_id])
        .await?
        .try_get(0)?)
}
