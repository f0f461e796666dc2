//! The bearer guard: a verified token becomes a [`Caller`], and a caller becomes a [`Tenant`].

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};
use uuid::Uuid;

use super::{Claims, JwtKeys, Role};
use crate::{db::Tenant, error::ApiError};

/// A JSON Web Token from `POST /api/auth/login` or `/api/auth/signup`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub Caller);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let keys = req
        .data::<JwtKeys>()
        .ok_or_else(|| ApiError::internal("JWT keys missing from request data"))?;
    keys.verify(&bearer.token)
        .map(Caller)
        .ok_or_else(|| ApiError::unauthorized("Invalid or expired token").into())
}

/// The authenticated user of a request.
#[derive(Clone, Debug)]
pub struct Caller(pub Claims);

impl Caller {
    pub fn user_id(&self) -> Uuid {
        self.0.sub
    }

    pub fn company_id(&self) -> Uuid {
        self.0.company_id
    }

    pub fn role(&self) -> Role {
        self.0.role
    }

    pub fn is_superadmin(&self) -> bool {
        self.0.role == Role::Superadmin
    }

    /// The caller's own company.
    pub fn tenant(&self) -> Tenant {
        Tenant::new(self.0.company_id, self.0.role)
    }

    /// The tenant named by a path. Another company answers exactly like a missing one, except to
    /// a superadmin, who may enter any company explicitly.
    pub fn tenant_for(&self, company_id: Uuid, missing: &'static str) -> Result<Tenant, ApiError> {
        if company_id == self.0.company_id || self.is_superadmin() {
            Ok(Tenant::new(company_id, self.0.role))
        } else {
            Err(ApiError::not_found(missing))
        }
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
