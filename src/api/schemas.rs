//! Shapes of the JSON API that the endpoints of more than one resource answer with or take:
//! a login (`/auth/me` and the users of a company), the roles a teammate may be given (logins
//! and invitations), a plan (companies and subscriptions), what visitors do and on which device
//! (tracking and the dashboards).

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

use crate::{
    analytics::{Action, agent::Device},
    auth::Role,
    error::ApiError,
    model,
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
    /// Whether a link emailed to the address was followed (verification or password reset).
    pub email_verified: bool,
}

impl From<model::user::User> for User {
    fn from(u: model::user::User) -> Self {
        Self {
            id: u.id,
            company_id: u.company_id,
            email: u.email,
            full_name: u.full_name,
            role: u.role,
            is_active: u.is_active,
            employee_id: u.employee_id,
            created_at: u.created_at,
            email_verified: u.email_verified,
        }
    }
}

/// Roles an admin may hand out (a superadmin is made at the server's command line only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum TeamRole {
    Admin,
    Employee,
}

impl TeamRole {
    pub fn role(self) -> Role {
        match self {
            TeamRole::Admin => Role::Admin,
            TeamRole::Employee => Role::Employee,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Plan {
    /// 2 employees.
    Free,
    /// 50 employees.
    Professional,
    /// No limit.
    Enterprise,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Professional => "professional",
            Plan::Enterprise => "enterprise",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "free" => Ok(Plan::Free),
            "professional" => Ok(Plan::Professional),
            "enterprise" => Ok(Plan::Enterprise),
            other => Err(ApiError::internal(format!(
                "unknown plan {other} in the database"
            ))),
        }
    }
}

/// What a visitor may report doing on a card. A lead is not among them: the server counts it
/// when it stores the lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TrackAction {
    View,
    ScanQr,
    Call,
    Email,
    Whatsapp,
    DownloadVcard,
    LinkClick,
    Share,
}

impl From<TrackAction> for Action {
    fn from(action: TrackAction) -> Self {
        match action {
            TrackAction::View => Action::View,
            TrackAction::ScanQr => Action::ScanQr,
            TrackAction::Call => Action::Call,
            TrackAction::Email => Action::Email,
            TrackAction::Whatsapp => Action::Whatsapp,
            TrackAction::DownloadVcard => Action::DownloadVcard,
            TrackAction::LinkClick => Action::LinkClick,
            TrackAction::Share => Action::Share,
        }
    }
}

/// What a person did on a card, as the dashboards list it: what visitors report, and `lead`
/// (a contact left on the card, counted by the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum EventAction {
    View,
    ScanQr,
    Call,
    Email,
    Whatsapp,
    DownloadVcard,
    LinkClick,
    Share,
    Lead,
}

impl EventAction {
    /// `None` for a preview, which is no person's action.
    pub fn of(action: Action) -> Option<Self> {
        Some(match action {
            Action::View => EventAction::View,
            Action::ScanQr => EventAction::ScanQr,
            Action::Call => EventAction::Call,
            Action::Email => EventAction::Email,
            Action::Whatsapp => EventAction::Whatsapp,
            Action::DownloadVcard => EventAction::DownloadVcard,
            Action::LinkClick => EventAction::LinkClick,
            Action::Share => EventAction::Share,
            Action::Lead => EventAction::Lead,
            Action::Preview => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum DeviceKind {
    Mobile,
    Tablet,
    Desktop,
}

impl From<DeviceKind> for Device {
    fn from(device: DeviceKind) -> Self {
        match device {
            DeviceKind::Mobile => Device::Mobile,
            DeviceKind::Tablet => Device::Tablet,
            DeviceKind::Desktop => Device::Desktop,
        }
    }
}
