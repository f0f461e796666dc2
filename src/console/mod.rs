//! The HTML door: the admin console under `/app`, rendered on the server with maud, enhanced by
//! htmx when JavaScript runs (every form also works without it). Pages call the model layer
//! under the same tenant wall as the JSON API: a signed-in user's [`Caller`] makes the tenant.
//!
//! Around every console route, [`session::middleware`] finds the user from the session cookies
//! (refreshing quietly), gives the browser its CSRF token and refuses state-changing requests
//! from other origins; [`form::ConsoleForm`] checks the token of every form post.
//!
//! [`Caller`]: crate::auth::Caller

pub mod assets;
pub mod csrf;
pub mod error;
pub mod form;
pub mod layout;
pub mod session;

mod home;
// people pages
mod branding;
mod image_form;
mod people;
mod people_form;

// account pages
mod account;
mod emailed_links;
pub mod landing;
mod sessions;

// leads pages
mod lead_settings;
mod leads;

// dashboards pages
mod analytics;
mod chart;
mod live_feed;

// admin pages
mod audit;
mod import;
mod import_progress;
mod me;
mod teammates;

use std::sync::Arc;

use poem::{
    EndpointExt, Request, Response, Route, endpoint::BoxEndpoint, get, handler, post, web::Data,
};

use crate::api::AppState;
use error::ConsoleError;
use form::ConsoleForm;
use session::SignedIn;

/// The routes under `/app` (nested there by `startup::routes`), with the console's middleware.
pub fn routes() -> BoxEndpoint<'static> {
    Route::new()
        .at("/", get(home::page))
        // dashboards pages
        .at("/analytics", get(analytics::page))
        .at("/analytics/employees/:id", get(analytics::employee_detail))
        .at("/analytics/export.csv", get(analytics::export_csv))
        .at("/analytics/live", get(live_feed::stream))
        .at("/logout", post(logout))
        // account pages
        .at("/signup", get(account::signup_page).post(account::signup))
        .at("/login", get(account::login_page).post(account::login))
        .at(
            "/forgot-password",
            get(emailed_links::forgot_page).post(emailed_links::forgot),
        )
        .at(
            "/reset-password",
            get(emailed_links::reset_page).post(emailed_links::reset),
        )
        .at(
            "/accept-invitation",
            get(emailed_links::accept_page).post(emailed_links::accept),
        )
        .at(
            "/verify-email",
            get(emailed_links::verify_page).post(emailed_links::verify),
        )
        .at("/verify-email/resend", post(emailed_links::resend))
        .at("/sessions", get(sessions::page))
        .at("/sessions/logout-others", post(sessions::logout_others))
        .at("/sessions/:id/revoke", post(sessions::revoke))
        // people pages
        .at("/people", get(people::list))
        .at("/people/export.csv", get(people::export))
        .at("/people/new", get(people::new_person).post(people::create))
        .at("/people/:id", get(people::person).post(people::save))
        .at("/people/:id/photo", post(people::photo))
        .at(
            "/people/:id/delete",
            get(people::confirm_delete).post(people::delete),
        )
        // leads pages
        .at("/leads", get(leads::list))
        .at("/leads/export.csv", get(leads::export))
        .at(
            "/leads/settings",
            get(lead_settings::show).post(lead_settings::save),
        )
        .at("/leads/:id", get(leads::detail))
        .at("/leads/:id/vcard", get(leads::vcard))
        .at(
            "/leads/:id/delete",
            get(leads::confirm_erase).post(leads::erase),
        )
        .at("/branding", get(branding::show).post(branding::save))
        .at("/branding/logo", post(branding::upload_logo))
        .at("/branding/preview", get(branding::live_preview))
        // admin pages
        .at("/teammates", get(teammates::page))
        .at("/teammates/invite", post(teammates::invite))
        .at(
            "/teammates/invitations/:id/revoke",
            post(teammates::withdraw),
        )
        .at("/teammates/:id/role", post(teammates::change_role))
        .at("/teammates/:id/deactivate", post(teammates::set_active))
        .at("/teammates/:id/remove", post(teammates::remove))
        .at("/audit", get(audit::page))
        .at("/me", get(me::page).post(me::save))
        .at("/me/photo", post(me::photo))
        .at("/me/photo/remove", post(me::remove_photo))
        .at("/import", get(import::upload_form).post(import::upload))
        .at("/import/:id", get(import::columns_page))
        .at("/import/:id/preview", post(import::preview))
        .at("/import/:id/run", post(import::run))
        .at("/import/:id/progress", get(import_progress::page))
        .around(session::middleware)
        // Pages are compressed as they are sent (static files were compressed once, at start);
        // the live stream is not, so that none of its events is held back.
        .around(live_feed::compression)
        .data(Arc::new(session::Refreshes::default()))
        .boxed()
}

/// `POST /app/logout`: ends the session on the server (on every instance at once) and forgets
/// its cookies.
#[handler]
async fn logout(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    _form: ConsoleForm<std::collections::HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let caller = user.caller();
    let audit = crate::model::audit::AuditContext::of(req, caller);
    crate::api::auth::end_session(&state, caller, &audit, caller.session_id(), "logout").await?;
    let mut response = session::see_other(req, "/app/login");
    response.headers_mut().insert(
        session::SIGNED_OUT_MARK,
        poem::http::HeaderValue::from_static("1"),
    );
    Ok(response)
}
