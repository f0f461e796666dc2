//! The JSON API: one module per resource, each an `OpenApi` impl, merged into one service.

pub mod account;
pub mod analytics;
pub mod attachment;
pub mod audit;
pub mod audit_context;
pub mod auth;
pub mod cards;
pub mod companies;
pub mod csv_export;
pub mod employee_import;
pub mod employees;
pub mod health;
pub mod http;
pub mod invitations;
pub mod json_string;
pub mod lead_intake;
pub mod leads;
pub mod media;
pub mod nul;
pub mod public_cards;
pub mod schemas;
pub mod spec;
pub mod subscriptions;
pub mod time_bound;
pub mod tracking;
pub mod upload;
pub mod users;
pub mod validate;
pub mod webhooks;

pub use json_string::JsonString;

use std::sync::Arc;

use poem_openapi::{OpenApiService, Tags};

use crate::{
    auth::{JwtKeys, password::HashingPool, throttle::LoginThrottle},
    db::Db,
    error::ApiError,
};

/// What every handler may reach, shared through the request's data.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub jwt: JwtKeys,
    /// Absolute base of public links (cards, QR codes, vCards), without a trailing slash.
    pub public_base_url: String,
    /// The caches of the public card path.
    pub cards: Arc<cards::PublicCards>,
    /// Records what visitors do on cards.
    pub analytics: Arc<crate::analytics::collector::Collector>,
    /// Memory and slots for decoding uploaded images.
    pub image_decodes: Arc<crate::card::budget::WorkBudget>,
    /// Hashes and checks passwords, a bounded number at a time.
    pub passwords: Arc<HashingPool>,
    /// Counts failed logins per account and per client address.
    pub throttle: Arc<LoginThrottle>,
    /// Records the login attempts that change nothing in the audit trail.
    pub login_attempts: Arc<audit_context::LoginAttempts>,
    /// Issues reset and verification tokens and queues their emails.
    pub account_mail: Arc<crate::mail::account::AccountMail>,
    /// The lead door's form tokens and limits.
    pub leads: Arc<lead_intake::LeadIntake>,
    /// Forgotten-password requests, handled off the request.
    pub password_resets: Arc<crate::mail::account::PasswordResets>,
    /// Fans announced analytics events out to the live feeds of this instance.
    pub live: Arc<crate::analytics::live::LiveHub>,
    /// `WEBHOOK_ALLOW_PRIVATE_NETWORKS`: webhook URLs may be `http` and point anywhere.
    pub webhook_private_networks: bool,
}

/// The product's sections, in its order: the spec lists them so (see [`ApiTags::ORDER`]).
#[derive(Tags, Clone, Copy)]
pub enum ApiTags {
    /// Sign up, log in, and the caller's own account.
    Auth,
    /// Companies and their branding.
    Companies,
    /// Employees and their cards.
    Employees,
    /// Logins of a company's admins and employees, and invitations to join.
    Users,
    /// Plans and the company's subscription.
    Subscriptions,
    /// Public cards, their QR codes and vCards: no authentication.
    Cards,
    /// Contacts that visitors leave on cards, and their erasure.
    Leads,
    /// What people do on cards: tracking and dashboards.
    Analytics,
    /// Signed HTTP calls to the company's own endpoints when something happens.
    Webhooks,
    /// Liveness and readiness.
    Health,
}

impl ApiTags {
    /// Every tag in declaration order (poem-openapi itself sorts tags by name).
    pub const ORDER: [ApiTags; 10] = [
        ApiTags::Auth,
        ApiTags::Companies,
        ApiTags::Employees,
        ApiTags::Users,
        ApiTags::Subscriptions,
        ApiTags::Cards,
        ApiTags::Leads,
        ApiTags::Analytics,
        ApiTags::Webhooks,
        ApiTags::Health,
    ];
}

pub type Apis = (
    auth::AuthApi,
    account::AccountApi,
    companies::CompaniesApi,
    employees::EmployeesApi,
    cards::CardsApi,
    // Tuples of APIs hold 16 at most: the lead door and the leads are one.
    (lead_intake::LeadIntakeApi, leads::LeadsApi),
    tracking::TrackingApi,
    analytics::AnalyticsApi,
    analytics::LiveFeedApi,
    users::UsersApi,
    // Tuples of APIs hold 16 at most: the two invitation doors are one.
    (
        invitations::InvitationsApi,
        invitations::AcceptInvitationApi,
    ),
    subscriptions::SubscriptionsApi,
    audit::AuditApi,
    health::HealthApi,
    employee_import::EmployeeImportApi,
    webhooks::WebhooksApi,
);

/// The API with its OpenAPI description, to be nested under `/api`.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            auth::AuthApi,
            account::AccountApi,
            companies::CompaniesApi,
            employees::EmployeesApi,
            cards::CardsApi,
            (lead_intake::LeadIntakeApi, leads::LeadsApi),
            tracking::TrackingApi,
            analytics::AnalyticsApi,
            analytics::LiveFeedApi,
            users::UsersApi,
            (
                invitations::InvitationsApi,
                invitations::AcceptInvitationApi,
            ),
            subscriptions::SubscriptionsApi,
            audit::AuditApi,
            health::HealthApi,
            employee_import::EmployeeImportApi,
            webhooks::WebhooksApi,
        ),
        "CallingCard",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Digital business cards for companies. Every error answers \
         `{\"detail\": \"…\", \"code\": \"…\"}`.",
    )
    .server("/api")
}

/// The spec as served and as committed in `openapi/openapi.json`: poem-openapi's, completed
/// by [`spec::complete`].
pub fn spec_json() -> String {
    serde_json::to_string_pretty(&spec_value()).expect("a JSON value serializes")
}

pub fn spec_value() -> serde_json::Value {
    let tag_order: Vec<&str> = ApiTags::ORDER.iter().map(Tags::name).collect();
    spec::complete(&service().spec(), &tag_order)
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 100;

/// `skip`/`limit` query parameters as SQL OFFSET/LIMIT.
pub fn page(skip: Option<u32>, limit: Option<u32>) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::unprocessable(
            "invalid_parameter",
            format!("`limit` must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    Ok((i64::from(skip.unwrap_or(0)), i64::from(limit)))
}

/// 201 with the created resource.
#[derive(poem_openapi::ApiResponse)]
pub enum Created<T: poem_openapi::types::ToJSON + Send + Sync> {
    #[oai(status = 201)]
    Created(poem_openapi::payload::Json<T>),
}

/// 200 with one page of a list, and the size of the whole list.
#[derive(poem_openapi::ApiResponse)]
pub enum Paged<T: poem_openapi::types::ToJSON + Send + Sync> {
    #[oai(status = 200)]
    Ok(
        poem_openapi::payload::Json<Vec<T>>,
        /// How many items the whole list holds.
        #[oai(header = "X-Total-Count")]
        i64,
    ),
}

/// 204: done, nothing to say.
#[derive(poem_openapi::ApiResponse)]
pub enum NoContent {
    #[oai(status = 204)]
    NoContent,
}
