//! Who a transaction runs as: one company (`app.company_id`) and one role (`app.role`), the two
//! settings the row-level security policies of `sql/` read.
//!
//! A [`Tenant`] is a capability, not a value anyone fills in: its fields are private, and each
//! way of getting one is a named constructor for one situation. Handlers get theirs from the
//! verified caller (`auth::Caller`); the constructors for the other cases say who they stand for.

use poem_openapi::Enum;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

// The role of a login, as stored in `users.role` and seen by the policies as `app.role`.
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

/// Whose data a transaction may see: one company, as one role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// `None` only for maintenance: no company's rows are visible.
    company_id: Option<Uuid>,
    role: TenantRole,
    /// A signed-in caller's session, checked by the statement that sets the tenant (see
    /// `Db::read`): a transaction of an ended session, or of a token whose role is no longer the
    /// login's, never runs a statement.
    session: Option<SessionCheck>,
}

/// What a caller's token claims about its session, checked against the database by every
/// transaction of the request (`session_check` in `sql/V9__sessions.sql`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCheck {
    /// The caller's own company: for a superadmin entering another one, still its own.
    pub(super) company_id: Uuid,
    pub(super) session_id: Uuid,
    pub(super) user_id: Uuid,
    pub(super) role: Role,
}

impl SessionCheck {
    /// Only the bearer guard (`auth::Caller`) makes one, from the claims of a token it verified.
    pub(crate) fn new(company_id: Uuid, session_id: Uuid, user_id: Uuid, role: Role) -> Self {
        Self {
            company_id,
            session_id,
            user_id,
            role,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TenantRole {
    /// A signed-in user, or the operator at the command line.
    Member(Role),
    /// An anonymous visitor of the company's public cards: reads only.
    Visitor,
    /// An anonymous visitor leaving their contact on a card: the policies see a visitor
    /// (`app.role = 'public'`), which may add a lead but never read one.
    VisitorLeavingContact,
    /// The service recording what visitors did on the company's cards.
    Collector,
    /// A periodic job of the service itself, calling `SECURITY DEFINER` functions only.
    Maintenance,
}

impl Tenant {
    fn member(company_id: Uuid, role: Role) -> Self {
        Self {
            company_id: Some(company_id),
            role: TenantRole::Member(role),
            session: None,
        }
    }

    /// The company and role of a verified caller, whose session every transaction checks. Only
    /// the bearer guard (`auth::Caller`) calls this, with the claims of a token it checked.
    pub(crate) fn caller(session: SessionCheck) -> Self {
        Self {
            session: Some(session),
            ..Self::member(session.company_id, session.role)
        }
    }

    /// A superadmin entering a company named in the request (or one it is creating); its own
    /// session is still checked. Only the bearer guard calls this, for a caller it verified to
    /// be a superadmin.
    pub(crate) fn superadmin_entering(company_id: Uuid, session: SessionCheck) -> Self {
        Self {
            session: Some(session),
            ..Self::member(company_id, Role::Superadmin)
        }
    }

    /// The first admin of a company being signed up: the new company is its own tenant from
    /// the first statement on.
    pub fn signup(company_id: Uuid) -> Self {
        Self::member(company_id, Role::Admin)
    }

    /// The company of a login whose credentials were just proven (a password, an invitation),
    /// opening that login's session.
    pub fn session_opening(company_id: Uuid) -> Self {
        Self::member(company_id, Role::Admin)
    }

    /// The company of a login reached by email rather than by a token: a password reset asked
    /// for its address, or a link from one of its emails (a reset, a verification), once a
    /// `SECURITY DEFINER` lookup named the company. As an employee: the least a login can be.
    pub fn account_email(company_id: Uuid) -> Self {
        Self::member(company_id, Role::Employee)
    }

    /// The company of a session whose used refresh token came back (a copy is loose), once the
    /// `SECURITY DEFINER` refresh has ended that session and named its company: to record the
    /// revocation in the company's trail. As an employee: the least a login can be.
    pub fn session_reuse(company_id: Uuid) -> Self {
        Self::member(company_id, Role::Employee)
    }

    /// The webhook worker recording an attempt in the company of the delivery it claimed (the
    /// claim named it), and queuing the email to its admins when that attempt disabled the
    /// endpoint. As an employee: the least a login can be.
    pub fn webhook_delivery(company_id: Uuid) -> Self {
        Self::member(company_id, Role::Employee)
    }

    /// The operator at the server's command line (`create-superadmin`), acting as a superadmin
    /// in the platform company.
    pub fn platform_operator(platform_company_id: Uuid) -> Self {
        Self::member(platform_company_id, Role::Superadmin)
    }

    /// The operator at the server's command line acting on one company (`import-employees`),
    /// once the `card_company` lookup named it by its slug: as a superadmin in that company.
    pub fn operator_in(company_id: Uuid) -> Self {
        Self::member(company_id, Role::Superadmin)
    }

    /// The public reading one company's cards, after a `SECURITY DEFINER` slug lookup told us
    /// which company that is (so it exists). Policies see `app.role = 'public'`.
    pub fn visitor(company_id: Uuid) -> Self {
        Self {
            company_id: Some(company_id),
            role: TenantRole::Visitor,
            session: None,
        }
    }

    /// A visitor of one company's card leaving their contact (a lead) on it, once the slug
    /// lookup named the company: as [`Tenant::visitor`] to the policies, but the transaction may
    /// write (the lead, and the emails it causes).
    pub fn visitor_leaving_contact(company_id: Uuid) -> Self {
        Self {
            company_id: Some(company_id),
            role: TenantRole::VisitorLeavingContact,
            session: None,
        }
    }

    /// The analytics collector storing one company's events (`app.role = 'collector'`).
    pub fn collector(company_id: Uuid) -> Self {
        Self {
            company_id: Some(company_id),
            role: TenantRole::Collector,
            session: None,
        }
    }

    /// A job of the service itself (retention, partitions), not acting for any company: no
    /// company is set, so every tenant table shows no rows and accepts none; only the
    /// `SECURITY DEFINER` functions do anything (`app.role = 'maintenance'`, which no policy
    /// grants anything to).
    pub fn maintenance() -> Self {
        Self {
            company_id: None,
            role: TenantRole::Maintenance,
            session: None,
        }
    }

    /// The company whose rows the transaction sees (nil for maintenance, which sees none).
    pub fn company_id(&self) -> Uuid {
        self.company_id.unwrap_or_default()
    }

    /// The signed-in user's role, if a user it is.
    pub fn role(&self) -> Option<Role> {
        match self.role {
            TenantRole::Member(role) => Some(role),
            TenantRole::Visitor
            | TenantRole::VisitorLeavingContact
            | TenantRole::Collector
            | TenantRole::Maintenance => None,
        }
    }

    /// The session its transactions check, for a signed-in caller's tenant.
    pub(super) fn session(&self) -> Option<&SessionCheck> {
        self.session.as_ref()
    }

    pub(super) fn is_visitor(&self) -> bool {
        self.role == TenantRole::Visitor
    }

    /// `app.company_id` and `app.role`, as the transaction sets them.
    pub(super) fn settings(&self) -> (String, &'static str) {
        let company = self.company_id.map(|id| id.to_string()).unwrap_or_default();
        let role = match self.role {
            TenantRole::Member(role) => role.as_str(),
            TenantRole::Visitor | TenantRole::VisitorLeavingContact => "public",
            TenantRole::Collector => "collector",
            TenantRole::Maintenance => "maintenance",
        };
        (company, role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_names_no_company() {
        assert_eq!(
            Tenant::maintenance().settings(),
            (String::new(), "maintenance")
        );
        let id = Uuid::new_v4();
        assert_eq!(Tenant::visitor(id).settings(), (id.to_string(), "public"));
        assert_eq!(
            Tenant::visitor_leaving_contact(id).settings(),
            (id.to_string(), "public")
        );
        assert!(!Tenant::visitor_leaving_contact(id).is_visitor());
        assert_eq!(Tenant::signup(id).settings(), (id.to_string(), "admin"));
        assert!(Tenant::signup(id).session().is_none());
    }

    #[test]
    fn a_superadmin_entering_a_company_is_checked_by_its_own_session() {
        let (own, entered, session, user) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let check = SessionCheck::new(own, session, user, Role::Superadmin);
        let tenant = Tenant::superadmin_entering(entered, check);
        assert_eq!(tenant.settings(), (entered.to_string(), "superadmin"));
        assert_eq!(tenant.session(), Some(&check));
        let caller = Tenant::caller(SessionCheck::new(own, session, user, Role::Employee));
        assert_eq!(caller.settings(), (own.to_string(), "employee"));
    }
}
