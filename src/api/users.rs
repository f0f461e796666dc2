//! Logins: an admin gives a teammate access to the company, as admin or employee.

use poem::{Request, web::Data};
use poem_openapi::{Object, OpenApi, param::Path, param::Query, payload::Json};
use uuid::Uuid;

use super::{ApiTags, AppState, Created, JsonString, Paged, page, schemas::User, validate};
use crate::{
    auth::{BearerAuth, Role, password::HashingPool, policy::PasswordContext},
    db::Tenant,
    error::ApiError,
    model::{
        self,
        audit::{AuditContext, AuditEvent, Changes, Target},
        user::NewUser,
    },
};

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

pub struct UsersApi;

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Give a teammate a login
    ///
    /// Admins only. The role is `admin` or `employee`; an `employee` login linked to an employee
    /// record may edit that record. The password is held to the sign-up policy.
    #[oai(
        path = "/company/:company_id/users",
        method = "post",
        operation_id = "createUser"
    )]
    async fn create_user(
        &self,
        state: Data<&AppState>,
        req: &Request,
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
        let company_name = state
            .db
            .read(&tenant, async |tx| {
                model::company::name(&tx, company_id.0).await
            })
            .await?
            .ok_or_else(|| ApiError::not_found("Company not found"))?;
        let context = PasswordContext::default()
            .email("email", &email)
            .name("full_name", &full_name)
            .name("company_name", &company_name);
        let hash = state
            .passwords
            .hash_new("password", body.password.into_inner(), context)
            .await?;
        let new = NewUser {
            id: Uuid::new_v4(),
            email: &email,
            password_hash: &hash,
            full_name: &full_name,
            role,
            employee_id: body.employee_id,
        };
        let audit = AuditContext::of(req, &caller);
        let user = state
            .db
            .write(&tenant, async |tx| {
                let user = model::user::create(&tx, company_id.0, &new).await?;
                let event = AuditEvent::new("user.created", Target::user(user.id));
                let changes = Changes::between(None, Some(&user));
                model::audit::record(&tx, &audit, event.changes(changes)).await?;
                Ok::<_, crate::db::DbError>(user)
            })
            .await?;
        Ok(Created::Created(Json(user.into())))
    }

    /// List the company's logins
    ///
    /// Admins only. Oldest first; `X-Total-Count` holds the total.
    #[oai(
        path = "/company/:company_id/users",
        method = "get",
        operation_id = "listUsers"
    )]
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
        let page = page(skip.0, limit.0)?;
        let (users, total) = state
            .db
            .read(&tenant, async |tx| {
                model::user::list(&tx, company_id.0, page).await
            })
            .await?
            .ok_or_else(|| ApiError::not_found("Company not found"))?;
        let users = users.into_iter().map(User::from).collect();
        Ok(Paged::Ok(Json(users), total))
    }
}

/// The company that platform superadmins belong to.
pub const PLATFORM_COMPANY_SLUG: &str = "platform";
const PLATFORM_COMPANY_NAME: &str = "CallingCard Platform";

/// Creates a superadmin login, for the `create-superadmin` command. Superadmins belong to the
/// platform company, created on first use.
pub async fn create_superadmin(
    db: &crate::db::Db,
    email: &str,
    password_plain: &str,
    full_name: &str,
) -> Result<Uuid, ApiError> {
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
    // The platform company is found by its slug (a lookup that needs no tenant), and created
    // on first use.
    let existing = db
        .read(&Tenant::maintenance(), async |tx| {
            model::card::company_of_slug(&tx, PLATFORM_COMPANY_SLUG).await
        })
        .await?;
    let (company_id, create_company) = match existing {
        Some(id) => (id, false),
        None => (Uuid::new_v4(), true),
    };
    let new = NewUser {
        id: Uuid::new_v4(),
        email: &email,
        password_hash: &hash,
        full_name: &full_name,
        role: Role::Superadmin,
        employee_id: None,
    };
    db.write(&Tenant::platform_operator(company_id), async |tx| {
        if create_company {
            let platform = (PLATFORM_COMPANY_SLUG, PLATFORM_COMPANY_NAME);
            model::user::create_platform_company(&tx, company_id, platform).await?;
        }
        model::user::create(&tx, company_id, &new).await
    })
    .await?;
    Ok(new.id)
}
