//! Logins: an admin gives a teammate access to the company, as admin or employee.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{Object, OpenApi, param::Path, param::Query, payload::Json};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{
    ApiTags, AppState, Created, JsonString, Paged, companies::company_page, page, validate,
};
use crate::{
    auth::{BearerAuth, Role, password::HashingPool, policy::PasswordContext},
    error::ApiError,
};

#[derive(Debug, Object)]
pub struct User {
    pub id: Uuid,
    pub company_id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub is_active: bool,
    /// The employee record this login may edit, if any.
    #[oai(nullable)]
    pub employee_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl User {
    pub fn from_row(row: &Row) -> Result<Self, ApiError> {
        let role: String = row.try_get("role").map_err(ApiError::internal)?;
        Ok(Self {
            id: row.try_get("id").map_err(ApiError::internal)?,
            company_id: row.try_get("company_id").map_err(ApiError::internal)?,
            email: row.try_get("email").map_err(ApiError::internal)?,
            full_name: row.try_get("full_name").map_err(ApiError::internal)?,
            role: Role::parse(&role)
                .ok_or_else(|| ApiError::internal(format!("unknown role {role}")))?,
            is_active: row.try_get("is_active").map_err(ApiError::internal)?,
            employee_id: row.try_get("employee_id").map_err(ApiError::internal)?,
            created_at: row.try_get("created_at").map_err(ApiError::internal)?,
        })
    }
}

/// Roles an admin may hand out.
#[derive(Debug, Clone, Copy, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum TeamRole {
    Admin,
    Employee,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateUser {
    #[oai(validator(max_length = 254))]
    pub email: JsonString,
    #[oai(validator(max_length = 256))]
    pub password: JsonString,
    #[oai(validator(max_length = 200))]
    pub full_name: JsonString,
    pub role: TeamRole,
    /// Link the login to this employee: an `employee` may then edit that record.
    #[oai(nullable)]
    pub employee_id: Option<Uuid>,
}

const INSERT_USER: &str =
    "INSERT INTO users (company_id, id, email, password_hash, full_name, role, employee_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     RETURNING id, company_id, email, full_name, role, is_active, employee_id, created_at";

const LIST_USERS: &str =
    "SELECT id, company_id, email, full_name, role, is_active, employee_id, created_at
     FROM users WHERE company_id = $1 ORDER BY created_at, id OFFSET $2 LIMIT $3";

const COUNT_USERS: &str = "SELECT count(*) FROM users WHERE company_id = $1";

const COMPANY_NAME: &str = "SELECT name FROM companies WHERE id = $1";

pub struct UsersApi;

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Give a teammate a login
    ///
    /// Admins only. The role is `admin` or `employee`; an `employee` login linked to an employee
    /// record may edit that record. The password is held to the sign-up policy.
    #[oai(path = "/company/:company_id/users", method = "post")]
    async fn create_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: Json<CreateUser>,
    ) -> Result<Created<User>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let body = body.0;
        let email = validate::email("email", &body.email)?.to_lowercase();
        let full_name = validate::required_text("full_name", &body.full_name, 200)?;
        validate::password("password", &body.password)?;
        let role = match body.role {
            TeamRole::Admin => Role::Admin,
            TeamRole::Employee => Role::Employee,
        };
        let company = state
            .db
            .read(&tenant, async |tx| {
                tx.query_opt(COMPANY_NAME, [&company_id.0]).await
            })
            .await?
            .ok_or_else(|| ApiError::not_found("Company not found"))?;
        let context = PasswordContext::default()
            .email("email", &email)
            .name("full_name", &full_name)
            .name(
                "company_name",
                &company
                    .try_get::<_, String>(0)
                    .map_err(ApiError::internal)?,
            );
        let hash = state
            .passwords
            .hash_new("password", body.password.into_inner(), context)
            .await?;
        let id = Uuid::new_v4();
        let user = state
            .db
            .write(&tenant, async |tx| {
                let row = tx
                    .query_one(
                        INSERT_USER,
                        [
                            &company_id.0,
                            &id,
                            &email,
                            &hash,
                            &full_name,
                            &role.as_str(),
                            &body.employee_id,
                        ],
                    )
                    .await?;
                User::from_row(&row)
            })
            .await?;
        Ok(Created::Created(Json(user)))
    }

    /// List the company's logins
    ///
    /// Admins only. Oldest first; `X-Total-Count` holds the total.
    #[oai(path = "/company/:company_id/users", method = "get")]
    async fn list_users(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// How many to skip.
        #[oai(validator(minimum(value = "0"), maximum(value = "4294967295")))]
        skip: Query<Option<u32>>,
        /// How many to return, 1 to 100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Paged<User>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let (offset, limit) = page(skip.0, limit.0)?;
        let (rows, total) = company_page(
            &state,
            &tenant,
            company_id.0,
            (LIST_USERS, COUNT_USERS),
            (offset, limit),
        )
        .await?;
        let users = rows.iter().map(User::from_row).collect::<Result<_, _>>()?;
        Ok(Paged::Ok(Json(users), total))
    }
}

/// The company that platform superadmins belong to.
pub const PLATFORM_COMPANY_SLUG: &str = "platform";
const PLATFORM_COMPANY_NAME: &str = "CallingCard Platform";

const FIND_PLATFORM_COMPANY: &str = "SELECT id FROM companies WHERE slug = $1";

const CREATE_PLATFORM_COMPANY: &str = "WITH company AS (
         INSERT INTO companies (id, name, slug) VALUES ($1, $3, $2) RETURNING id
     )
     INSERT INTO subscriptions (company_id, plan) SELECT id, 'enterprise' FROM company";

/// Creates a superadmin login, for the `create-superadmin` command. Superadmins belong to the
/// platform company, created on first use.
pub async fn create_superadmin(
    db: &crate::db::Db,
    email: &str,
    password_plain: &str,
    full_name: &str,
) -> Result<Uuid, ApiError> {
    use crate::db::Tenant;
    let email = validate::email("email", email)?.to_lowercase();
    let full_name = validate::required_text("full_name", full_name, 200)?;
    validate::password("password", password_plain)?;
    // A one-off command: a pool of one thread, gone when it is done.
    let context = PasswordContext::default()
        .email("email", &email)
        .name("full_name", &full_name)
        .name("company_name", PLATFORM_COMPANY_NAME);
    let hash = HashingPool::new(1, 0, std::time::Duration::from_secs(60))?
        .hash_new("password", password_plain.to_owned(), context)
        .await?;
    // A superadmin may read every company, which is how we find the platform company.
    let probe = Tenant::new(Uuid::nil(), Role::Superadmin);
    let existing = db
        .read(&probe, async |tx| {
            tx.query_opt(FIND_PLATFORM_COMPANY, [&PLATFORM_COMPANY_SLUG])
                .await
        })
        .await?;
    let (company_id, create_company) = match existing {
        Some(row) => (
            row.try_get::<_, Uuid>(0).map_err(ApiError::internal)?,
            false,
        ),
        None => (Uuid::new_v4(), true),
    };
    let user_id = Uuid::new_v4();
    db.write(&Tenant::new(company_id, Role::Superadmin), async |tx| {
        if create_company {
            tx.execute(
                CREATE_PLATFORM_COMPANY,
                [&company_id, &PLATFORM_COMPANY_SLUG, &PLATFORM_COMPANY_NAME],
            )
            .await?;
        }
        tx.execute(
            INSERT_USER,
            [
                &company_id,
                &user_id,
                &email,
                &hash,
                &full_name,
                &Role::Superadmin.as_str(),
                &None::<Uuid>,
            ],
        )
        .await?;
        Ok::<_, ApiError>(())
    })
    .await?;
    Ok(user_id)
}
