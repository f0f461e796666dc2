//! The tenancy matrix: every endpoint of the API against six kinds of caller, with the exact
//! status of each cell, and proof that nothing of one company reaches another: another company's
//! resources answer byte for byte like missing ones, no response to an outsider carries A's data
//! (beyond the public card, which is meant for anyone), and no refused write changes A (checked
//! below HTTP, with the superuser connection).
//!
//! All mismatching cells are reported at once, with the observed matrix.

use std::{
    collections::BTreeSet,
    io::Cursor,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::helpers::{self, DESKTOP, JWT_SECRET, Session, TestApp, spawn_app};
use jsonwebtoken::{EncodingKey, Header, encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// Who calls. Company A owns every resource the matrix addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Principal {
    /// The admin of company A.
    OwnAdmin,
    /// The admin of company B.
    OtherAdmin,
    /// A login of company A with role `employee`, linked to employee EA.
    Employee,
    /// A platform superadmin.
    Superadmin,
    /// No `Authorization` header at all.
    NoToken,
    /// A JWT claiming to be A's admin, signed with another secret.
    Forged,
}

use Principal::*;

/// The columns of the matrix, in order.
const PRINCIPALS: [Principal; 6] = [OwnAdmin, OtherAdmin, Employee, Superadmin, NoToken, Forged];

impl Principal {
    /// Callers who must never see anything of company A.
    fn is_outsider(self) -> bool {
        matches!(self, OtherAdmin | NoToken | Forged)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

use Verb::*;

impl Verb {
    fn method(self) -> Method {
        match self {
            Get => Method::GET,
            Post => Method::POST,
            Put => Method::PUT,
            Delete => Method::DELETE,
        }
    }
}

/// The request body of a row, made fresh for every cell (emails and names are unique).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Empty,
    /// A new company and admin.
    Signup,
    /// The credentials of a login of its own company (not A's).
    Login,
    /// A wrong current password: nothing changes even when the caller is allowed.
    WrongPassword,
    /// A password reset asked for an address no account has.
    ForgotUnknown,
    /// A reset, or (without the password) a verification, with a token that names nothing.
    UnknownResetToken,
    UnknownToken,
    NewCompany,
    /// A new name and new branding.
    Rebrand,
    NewEmployee,
    EditEmployee,
    /// A new *admin* login: the worst thing to let an outsider create.
    NewAdminLogin,
    Enterprise,
    /// A fresh 64×64 PNG of two random colors, sent raw as `image/png`.
    Png,
    /// A visitor's call from the card, as the card page's beacon reports it from a browser (a
    /// bot's user agent would only count as a preview).
    Call,
    /// A well-formed refresh token that was never issued.
    UnknownRefresh,
    /// A new name for a login, and its deactivation.
    EditLogin,
    /// An invitation of a new admin by email.
    NewInvitation,
    /// Accepting an invitation with a token no invitation has.
    UnknownInvitation,
    /// One employee to import, as JSON rows.
    ImportRows,
    /// A webhook to a public address, for an event nothing in the matrix sends (so no worker
    /// touches it while the matrix runs).
    NewWebhook,
    /// A new description of a webhook.
    EditWebhook,
    /// A lead left on a card with a start token no form was served with: refused (422), so
    /// nothing of A changes whoever sends it.
    LeadWithoutForm,
}

/// What a row does to company A.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    /// A success changes A's data.
    Writes,
    /// A's data never changes.
    Reads,
    /// A public page of A's card (of employee EA): it never changes A, and it shows the card to
    /// anyone: only what is *not* on the card must be kept from outsiders.
    Public,
    /// As [`Effect::Public`], but serving the page also counts the visit in A's analytics (a
    /// page view, a vCard download), stored after the answer (the matrix waits for it after the
    /// row, see [`World::settle_analytics`]): A's analytics change by design, nothing else of A
    /// does.
    Counted,
    /// The tracking beacon: public, and it writes A's analytics (the event and its rollups) by
    /// design, before it answers. Nothing else of A changes, and the answer carries nothing of
    /// A but the id of the event it stored.
    Tracks,
}

impl Effect {
    /// Anyone may call it, B's admin too: B gets what anyone gets, not a missing resource's 404.
    fn is_public(self) -> bool {
        matches!(self, Effect::Public | Effect::Counted | Effect::Tracks)
    }

    /// It shows A's card (the company and EA) to anyone.
    fn shows_card(self) -> bool {
        matches!(self, Effect::Public | Effect::Counted)
    }

    /// It writes A's analytics whoever calls it.
    fn writes_analytics(self) -> bool {
        matches!(self, Effect::Counted | Effect::Tracks)
    }
}

/// One endpoint: a row of the matrix. `path` is under `/api`, unless it starts with `!`: then
/// it is at the root of the site (the `!` dropped); it may end in a query string (`?by=device`),
/// sent as it is once its placeholders are filled. In it, `{A}` is company A, `{EA}` the
/// employee linked to the employee login, `{EA2}` another employee of A, `{X}` a fresh employee
/// of A created for each cell, `{Y}` a fresh login, `{I}` a fresh pending invitation and `{WH}`
/// a fresh (disabled) webhook of A
/// (see [`World::fresh`]), `{SA}` the session of A's admin; `{CS}` is A's slug, `{ESA}` EA's public slug, `{PHOTO}` the hash
/// of EA's photo and `{LOGO}` that of A's logo (see [`World::restore_images`]).
struct Row {
    verb: Verb,
    path: &'static str,
    body: Body,
    effect: Effect,
    /// The exact status for each principal, in the order of [`PRINCIPALS`].
    expect: [u16; 6],
}

const fn row(verb: Verb, path: &'static str, body: Body, effect: Effect, expect: [u16; 6]) -> Row {
    Row {
        verb,
        path,
        body,
        effect,
        expect,
    }
}

const W: Effect = Effect::Writes; // a success writes A's data
const R: Effect = Effect::Reads; // A's data never changes
const P: Effect = Effect::Public; // A's public card: anyone may see it, nothing changes
const C: Effect = Effect::Counted; // as P, but the visit is counted in A's analytics
const T: Effect = Effect::Tracks; // the public beacon: writes A's analytics, shows nothing of A

/// The width of the path column in reports: the longest path, and a space.
const PATH_WIDTH: usize = {
    let mut width = 0;
    let mut i = 0;
    while i < MATRIX.len() {
        if MATRIX[i].path.len() > width {
            width = MATRIX[i].path.len();
        }
        i += 1;
    }
    width + 1
};

/// The endpoints; column `E` is the row's [`Effect`] (`W`, `R`, `P`, `C` or `T` above).
#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //  verb    path                                                      body                  E   own  other empl  super none  forged
    row(Post,   "/auth/signup",                                           Body::Signup,         R, [201, 201,  201, 201,  201, 201]),
    row(Post,   "/auth/login",                                            Body::Login,          R, [200, 200,  200, 200,  200, 200]),
    row(Get,    "/auth/me",                                               Body::Empty,          R, [200, 200,  200, 200,  401, 401]),
    row(Post,   "/auth/change-password",                                  Body::WrongPassword,  R, [403, 403,  403, 403,  401, 401]),
    row(Post,   "/auth/forgot-password",                                  Body::ForgotUnknown,  R, [202, 202,  202, 202,  202, 202]),
    row(Post,   "/auth/reset-password",                                   Body::UnknownResetToken, R, [404, 404, 404, 404, 404, 404]),
    row(Post,   "/auth/verify-email",                                     Body::UnknownToken,   R, [404, 404,  404, 404,  404, 404]),
    row(Post,   "/auth/resend-verification",                              Body::Empty,          W, [202, 202,  202, 202,  401, 401]),
    row(Post,   "/auth/refresh",                                          Body::UnknownRefresh, R, [401, 401,  401, 401,  401, 401]),
    row(Get,    "/auth/sessions",                                         Body::Empty,          R, [200, 200,  200, 200,  401, 401]),
    row(Delete, "/auth/sessions/{SA}",                                    Body::Empty,          W, [204, 404,  404, 404,  401, 401]),
    row(Post,   "/auth/logout",                                           Body::Empty,          W, [204, 204,  204, 204,  401, 401]),
    row(Post,   "/auth/logout-all",                                       Body::Empty,          W, [204, 204,  204, 204,  401, 401]),
    row(Post,   "/company",                                               Body::NewCompany,     R, [403, 403,  403, 201,  401, 401]),
    row(Get,    "/company",                                               Body::Empty,          R, [200, 200,  200, 200,  401, 401]),
    row(Get,    "/company/{A}",                                           Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Put,    "/company/{A}",                                           Body::Rebrand,        W, [200, 404,  403, 200,  401, 401]),
    row(Post,   "/company/{A}/employees",                                 Body::NewEmployee,    W, [201, 404,  403, 201,  401, 401]),
    row(Get,    "/company/{A}/employees",                                 Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Get,    "/employees/{EA}",                                        Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Put,    "/employees/{EA}",                                        Body::EditEmployee,   W, [200, 404,  200, 200,  401, 401]),
    row(Put,    "/employees/{EA2}",                                       Body::EditEmployee,   W, [200, 404,  403, 200,  401, 401]),
    row(Delete, "/employees/{X}",                                         Body::Empty,          W, [204, 404,  403, 204,  401, 401]),
    row(Post,   "/company/{A}/users",                                     Body::NewAdminLogin,  W, [201, 404,  403, 201,  401, 401]),
    row(Get,    "/company/{A}/users",                                     Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Get,    "/company/{A}/users/{Y}",                                 Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Put,    "/company/{A}/users/{Y}",                                 Body::EditLogin,      W, [200, 404,  403, 200,  401, 401]),
    row(Delete, "/company/{A}/users/{Y}",                                 Body::Empty,          W, [204, 404,  403, 204,  401, 401]),
    row(Post,   "/company/{A}/invitations",                               Body::NewInvitation,  W, [201, 404,  403, 201,  401, 401]),
    row(Get,    "/company/{A}/invitations",                               Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Delete, "/company/{A}/invitations/{I}",                           Body::Empty,          W, [204, 404,  403, 204,  401, 401]),
    row(Post,   "/auth/accept-invitation",                                Body::UnknownInvitation, R, [404, 404, 404, 404,  404, 404]),
    row(Get,    "/subscriptions/plans",                                   Body::Empty,          R, [200, 200,  200, 200,  200, 200]),
    row(Get,    "/subscriptions/current",                                 Body::Empty,          R, [200, 200,  200, 200,  401, 401]),
    row(Put,    "/company/{A}/subscription",                              Body::Enterprise,     W, [403, 403,  403, 200,  401, 401]),
    row(Get,    "/health",                                                Body::Empty,          R, [200, 200,  200, 200,  200, 200]),
    row(Put,    "/employees/{EA}/photo",                                  Body::Png,            W, [200, 404,  200, 200,  401, 401]),
    row(Put,    "/employees/{EA2}/photo",                                 Body::Png,            W, [200, 404,  403, 200,  401, 401]),
    row(Delete, "/employees/{EA}/photo",                                  Body::Empty,          W, [204, 404,  204, 204,  401, 401]),
    row(Delete, "/employees/{EA2}/photo",                                 Body::Empty,          W, [204, 404,  403, 204,  401, 401]),
    row(Put,    "/company/{A}/logo",                                      Body::Png,            W, [200, 404,  403, 200,  401, 401]),
    row(Delete, "/company/{A}/logo",                                      Body::Empty,          W, [204, 404,  403, 204,  401, 401]),
    row(Get,    "/card/{CS}/{ESA}",                                       Body::Empty,          P, [200, 200,  200, 200,  200, 200]),
    row(Get,    "/card/{CS}/{ESA}/qr.png",                                Body::Empty,          P, [200, 200,  200, 200,  200, 200]),
    row(Get,    "/card/{CS}/{ESA}/qr.svg",                                Body::Empty,          P, [200, 200,  200, 200,  200, 200]),
    row(Get,    "/card/{CS}/{ESA}/vcard",                                 Body::Empty,          C, [200, 200,  200, 200,  200, 200]),
    row(Get,    "!/card/{CS}/{ESA}",                                      Body::Empty,          C, [200, 200,  200, 200,  200, 200]),
    row(Get,    "!/media/photos/{A}/{PHOTO}.jpg",                         Body::Empty,          P, [200, 200,  200, 200,  200, 200]),
    row(Get,    "!/media/logos/{A}/{LOGO}.png",                           Body::Empty,          P, [200, 200,  200, 200,  200, 200]),
    row(Get,    "/analytics/company/{A}",                                 Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Get,    "/analytics/company/{A}/timeseries",                      Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Get,    "/analytics/company/{A}/breakdown?by=device",             Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Get,    "/analytics/company/{A}/leaderboard",                     Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Get,    "/analytics/company/{A}/export.csv",                      Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Get,    "/analytics/employee/{EA}",                               Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Get,    "/analytics/employee/{EA}/timeseries",                    Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Get,    "/analytics/employee/{EA2}",                              Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Post,   "/analytics/track?company_slug={CS}&employee_slug={ESA}", Body::Call,           T, [200, 200,  200, 200,  200, 200]),
    row(Get,    "/company/{A}/audit",                                     Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Post,   "/company/{A}/employees/import",                          Body::ImportRows,     W, [200, 404,  403, 200,  401, 401]),
    row(Post,   "/company/{A}/webhooks",                                  Body::NewWebhook,     W, [201, 404,  403, 201,  401, 401]),
    row(Get,    "/company/{A}/webhooks",                                  Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Get,    "/company/{A}/webhooks/{WH}",                             Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Put,    "/company/{A}/webhooks/{WH}",                             Body::EditWebhook,    W, [200, 404,  403, 200,  401, 401]),
    row(Post,   "/company/{A}/webhooks/{WH}/test",                        Body::Empty,          W, [202, 404,  403, 202,  401, 401]),
    row(Get,    "/company/{A}/webhooks/{WH}/deliveries",                  Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Delete, "/company/{A}/webhooks/{WH}",                             Body::Empty,          W, [204, 404,  403, 204,  401, 401]),
    row(Post,   "/card/{CS}/{ESA}/leads",                                 Body::LeadWithoutForm, R, [422, 422, 422, 422,  422, 422]),
    row(Get,    "/company/{A}/leads",                                     Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Get,    "/company/{A}/leads/export.csv",                          Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Get,    "/leads/{LA}",                                            Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Get,    "/leads/{LA2}",                                           Body::Empty,          R, [200, 404,  404, 200,  401, 401]),
    row(Get,    "/leads/{LA}/vcard",                                      Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Delete, "/leads/{L}",                                             Body::Empty,          W, [204, 404,  403, 204,  401, 401]),
];

impl Row {
    fn expected(&self, principal: Principal) -> u16 {
        let column = PRINCIPALS
            .iter()
            .position(|p| *p == principal)
            .expect("a principal of the matrix");
        self.expect[column]
    }

    /// The `code` of an expected error.
    fn expected_code(&self, status: u16) -> Option<&'static str> {
        match status {
            401 if self.body == Body::UnknownRefresh => Some("invalid_refresh_token"),
            401 => Some("unauthorized"),
            403 if self.body == Body::WrongPassword => Some("wrong_password"),
            404 if self.body == Body::UnknownInvitation => Some("invitation_not_found"),
            404 if matches!(self.body, Body::UnknownResetToken | Body::UnknownToken) => {
                Some("invalid_token")
            }
            422 if self.body == Body::LeadWithoutForm => Some("form_token_invalid"),
            403 => Some("forbidden"),
            404 => Some("not_found"),
            _ => None,
        }
    }
}

/// The two companies, their people, and the superuser connection that watches A's data.
struct World {
    admin_a: Session,
    admin_b: Session,
    employee: Session,
    superadmin: Session,
    forged: String,
    /// The employee record linked to `employee`.
    ea: Uuid,
    /// Another employee of A, not linked to `employee`.
    ea2: Uuid,
    /// A login of a third company, for the login row.
    login_probe: Session,
    /// Leads of A left on EA's card and on EA2's.
    lead_ea: Uuid,
    lead_ea2: Uuid,
    /// A's slug and EA's public slug, for the public card's rows; EA2's, for seeding analytics.
    company_slug: String,
    ea_slug: String,
    ea2_slug: String,
    /// The images A holds before every cell, in the order of [`CURRENT_IMAGES`].
    images: [Fixture; 3],
    owner: tokio_postgres::Client,
}

/// An image A holds before every cell (see [`World::restore_images`]).
struct Fixture {
    /// Where A's admin uploads it (under `/api`).
    path: String,
    png: Vec<u8>,
    /// Its hash once stored (empty until the setup has uploaded it).
    hash: String,
}

/// The hashes of EA's photo, EA2's photo and A's logo, read as the superuser.
const CURRENT_IMAGES: &str = "SELECT (SELECT photo_hash FROM employees WHERE id = $1),
            (SELECT photo_hash FROM employees WHERE id = $2),
            (SELECT logo_hash FROM companies WHERE id = $3)";

const SIGNUP_PASSWORD: &str = helpers::ADMIN_PASSWORD;

/// A lead of `company` left on `employee`'s card, stored as the superuser; its id.
async fn add_lead(owner: &tokio_postgres::Client, company: Uuid, employee: Uuid) -> Uuid {
    let id = Uuid::new_v4();
    owner
        .execute(
            "INSERT INTO leads (company_id, id, employee_id, employee_name, name, email)
             VALUES ($1, $2, $3, 'Card Owner', $4, $5)",
            &[
                &company,
                &id,
                &employee,
                &format!("Lead Alpha {}", &id.simple().to_string()[..8]),
                &format!("lead-{}@alpha-tenant.test", id.simple()),
            ],
        )
        .await
        .expect("adding a lead to A");
    id
}
const FORGING_SECRET: &[u8] = b"not-the-server-secret-0123456789abcdef";

impl World {
    async fn build(app: &TestApp) -> World {
        let superadmin = app.superadmin().await;
        let admin_a = app.signup("Acme Alpha Tenant").await;
        let admin_b = app.signup("Bravo Beta Tenant").await;
        app.set_plan(&superadmin, admin_a.company_id, "enterprise")
            .await;
        let ea = hire(
            app,
            &admin_a,
            "Eve Alpha-Linked",
            "eve.alpha@alpha-tenant.test",
        )
        .await;
        let ea2 = hire(
            app,
            &admin_a,
            "Ed Alpha-Unlinked",
            "ed.alpha@alpha-tenant.test",
        )
        .await;
        hire(app, &admin_b, "Bob Beta", "bob.beta@beta-tenant.test").await;
        let employee = app.add_user(&admin_a, "employee", Some(ea)).await;
        let login_probe = app.signup("Login Probe Gamma").await;

        // The forged token differs from a genuine one by its signature only.
        let forged = token_for(&admin_a, FORGING_SECRET);
        app.get(
            "/api/auth/me",
            Some(&token_for(&admin_a, JWT_SECRET.as_bytes())),
        )
        .await
        .assert_status(200);
        let me = app.get("/api/auth/me", Some(&employee.token)).await;
        me.assert_status(200);
        assert_eq!(me.body["role"], "employee");
        assert_eq!(me.body["employee_id"], ea.to_string());

        let owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
        let slugs = owner
            .query_one(
                "SELECT (SELECT slug FROM companies WHERE id = $1),
                        (SELECT public_slug FROM employees WHERE id = $2),
                        (SELECT public_slug FROM employees WHERE id = $3)",
                &[&admin_a.company_id, &ea, &ea2],
            )
            .await
            .expect("reading the slugs");
        let fixture = |path: String, colors| Fixture {
            path,
            png: png_of(colors),
            hash: String::new(),
        };
        let images = [
            fixture(
                format!("/employees/{ea}/photo"),
                [[200, 40, 40], [40, 40, 200]],
            ),
            fixture(
                format!("/employees/{ea2}/photo"),
                [[40, 160, 40], [250, 250, 250]],
            ),
            fixture(
                format!("/company/{}/logo", admin_a.company_id),
                [[20, 20, 20], [240, 200, 0]],
            ),
        ];
        let lead_ea = add_lead(&owner, admin_a.company_id, ea).await;
        let lead_ea2 = add_lead(&owner, admin_a.company_id, ea2).await;
        let mut world = World {
            admin_a,
            admin_b,
            employee,
            superadmin,
            forged,
            ea,
            ea2,
            login_probe,
            lead_ea,
            lead_ea2,
            company_slug: slugs.get(0),
            ea_slug: slugs.get(1),
            ea2_slug: slugs.get(2),
            images,
            owner,
        };
        world.restore_images(app).await;
        let hashes = world.current_images().await;
        for (image, hash) in world.images.iter_mut().zip(hashes) {
            image.hash = hash.expect("an image uploaded in setup");
        }
        let distinct: BTreeSet<&str> = world.images.iter().map(|i| i.hash.as_str()).collect();
        assert_eq!(distinct.len(), 3, "the setup images must differ");
        world.seed_analytics(app).await;
        world
    }

    /// A few events on the cards of EA and EA2, so that A's dashboards hold data an outsider
    /// must not see (their ids are among A's fingerprints); A's admin sees them all.
    async fn seed_analytics(&self, app: &TestApp) {
        let seeded = [
            self.track(app, &self.ea_slug, json!({"action": "view"}))
                .await,
            self.track(app, &self.ea_slug, json!({"action": "download_vcard"}))
                .await,
            self.track(
                app,
                &self.ea2_slug,
                json!({"action": "link_click", "link": "linkedin", "region": "DE"}),
            )
            .await,
        ];
        let path = format!("/analytics/company/{}", self.company_a());
        let listed = send(app, Get, &path, Some(&self.admin_a.token), None).await;
        assert_eq!(listed.status, 200, "GET {path}: {}", listed.text());
        for id in seeded {
            assert!(
                listed.text().contains(&id.to_string()),
                "A's admin does not see the seeded event {id}: {}",
                listed.text()
            );
        }
    }

    /// Reports `body` on the card of A's employee `employee_slug` with the beacon, from a
    /// browser; the id of the stored event. The answer comes once the event's batch is
    /// committed, and with it every event queued before (the writer commits in order).
    async fn track(&self, app: &TestApp, employee_slug: &str, body: Value) -> Uuid {
        let path = format!(
            "/analytics/track?company_slug={}&employee_slug={employee_slug}",
            self.company_slug
        );
        let tracked = send(app, Post, &path, None, Some(Payload::Beacon(body))).await;
        assert_eq!(tracked.status, 200, "POST {path}: {}", tracked.text());
        let body = tracked.json().unwrap_or_default();
        assert_eq!(body["status"], "tracked", "POST {path}: {body}");
        body["event_id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("POST {path}: no event id in {body}"))
    }

    /// Waits until the visits the card pages counted after answering are stored, so that they
    /// cannot land in a later cell: a beacon is answered once everything queued before it is.
    async fn settle_analytics(&self, app: &TestApp) {
        self.track(app, &self.ea2_slug, json!({"action": "share"}))
            .await;
    }

    async fn current_images(&self) -> [Option<String>; 3] {
        let row = self
            .owner
            .query_one(CURRENT_IMAGES, &[&self.ea, &self.ea2, &self.company_a()])
            .await
            .expect("reading A's images");
        [row.get(0), row.get(1), row.get(2)]
    }

    /// Puts back (as A's admin) any setup image a cell replaced or removed, so that before every
    /// cell EA and EA2 have their photo and A its logo: every refused delete has something to
    /// delete, and `{PHOTO}` and `{LOGO}` name stored images.
    async fn restore_images(&self, app: &TestApp) {
        let current = self.current_images().await;
        for (image, hash) in self.images.iter().zip(current) {
            if !image.hash.is_empty() && hash.as_deref() == Some(image.hash.as_str()) {
                continue;
            }
            let token = Some(self.admin_a.token.as_str());
            let body = Some(Payload::Png(image.png.clone()));
            let put = send(app, Put, &image.path, token, body).await;
            assert_eq!(put.status, 200, "PUT {}: {}", image.path, put.text());
        }
        let restored = self.current_images().await;
        for (image, hash) in self.images.iter().zip(restored) {
            assert!(
                image.hash.is_empty() || hash.as_deref() == Some(image.hash.as_str()),
                "{} restored to {hash:?}, not {}",
                image.path,
                image.hash
            );
        }
    }

    /// Brings back (as the superuser) the sessions of the principals that a cell ended (a
    /// logout, a session deleted), so that every cell starts with all of them live.
    async fn restore_sessions(&self) {
        let sessions: Vec<Uuid> = [
            &self.admin_a,
            &self.admin_b,
            &self.employee,
            &self.superadmin,
        ]
        .iter()
        .map(|s| helpers::session_id_of(&s.token))
        .collect();
        self.owner
            .execute(
                "UPDATE sessions SET revoked_at = NULL, revoked_reason = NULL
                 WHERE id = ANY($1) AND revoked_at IS NOT NULL",
                &[&sessions],
            )
            .await
            .expect("restoring the principals' sessions");
    }

    fn company_a(&self) -> Uuid {
        self.admin_a.company_id
    }

    fn token(&self, principal: Principal) -> Option<&str> {
        match principal {
            OwnAdmin => Some(&self.admin_a.token),
            OtherAdmin => Some(&self.admin_b.token),
            Employee => Some(&self.employee.token),
            Superadmin => Some(&self.superadmin.token),
            NoToken => None,
            Forged => Some(&self.forged),
        }
    }

    /// `path` with the placeholders that are not ids (slugs, image hashes) filled in.
    fn fill(&self, path: &str) -> String {
        path.replace("{CS}", &self.company_slug)
            .replace("{ESA}", &self.ea_slug)
            .replace("{PHOTO}", &self.images[0].hash)
            .replace("{LOGO}", &self.images[2].hash)
    }

    /// `template` with `{Y}`, `{I}` and `{WH}` made: a fresh login (role `employee`), a fresh
    /// pending invitation and a fresh webhook of A, stored as the superuser (no password to hash,
    /// no email to send).
    async fn fresh(&self, template: &str) -> String {
        let mut path = template.to_owned();
        if path.contains("{Y}") {
            let id = Uuid::new_v4();
            self.owner
                .execute(
                    "INSERT INTO users (company_id, id, email, password_hash, full_name, role)
                     VALUES ($1, $2, $3, 'not-a-hash', 'Fresh Login', 'employee')",
                    &[
                        &self.company_a(),
                        &id,
                        &format!("fresh-{}@alpha-tenant.test", id.simple()),
                    ],
                )
                .await
                .expect("adding a fresh login to A");
            path = path.replace("{Y}", &id.to_string());
        }
        if path.contains("{WH}") {
            // Disabled: no event queues anything for it, so no worker changes it meanwhile.
            let id = Uuid::new_v4();
            self.owner
                .execute(
                    "INSERT INTO webhooks (company_id, id, url, events, secret, enabled,
                                           disabled_reason, disabled_at)
                     VALUES ($1, $2::uuid, 'https://93.184.215.14/fresh', ARRAY['employee.created'],
                             'whsec_' || md5($2::text) || md5($2::text), false, 'admin', now())",
                    &[&self.company_a(), &id],
                )
                .await
                .expect("adding a fresh webhook to A");
            path = path.replace("{WH}", &id.to_string());
        }
        if path.contains("{I}") {
            let id = Uuid::new_v4();
            self.owner
                .execute(
                    "INSERT INTO invitations (company_id, id, email, role, token_hash, invited_by,
                                              expires_at)
                     VALUES ($1, $2, $3, 'employee', sha256(convert_to($3, 'UTF8')), $4,
                             now() + interval '7 days')",
                    &[
                        &self.company_a(),
                        &id,
                        &format!("invited-{}@alpha-tenant.test", id.simple()),
                        &self.admin_a.user_id,
                    ],
                )
                .await
                .expect("adding a fresh invitation to A");
            path = path.replace("{I}", &id.to_string());
        }
        path
    }

    /// The id a path template names, if any, creating the fresh employee `{X}` stands for.
    async fn target(&self, app: &TestApp, template: &str) -> Option<(&'static str, Uuid)> {
        if template.contains("{A}") {
            Some(("{A}", self.company_a()))
        } else if template.contains("{EA}") {
            Some(("{EA}", self.ea))
        } else if template.contains("{EA2}") {
            Some(("{EA2}", self.ea2))
        } else if template.contains("{LA}") {
            Some(("{LA}", self.lead_ea))
        } else if template.contains("{LA2}") {
            Some(("{LA2}", self.lead_ea2))
        } else if template.contains("{L}") {
            Some((
                "{L}",
                add_lead(&self.owner, self.company_a(), self.ea).await,
            ))
        } else if template.contains("{SA}") {
            Some(("{SA}", helpers::session_id_of(&self.admin_a.token)))
        } else if template.contains("{X}") {
            let n = Uuid::new_v4().simple().to_string();
            let name = format!("Doomed Alpha {}", &n[..8]);
            let id = hire(
                app,
                &self.admin_a,
                &name,
                &format!("doomed-{n}@alpha-tenant.test"),
            )
            .await;
            Some(("{X}", id))
        } else {
            None
        }
    }

    fn body(&self, body: Body) -> Option<Payload> {
        let n = Uuid::new_v4().simple().to_string();
        Some(Payload::Json(match body {
            Body::Empty => return None,
            Body::Png => {
                let random = Uuid::new_v4().into_bytes();
                let color = |i: usize| [random[i], random[i + 1], random[i + 2]];
                return Some(Payload::Png(png_of([color(0), color(3)])));
            }
            Body::Signup => {
                json!({"email": format!("signup-{n}@example.com"), "password": SIGNUP_PASSWORD,
                                   "full_name": "Sam Signup", "company_name": format!("Signup Probe {}", &n[..8])})
            }
            Body::Login => json!({"email": self.login_probe.email, "password": SIGNUP_PASSWORD}),
            Body::ForgotUnknown => json!({"email": format!("nobody-{n}@example.com")}),
            Body::UnknownResetToken => {
                json!({"token": format!("{n}{n}"), "password": "brand-new-password-49"})
            }
            Body::UnknownToken => json!({"token": format!("{n}{n}")}),
            Body::NewWebhook => json!({"url": "https://93.184.215.14/matrix",
                                       "events": ["lead.created"], "description": "Matrix"}),
            Body::EditWebhook => json!({"description": format!("Edited {}", &n[..8])}),
            Body::LeadWithoutForm => {
                json!({"name": format!("Lead {}", &n[..8]), "email": format!("lead-{n}@example.com"),
                       "started": "1.00000000000000000000000000000000"})
            }
            Body::ImportRows => {
                json!({"rows": [{"full_name": format!("Imported Alpha {}", &n[..8]),
                                                 "email": format!("imported-{n}@alpha-tenant.test")}]})
            }
            Body::WrongPassword => {
                json!({"current_password": "not-the-password", "new_password": "brand-new-password"})
            }
            Body::NewCompany => json!({"name": format!("Matrix Made {}", &n[..8])}),
            Body::Rebrand => {
                json!({"name": format!("Renamed Alpha {}", &n[..8]), "brand_color": "#123456",
                                    "logo_url": "https://rebrand.example/logo.png", "domain": "rebrand.example"})
            }
            Body::NewEmployee => json!({"full_name": format!("Hired Alpha {}", &n[..8]),
                                        "email": format!("hired-{n}@alpha-tenant.test")}),
            Body::EditEmployee => {
                json!({"job_title": format!("Edited {}", &n[..8]), "bio": "Was here."})
            }
            Body::NewAdminLogin => {
                json!({"email": format!("login-{n}@example.com"), "password": helpers::TEAMMATE_PASSWORD,
                                          "full_name": "New Login", "role": "admin"})
            }
            Body::Enterprise => json!({"plan": "enterprise"}),
            Body::Call => return Some(Payload::Beacon(json!({"action": "call"}))),
            Body::UnknownRefresh => {
                let (token, _) = callingcard::model::session::new_refresh_token();
                json!({ "refresh_token": token })
            }
            Body::EditLogin => {
                json!({"full_name": format!("Edited Login {}", &n[..8]), "is_active": false})
            }
            Body::NewInvitation => {
                json!({"email": format!("invitee-{n}@example.com"), "role": "admin"})
            }
            Body::UnknownInvitation => {
                json!({"token": n, "password": helpers::TEAMMATE_PASSWORD})
            }
        }))
    }
}

/// A 64×64 PNG: the upper left triangle in one color, the rest in the other.
fn png_of([a, b]: [[u8; 3]; 2]) -> Vec<u8> {
    let image = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb(if x + y < 64 { a } else { b }));
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encoding a PNG");
    png
}

/// A JWT for `session`'s user, company and role `admin`, signed with `secret`.
fn token_for(session: &Session, secret: &[u8]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": session.user_id, "company_id": session.company_id, "role": "admin",
                        "sid": helpers::session_id_of(&session.token), "iat": now,
                        "exp": now + 3600});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Adds an employee to `admin`'s company; its id.
async fn hire(app: &TestApp, admin: &Session, full_name: &str, email: &str) -> Uuid {
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            json!({"full_name": full_name, "job_title": "Engineer", "email": email}),
        )
        .await;
    resp.assert_status(201);
    resp.id()
}

/// A response as it came over the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Raw {
    status: StatusCode,
    content_type: Option<String>,
    /// The `X-Total-Count` of a list.
    total_count: Option<String>,
    bytes: Vec<u8>,
}

impl Raw {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.bytes).ok()
    }

    /// Why this is not an error body `{"detail": non-empty string, "code": string}`, if it is not.
    fn error_shape_problem(&self) -> Option<String> {
        let Some(body) = self.json() else {
            return Some(format!("error body is not JSON: {:?}", self.text()));
        };
        let detail_ok = body["detail"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty());
        let code_ok = body["code"].as_str().is_some_and(|c| !c.is_empty());
        let only_those = body.as_object().is_some_and(|o| o.len() == 2);
        (!(detail_ok && code_ok && only_those))
            .then(|| format!("error body is not {{detail, code}}: {body}"))
    }
}

/// A request body.
enum Payload {
    Json(Value),
    /// A raw image, sent as `image/png`.
    Png(Vec<u8>),
    /// JSON sent from a browser: with the [`DESKTOP`] user agent (a person's browser: a bot's
    /// would only count as a preview, in the rollups).
    Beacon(Value),
}

/// Sends a request to `path`: under `/api`, or at the root when it starts with `!`.
async fn send(
    app: &TestApp,
    verb: Verb,
    path: &str,
    token: Option<&str>,
    body: Option<Payload>,
) -> Raw {
    let url = match path.strip_prefix('!') {
        Some(root) => format!("{}{root}", app.address),
        None => format!("{}/api{path}", app.address),
    };
    let mut req = app.client.request(verb.method(), url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    match body {
        Some(Payload::Json(body)) => req = req.json(&body),
        Some(Payload::Png(png)) => req = req.header("content-type", "image/png").body(png),
        Some(Payload::Beacon(body)) => req = req.header("user-agent", DESKTOP).json(&body),
        None => {}
    }
    let resp = req.send().await.expect("sending the request");
    let status = resp.status();
    let header = |name: &str| {
        let value = resp.headers().get(name)?;
        Some(value.to_str().unwrap_or("<not ascii>").to_owned())
    };
    let content_type = header("content-type");
    let total_count = header("x-total-count");
    let bytes = resp.bytes().await.expect("reading the body").to_vec();
    Raw {
        status,
        content_type,
        total_count,
        bytes,
    }
}

/// Everything of one company, read as the superuser (below row-level security), timestamps
/// included: even a write that changes nothing visible shows. The rows of employees and of the
/// company carry their `photo_hash` and `logo_hash`; stored images are summed up by a digest.
/// A's analytics are in it too (the [`ANALYTICS`] tables, whole): a refused call writes no
/// event, no rollup and no visitor.
const SNAPSHOT: &str = "SELECT jsonb_build_object(
         'company', (SELECT to_jsonb(c) FROM companies c WHERE c.id = $1),
         'subscriptions', (SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.id), '[]')
                           FROM subscriptions s WHERE s.company_id = $1),
         'employees', (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.id), '[]')
                       FROM employees e WHERE e.company_id = $1),
         'cards', (SELECT coalesce(jsonb_agg(to_jsonb(k) ORDER BY k.id), '[]')
                   FROM cards k WHERE k.company_id = $1),
         'users', (SELECT coalesce(jsonb_agg(to_jsonb(u) ORDER BY u.id), '[]')
                   FROM users u WHERE u.company_id = $1),
         'sessions', (SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.id), '[]')
                      FROM sessions s WHERE s.company_id = $1),
         'session_refresh_tokens',
             (SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.token_hash), '[]')
              FROM session_refresh_tokens t WHERE t.company_id = $1),
         'invitations', (SELECT coalesce(jsonb_agg(to_jsonb(i) ORDER BY i.id), '[]')
                         FROM invitations i WHERE i.company_id = $1),
         'webhooks', (SELECT coalesce(jsonb_agg(to_jsonb(w) ORDER BY w.id), '[]')
                      FROM webhooks w WHERE w.company_id = $1),
         'media', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'hash', m.hash, 'content_type', m.content_type,
                       'sha256', encode(sha256(m.bytes), 'hex'), 'created_at', m.created_at)
                       ORDER BY m.hash), '[]')
                   FROM media m WHERE m.company_id = $1),
         'leads', (SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.id), '[]')
                   FROM leads l WHERE l.company_id = $1),
         'card_events', (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.id), '[]')
                         FROM card_events e WHERE e.company_id = $1),
         'card_rollup_employee_hourly',
             (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.hour, r.employee_id, r.action), '[]')
              FROM card_rollup_employee_hourly r WHERE r.company_id = $1),
         'card_rollup_company_hourly',
             (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.hour, r.action, r.device, r.region),
                              '[]')
              FROM card_rollup_company_hourly r WHERE r.company_id = $1),
         'card_rollup_employee_daily',
             (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.day, r.employee_id), '[]')
              FROM card_rollup_employee_daily r WHERE r.company_id = $1),
         'card_rollup_company_daily',
             (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.day, r.device, r.region), '[]')
              FROM card_rollup_company_daily r WHERE r.company_id = $1),
         'card_rollup_action_hourly',
             (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.hour, r.action), '[]')
              FROM card_rollup_action_hourly r WHERE r.company_id = $1),
         'card_visitor_days',
             (SELECT coalesce(jsonb_agg(to_jsonb(v) ORDER BY v.day, v.card, v.visitor), '[]')
              FROM card_visitor_days v WHERE v.company_id = $1),
         'card_rollup_visitors_hourly',
             (SELECT coalesce(jsonb_agg(to_jsonb(v) ORDER BY v.card, v.hour), '[]')
              FROM card_rollup_visitors_hourly v WHERE v.company_id = $1)
     )::text";

/// The parts of a [`snapshot`] that are A's analytics.
const ANALYTICS: [&str; 8] = [
    "card_events",
    "card_rollup_employee_hourly",
    "card_rollup_company_hourly",
    "card_rollup_employee_daily",
    "card_rollup_company_daily",
    "card_rollup_action_hourly",
    "card_visitor_days",
    "card_rollup_visitors_hourly",
];

async fn snapshot(owner: &tokio_postgres::Client, company_id: Uuid) -> Value {
    let row = owner
        .query_one(SNAPSHOT, &[&company_id])
        .await
        .expect("reading a snapshot");
    serde_json::from_str(&row.get::<_, String>(0)).expect("a JSON snapshot")
}

/// The snapshot without A's analytics.
fn without_analytics(snapshot: &Value) -> Value {
    let mut snapshot = snapshot.clone();
    let parts = snapshot.as_object_mut().unwrap();
    for table in ANALYTICS {
        parts.remove(table);
    }
    snapshot
}

/// The ids of the events stored between two snapshots.
fn new_events(before: &Value, after: &Value) -> Vec<String> {
    let ids = |snapshot: &Value| -> Vec<String> {
        snapshot["card_events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let old = ids(before);
    ids(after)
        .into_iter()
        .filter(|id| !old.contains(id))
        .collect()
}

/// The snapshot without one employee (and its card, and its photo as stored).
fn without_employee(snapshot: &Value, employee_id: Uuid) -> Value {
    let mut snapshot = snapshot.clone();
    let id = employee_id.to_string();
    let photo = snapshot["employees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .map(|e| e["photo_hash"].clone())
        .filter(|hash| !hash.is_null());
    snapshot["employees"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["id"] != id.as_str());
    if let Some(photo) = photo {
        snapshot["media"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["hash"] != photo);
    }
    snapshot["cards"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["employee_id"] != id.as_str());
    snapshot
}

/// The strings that betray a company: its id, name, slug and logo's hash, its employees' ids,
/// names, emails, slugs and photos' hashes, its logins' ids and emails, its invitations' ids,
/// emails and token hashes, its events' ids.
fn fingerprints(snapshot: &Value) -> Vec<String> {
    let company = &snapshot["company"];
    let mut found: Vec<&Value> = vec![
        &company["id"],
        &company["name"],
        &company["slug"],
        &company["logo_hash"],
    ];
    for e in snapshot["employees"].as_array().unwrap() {
        found.extend([
            &e["id"],
            &e["full_name"],
            &e["email"],
            &e["public_slug"],
            &e["photo_hash"],
        ]);
    }
    for u in snapshot["users"].as_array().unwrap() {
        found.extend([&u["id"], &u["email"]]);
    }
    for s in snapshot["sessions"].as_array().unwrap() {
        found.push(&s["id"]);
    }
    for i in snapshot["invitations"].as_array().unwrap() {
        found.extend([&i["id"], &i["email"], &i["token_hash"]]);
    }
    for l in snapshot["leads"].as_array().unwrap() {
        found.extend([&l["id"], &l["name"], &l["email"]]);
    }
    for e in snapshot["card_events"].as_array().unwrap() {
        found.push(&e["id"]);
    }
    found
        .into_iter()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What of A an outsider may see in a response to `row`: nothing, but a public page shows A's
/// card (the company and EA) to anyone. Everything else of A (other employees, logins, events)
/// is still watched for there.
fn secrets_for(row: &Row, snapshot: &Value, ea: Uuid) -> Vec<String> {
    if !row.effect.shows_card() {
        return fingerprints(snapshot);
    }
    let mut hidden = without_employee(snapshot, ea);
    hidden["company"] = Value::Null;
    fingerprints(&hidden)
}

/// One cell of the matrix, as observed.
struct Cell {
    row: &'static Row,
    principal: Principal,
    response: Raw,
    /// For B's admin addressing A's resource: the same request for a random id instead.
    decoy: Option<Raw>,
    /// The employee a `/employees/…` path named.
    employee: Option<Uuid>,
    before: Value,
    after: Value,
}

impl Cell {
    fn label(&self) -> String {
        format!(
            "{:<6} {:<PATH_WIDTH$} × {:?}",
            format!("{:?}", self.row.verb).to_uppercase(),
            self.row.path,
            self.principal
        )
    }
}

async fn run_matrix(app: &TestApp, world: &World) -> Vec<Cell> {
    let mut cells = Vec::new();
    for row in MATRIX {
        for principal in PRINCIPALS {
            world.restore_sessions().await;
            world.restore_images(app).await;
            let template = world.fresh(row.path).await;
            let target = world.target(app, &template).await;
            let path = match target {
                Some((placeholder, id)) => template.replace(placeholder, &id.to_string()),
                None => template.clone(),
            };
            let path = world.fill(&path);
            let token = world.token(principal);
            let before = snapshot(&world.owner, world.company_a()).await;
            let response = send(app, row.verb, &path, token, world.body(row.body)).await;
            let after = snapshot(&world.owner, world.company_a()).await;
            // No decoy for a public page: B gets A's card like anyone, not a missing one's 404.
            let decoy = match target {
                Some((placeholder, _)) if principal == OtherAdmin && !row.effect.is_public() => {
                    let path =
                        world.fill(&template.replace(placeholder, &Uuid::new_v4().to_string()));
                    Some(send(app, row.verb, &path, token, world.body(row.body)).await)
                }
                _ => None,
            };
            let employee = target
                .filter(|(placeholder, _)| *placeholder != "{A}")
                .map(|(_, id)| id);
            cells.push(Cell {
                row,
                principal,
                response,
                decoy,
                employee,
                before,
                after,
            });
        }
        if row.effect == Effect::Counted {
            world.settle_analytics(app).await;
        }
    }
    cells
}

/// The observed statuses as a table, a `!` after each one that differs from the expected.
fn render(cells: &[Cell]) -> String {
    let mut out = format!("{:<w$}", "", w = PATH_WIDTH + 8);
    for p in PRINCIPALS {
        out += &format!("{:>12}", format!("{p:?}"));
    }
    for row_cells in cells.chunks(PRINCIPALS.len()) {
        let row = row_cells[0].row;
        out += &format!(
            "\n{:<6} {:<w$}",
            format!("{:?}", row.verb).to_uppercase(),
            row.path,
            w = PATH_WIDTH + 1
        );
        for cell in row_cells {
            let got = cell.response.status.as_u16();
            let mark = if got == row.expected(cell.principal) {
                " "
            } else {
                "!"
            };
            out += &format!("{:>11}{mark}", got);
        }
    }
    out
}

#[tokio::test]
async fn every_endpoint_answers_every_principal_exactly() {
    let app = spawn_app().await;
    let world = World::build(&app).await;
    let cells = run_matrix(&app, &world).await;
    assert_eq!(cells.len(), MATRIX.len() * PRINCIPALS.len());

    let mut mismatches = Vec::new();
    for cell in &cells {
        let label = cell.label();
        let expected = cell.row.expected(cell.principal);
        let got = cell.response.status.as_u16();
        let body = cell.response.text();
        if got != expected {
            mismatches.push(format!("{label}: expected {expected}, got {got}: {body}"));
        }
        if got >= 400 {
            if let Some(problem) = cell.response.error_shape_problem() {
                mismatches.push(format!("{label}: {problem}"));
            } else if got == expected {
                let code = cell.response.json().unwrap()["code"].clone();
                if let Some(want) = cell
                    .row
                    .expected_code(expected)
                    .filter(|want| code != *want)
                {
                    mismatches.push(format!("{label}: expected code {want:?}, got {code}"));
                }
            }
        }

        // A's data changes only through a write the caller may make; the linked employee's
        // edit of its own record changes that record only. A public page counts its visit, and
        // the beacon stores its event, in A's analytics whoever calls: public writes by design,
        // so for them A's analytics are left out (the beacon's event is checked below), and the
        // rest of A must stay as it was.
        let (cell_before, cell_after) = if cell.row.effect.writes_analytics() {
            (
                without_analytics(&cell.before),
                without_analytics(&cell.after),
            )
        } else {
            (cell.before.clone(), cell.after.clone())
        };
        let allowed_write = cell.row.effect == Effect::Writes && (200..300).contains(&expected);
        let (before, after) = match (allowed_write, cell.principal, cell.employee) {
            (false, ..) => (cell_before, cell_after),
            (true, Employee, Some(id)) => (
                without_employee(&cell_before, id),
                without_employee(&cell_after, id),
            ),
            (true, ..) => (Value::Null, Value::Null),
        };
        if before != after {
            let parts = before.as_object().unwrap().keys();
            let changed: Vec<&String> = parts
                .filter(|k| before[k.as_str()] != after[k.as_str()])
                .collect();
            mismatches.push(format!(
                "{label}: company A changed {changed:?}:\n  before {before}\n  after  {after}"
            ));
        }

        // The beacon stores one event of A's, whoever sends it, and answers with its id alone.
        let fresh = new_events(&cell.before, &cell.after);
        if cell.row.effect == Effect::Tracks && got == 200 {
            let want = json!({"status": "tracked", "event_id": fresh.first()});
            if fresh.len() != 1 || cell.response.json().as_ref() != Some(&want) {
                mismatches.push(format!(
                    "{label}: stored A's events {fresh:?}, answered {body}"
                ));
            }
        }

        // Nothing of A reaches an outsider, but for the card a public page is there to show,
        // and for the id of the event the beacon just stored.
        if cell.principal.is_outsider() {
            let secrets: BTreeSet<String> = secrets_for(cell.row, &cell.before, world.ea)
                .into_iter()
                .chain(secrets_for(cell.row, &cell.after, world.ea))
                .filter(|s| cell.row.effect != Effect::Tracks || !fresh.contains(s))
                .collect();
            let leaked: Vec<&String> = secrets
                .iter()
                .filter(|s| body.contains(s.as_str()))
                .collect();
            if !leaked.is_empty() {
                mismatches.push(format!("{label}: leaks A's {leaked:?}: {body}"));
            }
        }

        // A's resource answers B exactly like a missing one.
        if let Some(decoy) = &cell.decoy {
            if decoy != &cell.response {
                mismatches.push(format!(
                    "{label}: differs from a missing id:\n  A's:     {} {:?} {body}\n  missing: {} {:?} {}",
                    cell.response.status,
                    cell.response.content_type,
                    decoy.status,
                    decoy.content_type,
                    decoy.text()
                ));
            }
            if let Some(problem) = decoy
                .error_shape_problem()
                .filter(|_| decoy.status.as_u16() >= 400)
            {
                mismatches.push(format!("{label} (missing id): {problem}"));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es):\n{}\n\nobserved matrix (! = not the expected status):\n{}",
        mismatches.len(),
        mismatches.join("\n"),
        render(&cells)
    );
}

#[tokio::test]
async fn matrix_errors_are_json_and_never_500() {
    let app = spawn_app().await;
    let world = World::build(&app).await;
    let cells = run_matrix(&app, &world).await;

    let mut problems = Vec::new();
    for cell in &cells {
        for (what, response) in std::iter::once(("", &cell.response))
            .chain(cell.decoy.iter().map(|d| (" (missing id)", d)))
        {
            let label = format!("{}{what}", cell.label());
            let status = response.status;
            if status.is_server_error() {
                problems.push(format!("{label}: {status}: {}", response.text()));
            }
            if status.is_client_error() {
                let content_type = response.content_type.as_deref().unwrap_or("<none>");
                if !content_type.starts_with("application/json") {
                    problems.push(format!(
                        "{label}: {status} with content-type {content_type}"
                    ));
                }
                if let Some(problem) = response.error_shape_problem() {
                    problems.push(format!("{label}: {status}: {problem}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn company_lists_stay_within_the_tenant() {
    let app = spawn_app().await;
    let world = World::build(&app).await;
    let (a, b) = (world.company_a(), world.admin_b.company_id);
    let ids = |raw: &Raw| -> Vec<String> {
        let list = raw.json().expect("a JSON list");
        list.as_array()
            .expect("a list")
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };

    // B's admin lists B alone, and nothing of A.
    let listed = send(&app, Get, "/company", Some(&world.admin_b.token), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(ids(&listed), [b.to_string()]);
    assert_eq!(
        listed.total_count.as_deref(),
        Some("1"),
        "B's count of companies"
    );
    let body = listed.text();
    for secret in fingerprints(&snapshot(&world.owner, a).await) {
        assert!(
            !body.contains(&secret),
            "B's list of companies leaks A's {secret:?}: {body}"
        );
    }

    // So does A's employee, the other way round.
    let listed = send(&app, Get, "/company", Some(&world.employee.token), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(ids(&listed), [a.to_string()]);
    assert_eq!(
        listed.total_count.as_deref(),
        Some("1"),
        "A's count of companies"
    );

    // A superadmin lists both (and the platform company).
    let listed = send(&app, Get, "/company", Some(&world.superadmin.token), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let all = ids(&listed);
    assert!(
        all.contains(&a.to_string()) && all.contains(&b.to_string()),
        "{all:?}"
    );
    assert_eq!(listed.total_count, Some(all.len().to_string()));

    // A's admin addressing B's lists and B itself gets what a missing company gets.
    let b_secrets = fingerprints(&snapshot(&world.owner, b).await);
    for template in [
        "/company/{}/employees",
        "/company/{}/users",
        "/company/{}/invitations",
        "/company/{}",
    ] {
        let b_path = template.replace("{}", &b.to_string());
        let missing_path = template.replace("{}", &Uuid::new_v4().to_string());
        let token = Some(world.admin_a.token.as_str());
        let at_b = send(&app, Get, &b_path, token, None).await;
        let missing = send(&app, Get, &missing_path, token, None).await;
        assert_eq!(
            at_b.status,
            404,
            "GET {b_path} as A's admin: {}",
            at_b.text()
        );
        assert_eq!(
            at_b, missing,
            "GET {template}: B's answer differs from a missing company's"
        );
        assert!(at_b.error_shape_problem().is_none(), "{}", at_b.text());
        for secret in &b_secrets {
            assert!(
                !at_b.text().contains(secret.as_str()),
                "GET {b_path} leaks B's {secret:?}"
            );
        }
    }
}
