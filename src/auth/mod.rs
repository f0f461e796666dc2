//! Who is calling: tokens, passwords (hashed on a bounded pool, held to a policy), the throttle
//! on guessing them, and the guard every protected endpoint takes.

pub mod guard;
pub mod jwt;
pub mod password;
pub mod policy;
pub mod throttle;

use poem_openapi::Enum;
use serde::{Deserialize, Serialize};

pub use guard::{BearerAuth, Caller};
pub use jwt::{Claims, JwtKeys};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Enum)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Role {
    /// Operates the platform: every company.
    Superadmin,
    /// Manages one company, its employees and its logins.
    Admin,
    /// Reads its company's employees and edits the one employee record linked to it.
    Employee,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Superadmin => "superadmin",
            Role::Admin => "admin",
            Role::Employee => "employee",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "superadmin" => Some(Role::Superadmin),
            "admin" => Some(Role::Admin),
            "employee" => Some(Role::Employee),
            _ => None,
        }
    }
}
