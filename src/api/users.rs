//! Logins: an admin gives a teammate access to the company, as admin or employee, and reads,
//! changes or removes the company's logins.

use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{
    Object, OpenApi, param::Path, param::Query, payload::Json, types::MaybeUndefined,
};
use uuid::Uuid;

use super::{
    ApiTags, AppState, Created, JsonString, NoContent, Paged, page,
    schemas::{TeamRole, User},
    validate,
};
use crate::{
    auth::{BearerAuth, Role, password::HashingPool, policy::PasswordContext},
    db::Tenant,
    error::ApiError,
    model::{
        self,
        audit::{AuditContext, AuditEvent, Changes, Target},
        user::{ChangeError, Changer, NewUser, UserChange},
    },
};

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
        let role = body.role.role();
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

    /// One of the company's logins
    ///
    /// Admins of the company and superadmins. Another company's login answers 404, like a
    /// missing one.
    #[oai(
        path = "/company/:company_id/users/:user_id",
        method = "get",
        operation_id = "getUser"
    )]
    async fn get_user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        user_id: Path<Uuid>,
    ) -> Result<Json<User>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, USER_NOT_FOUND)?;
        caller.require_admin()?;
        let user = state
            .db
            .read(&tenant, async |tx| {
                model::user::get_in_company(&tx, company_id.0, user_id.0).await
            })
            .await?
            .ok_or_else(|| ApiError::not_found(USER_NOT_FOUND))?;
        Ok(Json(user.into()))
    }

    /// Change a login
    ///
    /// Admins of the company and superadmins. Every field is optional: a field left out is
    /// kept, and `employee_id: null` unlinks the login from its employee. The role is `admin`
    /// or `employee`. Deactivating a login or changing its role ends its sessions. The company's
    /// last active admin cannot be demoted or deactivated (409 `last_admin`); an employee
    /// record has one login at most (409 `employee_already_linked`); a superadmin's login is
    /// changed by superadmins only (403).
    #[oai(
        path = "/company/:company_id/users/:user_id",
        method = "put",
        operation_id = "updateUser"
    )]
    async fn update_user(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        user_id: Path<Uuid>,
        body: Json<UpdateUser>,
    ) -> Result<Json<User>, ApiError> {
        let caller = auth.0;
        caller.tenant_for(company_id.0, USER_NOT_FOUND)?;
        caller.require_admin()?;
        let b = body.0;
        let change = UserChange {
            full_name: validate::not_null("full_name", b.full_name)?
                .map(|name| validate::required_text("full_name", &name, 200))
                .transpose()?,
            role: validate::not_null("role", b.role)?.map(TeamRole::role),
            is_active: validate::not_null("is_active", b.is_active)?,
            employee_id: validate::change(b.employee_id),
        };
        let audit = AuditContext::of(req, &caller);
        let user = change_user(&state, &caller, &audit, company_id.0, user_id.0, change).await?;
        Ok(Json(user.into()))
    }

    /// Delete a login
    ///
    /// Admins of the company and superadmins; an admin may delete their own login. Its
    /// sessions end with it. The company's last active admin cannot be deleted (409
    /// `last_admin`).
    #[oai(
        path = "/company/:company_id/users/:user_id",
        method = "delete",
        operation_id = "deleteUser"
    )]
    async fn delete_user(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        user_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let caller = auth.0;
        caller.tenant_for(company_id.0, USER_NOT_FOUND)?;
        caller.require_admin()?;
        let audit = AuditContext::of(req, &caller);
        delete_user(&state, &caller, &audit, company_id.0, user_id.0).await?;
        Ok(NoContent::NoContent)
    }
}

const USER_NOT_FOUND: &str = "User not found";

/// Changes a login of `company_id` and audits it: the flow behind `PUT
/// /company/{id}/users/{id}` and the console's teammates page. The accounts' rules (the last
/// admin, superadmins' logins) are the model's. The caller is an admin of the company.
pub async fn change_user(
    state: &AppState,
    caller: &crate::auth::Caller,
    audit: &AuditContext,
    company_id: Uuid,
    user_id: Uuid,
    change: UserChange,
) -> Result<model::user::User, ApiError> {
    let tenant = caller.tenant_for(company_id, USER_NOT_FOUND)?;
    caller.require_admin()?;
    let changer = changer(caller.is_superadmin());
    let user = state
        .db
        .write(&tenant, async |tx| {
            let (before, after) =
                model::user::change(&tx, company_id, user_id, changer, change).await?;
            let changes = Changes::between(Some(&before), Some(&after));
            let event = AuditEvent::new("user.updated", Target::user(after.id));
            model::audit::record(&tx, audit, event.changes(changes)).await?;
            Ok::<_, ChangeError>(after)
        })
        .await?;
    Ok(user)
}

/// Deletes a login of `company_id` and audits it: the flow behind `DELETE
/// /company/{id}/users/{id}` and the console's teammates page.
pub async fn delete_user(
    state: &AppState,
    caller: &crate::auth::Caller,
    audit: &AuditContext,
    company_id: Uuid,
    user_id: Uuid,
) -> Result<(), ApiError> {
    let tenant = caller.tenant_for(company_id, USER_NOT_FOUND)?;
    caller.require_admin()?;
    let changer = changer(caller.is_superadmin());
    state
        .db
        .write(&tenant, async |tx| {
            let user = model::user::delete(&tx, company_id, user_id, changer).await?;
            let changes = Changes::between(Some(&user), None);
            let event = AuditEvent::new("user.deleted", Target::user(user.id));
            model::audit::record(&tx, audit, event.changes(changes)).await?;
            Ok::<_, ChangeError>(())
        })
        .await?;
    Ok(())
}

/// A change of a login: every field optional, absent = unchanged.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateUser {
    #[oai(validator(max_length = 200))]
    pub full_name: MaybeUndefined<JsonString>,
    pub role: MaybeUndefined<TeamRole>,
    /// `false` disables the login: it can no longer sign in, and its sessions end.
    pub is_active: MaybeUndefined<bool>,
    /// The employee record this login may edit; `null` unlinks it.
    #[oai(nullable)]
    pub employee_id: MaybeUndefined<Uuid>,
}

fn changer(is_superadmin: bool) -> Changer {
    Changer { is_superadmin }
}

impl From<ChangeError> for ApiError {
    fn from(err: ChangeError) -> Self {
        match err {
            ChangeError::NotFound => ApiError::not_found(USER_NOT_FOUND),
            ChangeError::SuperadminProtected => {
                ApiError::forbidden("Only a platform superadmin can change a superadmin's login")
            }
            ChangeError::LastAdmin => ApiError::new(
                StatusCode::CONFLICT,
                "last_admin",
                "This is the company's last active admin: make another admin first",
            ),
            ChangeError::Db(e) => e.into(),
        }
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
