//! The tenancy matrix: every endpoint of the API against six kinds of caller, with the exact
//! status of each cell, and proof that nothing of one company reaches another: another company's
//! resources answer byte for byte like missing ones, no response to an outsider carries A's data,
//! and no refused write changes A (checked below HTTP, with the superuser connection).
//!
//! All mismatching cells are reported at once, with the observed matrix.

mod common;

use std::{
    collections::BTreeSet,
    time::{SystemTime, UNIX_EPOCH},
};

use common::{JWT_SECRET, Session, TestApp, spawn_app};
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
    NewCompany,
    /// A new name and new branding.
    Rebrand,
    NewEmployee,
    EditEmployee,
    /// A new *admin* login: the worst thing to let an outsider create.
    NewAdminLogin,
    Enterprise,
}

/// One endpoint: a row of the matrix. In `path` (under `/api`), `{A}` is company A, `{EA}` the
/// employee linked to the employee login, `{EA2}` another employee of A, and `{X}` a fresh
/// employee of A created for each cell.
struct Row {
    verb: Verb,
    path: &'static str,
    body: Body,
    /// Whether a success changes company A's data.
    writes_a: bool,
    /// The exact status for each principal, in the order of [`PRINCIPALS`].
    expect: [u16; 6],
}

const fn row(verb: Verb, path: &'static str, body: Body, writes_a: bool, expect: [u16; 6]) -> Row {
    Row {
        verb,
        path,
        body,
        writes_a,
        expect,
    }
}

const W: bool = true; // a success writes A's data
const R: bool = false; // A's data never changes

#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //  verb    path                          body                 W/R   own other  empl super  none forged
    row(Post,   "/auth/signup",               Body::Signup,         R, [201, 201,  201, 201,  201, 201]),
    row(Post,   "/auth/login",                Body::Login,          R, [200, 200,  200, 200,  200, 200]),
    row(Get,    "/auth/me",                   Body::Empty,          R, [200, 200,  200, 200,  401, 401]),
    row(Post,   "/auth/change-password",      Body::WrongPassword,  R, [403, 403,  403, 403,  401, 401]),
    row(Post,   "/company",                   Body::NewCompany,     R, [403, 403,  403, 201,  401, 401]),
    row(Get,    "/company",                   Body::Empty,          R, [200, 200,  200, 200,  401, 401]),
    row(Get,    "/company/{A}",               Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Put,    "/company/{A}",               Body::Rebrand,        W, [200, 404,  403, 200,  401, 401]),
    row(Post,   "/company/{A}/employees",     Body::NewEmployee,    W, [201, 404,  403, 201,  401, 401]),
    row(Get,    "/company/{A}/employees",     Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Get,    "/employees/{EA}",            Body::Empty,          R, [200, 404,  200, 200,  401, 401]),
    row(Put,    "/employees/{EA}",            Body::EditEmployee,   W, [200, 404,  200, 200,  401, 401]),
    row(Put,    "/employees/{EA2}",           Body::EditEmployee,   W, [200, 404,  403, 200,  401, 401]),
    row(Delete, "/employees/{X}",             Body::Empty,          W, [204, 404,  403, 204,  401, 401]),
    row(Post,   "/company/{A}/users",         Body::NewAdminLogin,  W, [201, 404,  403, 201,  401, 401]),
    row(Get,    "/company/{A}/users",         Body::Empty,          R, [200, 404,  403, 200,  401, 401]),
    row(Get,    "/subscriptions/plans",       Body::Empty,          R, [200, 200,  200, 200,  200, 200]),
    row(Get,    "/subscriptions/current",     Body::Empty,          R, [200, 200,  200, 200,  401, 401]),
    row(Put,    "/company/{A}/subscription",  Body::Enterprise,     W, [403, 403,  403, 200,  401, 401]),
    row(Get,    "/health",                    Body::Empty,          R, [200, 200,  200, 200,  200, 200]),
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
            401 => Some("unauthorized"),
            403 if self.body == Body::WrongPassword => Some("wrong_password"),
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
    owner: tokio_postgres::Client,
}

const SIGNUP_PASSWORD: &str = "s3cret-password";
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

        let owner = common::connect(&common::superuser_url(&app.dbname)).await;
        World {
            admin_a,
            admin_b,
            employee,
            superadmin,
            forged,
            ea,
            ea2,
            login_probe,
            owner,
        }
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

    /// The id a path template names, if any, creating the fresh employee `{X}` stands for.
    async fn target(&self, app: &TestApp, template: &str) -> Option<(&'static str, Uuid)> {
        if template.contains("{A}") {
            Some(("{A}", self.company_a()))
        } else if template.contains("{EA}") {
            Some(("{EA}", self.ea))
        } else if template.contains("{EA2}") {
            Some(("{EA2}", self.ea2))
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

    fn body(&self, body: Body) -> Option<Value> {
        let n = Uuid::new_v4().simple().to_string();
        Some(match body {
            Body::Empty => return None,
            Body::Signup => {
                json!({"email": format!("signup-{n}@example.com"), "password": SIGNUP_PASSWORD,
                                   "full_name": "Sam Signup", "company_name": format!("Signup Probe {}", &n[..8])})
            }
            Body::Login => json!({"email": self.login_probe.email, "password": SIGNUP_PASSWORD}),
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
                json!({"email": format!("login-{n}@example.com"), "password": "teammate-password",
                                          "full_name": "New Login", "role": "admin"})
            }
            Body::Enterprise => json!({"plan": "enterprise"}),
        })
    }
}

/// A JWT for `session`'s user, company and role `admin`, signed with `secret`.
fn token_for(session: &Session, secret: &[u8]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": session.user_id, "company_id": session.company_id, "role": "admin",
                        "iat": now, "exp": now + 3600});
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

async fn send(
    app: &TestApp,
    verb: Verb,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Raw {
    let mut req = app
        .client
        .request(verb.method(), format!("{}/api{path}", app.address));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
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
/// included: even a write that changes nothing visible shows.
const SNAPSHOT: &str = "SELECT jsonb_build_object(
         'company', (SELECT to_jsonb(c) FROM companies c WHERE c.id = $1),
         'subscriptions', (SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.id), '[]')
                           FROM subscriptions s WHERE s.company_id = $1),
         'employees', (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.id), '[]')
                       FROM employees e WHERE e.company_id = $1),
         'cards', (SELECT coalesce(jsonb_agg(to_jsonb(k) ORDER BY k.id), '[]')
                   FROM cards k WHERE k.company_id = $1),
         'users', (SELECT coalesce(jsonb_agg(to_jsonb(u) ORDER BY u.id), '[]')
                   FROM users u WHERE u.company_id = $1)
     )::text";

async fn snapshot(owner: &tokio_postgres::Client, company_id: Uuid) -> Value {
    let row = owner
        .query_one(SNAPSHOT, &[&company_id])
        .await
        .expect("reading a snapshot");
    serde_json::from_str(&row.get::<_, String>(0)).expect("a JSON snapshot")
}

/// The snapshot without one employee (and its card).
fn without_employee(snapshot: &Value, employee_id: Uuid) -> Value {
    let mut snapshot = snapshot.clone();
    let id = employee_id.to_string();
    snapshot["employees"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["id"] != id.as_str());
    snapshot["cards"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["employee_id"] != id.as_str());
    snapshot
}

/// The strings that betray a company: its id, name and slug, its employees' ids, names, emails
/// and slugs, its logins' ids and emails.
fn fingerprints(snapshot: &Value) -> Vec<String> {
    let company = &snapshot["company"];
    let mut found: Vec<&Value> = vec![&company["id"], &company["name"], &company["slug"]];
    for e in snapshot["employees"].as_array().unwrap() {
        found.extend([&e["id"], &e["full_name"], &e["email"], &e["public_slug"]]);
    }
    for u in snapshot["users"].as_array().unwrap() {
        found.extend([&u["id"], &u["email"]]);
    }
    found
        .into_iter()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
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
            "{:<6} {:<28} × {:?}",
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
            let target = world.target(app, row.path).await;
            let path = match target {
                Some((placeholder, id)) => row.path.replace(placeholder, &id.to_string()),
                None => row.path.to_owned(),
            };
            let token = world.token(principal);
            let before = snapshot(&world.owner, world.company_a()).await;
            let response = send(app, row.verb, &path, token, world.body(row.body)).await;
            let after = snapshot(&world.owner, world.company_a()).await;
            let decoy = match target {
                Some((placeholder, _)) if principal == OtherAdmin => {
                    let path = row.path.replace(placeholder, &Uuid::new_v4().to_string());
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
    }
    cells
}

/// The observed statuses as a table, a `!` after each one that differs from the expected.
fn render(cells: &[Cell]) -> String {
    let mut out = format!("{:<36}", "");
    for p in PRINCIPALS {
        out += &format!("{:>12}", format!("{p:?}"));
    }
    for row_cells in cells.chunks(PRINCIPALS.len()) {
        let row = row_cells[0].row;
        out += &format!(
            "\n{:<6} {:<29}",
            format!("{:?}", row.verb).to_uppercase(),
            row.path
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
        // edit of its own record changes that record only.
        let allowed_write = cell.row.writes_a && (200..300).contains(&expected);
        let (before, after) = match (allowed_write, cell.principal, cell.employee) {
            (false, ..) => (cell.before.clone(), cell.after.clone()),
            (true, Employee, Some(id)) => (
                without_employee(&cell.before, id),
                without_employee(&cell.after, id),
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

        // Nothing of A reaches an outsider.
        if cell.principal.is_outsider() {
            let secrets: BTreeSet<String> = fingerprints(&cell.before)
                .into_iter()
                .chain(fingerprints(&cell.after))
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
    for template in ["/company/{}/employees", "/company/{}/users", "/company/{}"] {
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
