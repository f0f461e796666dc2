//! The bearer guard: a verified token becomes a [`Caller`], and a caller becomes a [`Tenant`].
//! This is the only place a signed-in user's tenant is made.
//!
//! Verifying the token costs no database work; its session is checked by every transaction the
//! caller's tenant runs (the tenant carries a [`SessionCheck`]), in the statement that sets the
//! tenant: an ended session, a disabled or deleted login or a changed role refuse the request
//! with 401 on its first database operation, on every instance at once.

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};
use uuid::Uuid;

use super::{Claims, JwtKeys, Role};
use crate::{
    db::{Db, SessionCheck, Tenant},
    error::ApiError,
    model,
};

/// A JSON Web Token from `POST /api/auth/login` or `/api/auth/signup`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub Caller);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let keys = req
        .data::<JwtKeys>()
        .ok_or_else(|| ApiError::internal("JWT keys missing from request data"))?;
    Caller::verify(keys, &bearer.token)
        .ok_or_else(|| ApiError::unauthorized("Invalid or expired token").into())
}

/// The authenticated user of a request. Only made from a token that `JwtKeys` verified.
#[derive(Clone, Debug)]
pub struct Caller(Claims);

impl Caller {
    /// The caller a genuine, unexpired token names; `None` for anything else.
    pub fn verify(keys: &JwtKeys, token: &str) -> Option<Self> {
        keys.verify(token).map(Caller)
    }

    pub fn user_id(&self) -> Uuid {
        self.0.sub
    }

    pub fn company_id(&self) -> Uuid {
        self.0.company_id
    }

    pub fn role(&self) -> Role {
        self.0.role
    }

    /// The server-side session the caller's token belongs to.
    pub fn session_id(&self) -> Uuid {
        self.0.sid
    }

    /// What every transaction of the caller checks: its session, login and role.
    fn session(&self) -> SessionCheck {
        SessionCheck::new(self.0.company_id, self.0.sid, self.0.sub, self.0.role)
    }

    pub fn is_superadmin(&self) -> bool {
        self.0.role == Role::Superadmin
    }

    pub fn is_admin(&self) -> bool {
        self.require_admin().is_ok()
    }

    /// The caller's own company.
    pub fn tenant(&self) -> Tenant {
        Tenant::caller(self.session())
    }

    /// The tenant named by a path. Another company answers exactly like a missing one, except to
    /// a superadmin, who may enter any company explicitly.
    pub fn tenant_for(&self, company_id: Uuid, missing: &'static str) -> Result<Tenant, ApiError> {
        if company_id == self.0.company_id {
            Ok(self.tenant())
        } else if self.is_superadmin() {
            Ok(Tenant::superadmin_entering(company_id, self.session()))
        } else {
            Err(ApiError::not_found(missing))
        }
    }

    /// A superadmin entering any company, existing or being created; 403 to anyone else.
    pub fn enter_as_superadmin(&self, company_id: Uuid) -> Result<Tenant, ApiError> {
        self.require_superadmin()?;
        Ok(Tenant::superadmin_entering(company_id, self.session()))
    }

    /// The tenant of `/employees/{employee_id}`: the caller's own company, or for a superadmin
    /// the employee's company, looked up first.
    pub async fn employee_tenant(&self, db: &Db, employee_id: Uuid) -> Result<Tenant, ApiError> {
        if !self.is_superadmin() {
            return Ok(self.tenant());
        }
        let company = db
            .read(&self.tenant(), async |tx| {
                model::employee::company_for_superadmin(&tx, employee_id).await
            })
            .await?
            .ok_or_else(|| ApiError::not_found("Employee not found"))?;
        Ok(Tenant::superadmin_entering(company, self.session()))
    }

    /// Admins of the tenant and superadmins.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.0.role {
            Role::Superadmin | Role::Admin => Ok(()),
            Role::Employee => Err(ApiError::forbidden("Only a company admin can do this")),
        }
    }

    pub fn require_superadmin(&self) -> Result<(), ApiError> {
        match self.0.role {
            Role::Superadmin => Ok(()),
            _ => Err(ApiError::forbidden(
                "Only a platform superadmin can do this",
            )),
        }
    }
}
