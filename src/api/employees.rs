//! Employees and their cards. Creating an employee creates its public slug and its card row in
//! the same transaction, within the limit of the company's plan.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    Object, OpenApi, param::Path, param::Query, payload::Json, types::MaybeUndefined,
};
use tokio_postgres::{Row, types::Json as JsonColumn};
use uuid::Uuid;

use super::{ApiTags, AppState, Created, JsonString, NoContent, cards, page, validate};
use crate::{
    auth::{BearerAuth, Caller, Role},
    card::CardUrls,
    db::{Tenant, TenantTx},
    error::ApiError,
    model::employee_list::{self, Cursor, ListQuery, Sort, Start},
};

#[derive(Debug, Object)]
pub struct Employee {
    pub id: Uuid,
    pub company_id: Uuid,
    pub full_name: String,
    #[oai(nullable)]
    pub job_title: Option<String>,
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub phone: Option<String>,
    #[oai(nullable)]
    pub whatsapp: Option<String>,
    /// The uploaded photo (`PUT /employees/{id}/photo`), or else the URL set here.
    #[oai(nullable)]
    pub photo_url: Option<String>,
    #[oai(nullable)]
    pub bio: Option<String>,
    /// `{name: url}`, e.g. `{"linkedin": "https://www.linkedin.com/in/jane"}`.
    pub social_links: BTreeMap<String, String>,
    /// Second segment of the public card URL; set at creation and kept when the name changes.
    pub public_slug: String,
    pub company_slug: String,
    /// The public card page.
    pub card_url: String,
    pub created_at: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
}

impl Employee {
    pub(super) fn from_row(row: &Row, base_url: &str) -> Result<Self, ApiError> {
        let get = |e| ApiError::internal(e);
        // Straight from the jsonb bytes, without a serde_json::Value in between.
        let links: JsonColumn<BTreeMap<String, String>> =
            row.try_get("social_links").map_err(get)?;
        let public_slug: String = row.try_get("public_slug").map_err(get)?;
        let company_slug: String = row.try_get("company_slug").map_err(get)?;
        let company_id: Uuid = row.try_get("company_id").map_err(get)?;
        let photo_hash: Option<String> = row.try_get("photo_hash").map_err(get)?;
        let photo_url = match photo_hash {
            Some(hash) => Some(format!(
                "{base_url}{}",
                cards::photo_path(company_id, &hash)
            )),
            None => row.try_get("photo_url").map_err(get)?,
        };
        Ok(Self {
            id: row.try_get("id").map_err(get)?,
            company_id,
            full_name: row.try_get("full_name").map_err(get)?,
            job_title: row.try_get("job_title").map_err(get)?,
            email: row.try_get("email").map_err(get)?,
            phone: row.try_get("phone").map_err(get)?,
            whatsapp: row.try_get("whatsapp").map_err(get)?,
            photo_url,
            bio: row.try_get("bio").map_err(get)?,
            social_links: links.0,
            card_url: CardUrls::page_url(base_url, &company_slug, &public_slug),
            public_slug,
            company_slug,
            created_at: row.try_get("created_at").map_err(get)?,
            last_updated: row.try_get("updated_at").map_err(get)?,
        })
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateEmployee {
    #[oai(validator(max_length = 200))]
    pub full_name: JsonString,
    #[oai(nullable, validator(max_length = 200))]
    pub job_title: Option<JsonString>,
    #[oai(nullable, validator(max_length = 254))]
    pub email: Option<JsonString>,
    #[oai(nullable, validator(max_length = 40))]
    pub phone: Option<JsonString>,
    #[oai(nullable, validator(max_length = 40))]
    pub whatsapp: Option<JsonString>,
    #[oai(nullable, validator(max_length = 2048))]
    pub photo_url: Option<JsonString>,
    #[oai(nullable, validator(max_length = 2000))]
    pub bio: Option<JsonString>,
    /// `{name: url}` with http(s) URLs, at most 20.
    #[oai(nullable)]
    pub social_links: Option<BTreeMap<String, JsonString>>,
}

/// Only the fields present change; `null` clears an optional field.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateEmployee {
    #[oai(nullable, validator(max_length = 200))]
    pub full_name: Option<JsonString>,
    #[oai(nullable, validator(max_length = 200))]
    pub job_title: MaybeUndefined<JsonString>,
    #[oai(nullable, validator(max_length = 254))]
    pub email: MaybeUndefined<JsonString>,
    #[oai(nullable, validator(max_length = 40))]
    pub phone: MaybeUndefined<JsonString>,
    #[oai(nullable, validator(max_length = 40))]
    pub whatsapp: MaybeUndefined<JsonString>,
    #[oai(nullable, validator(max_length = 2048))]
    pub photo_url: MaybeUndefined<JsonString>,
    #[oai(nullable, validator(max_length = 2000))]
    pub bio: MaybeUndefined<JsonString>,
    /// Replaces all links; `null` or `{}` removes them.
    #[oai(nullable)]
    pub social_links: MaybeUndefined<BTreeMap<String, JsonString>>,
}

pub(super) const GET_EMPLOYEE: &str = "SELECT e.id, e.company_id, e.full_name, e.job_title, e.email, e.phone, e.whatsapp,
            e.photo_url, e.photo_hash, e.bio, e.social_links, e.public_slug, c.slug AS company_slug, e.created_at, e.updated_at
     FROM employees e JOIN companies c ON c.id = e.company_id
     WHERE e.id = $1";

/// Locks the employee for an update, and tells whether the caller's login is linked to it.
const GET_EMPLOYEE_FOR_UPDATE: &str = "SELECT e.id, e.company_id, e.full_name, e.job_title, e.email, e.phone, e.whatsapp,
            e.photo_url, e.photo_hash, e.bio, e.social_links, e.public_slug, c.slug AS company_slug, e.created_at, e.updated_at,
            EXISTS (SELECT 1 FROM users u
                    WHERE u.company_id = e.company_id AND u.id = $2 AND u.employee_id = e.id AND u.is_active)
                AS linked_to_caller
     FROM employees e JOIN companies c ON c.id = e.company_id
     WHERE e.id = $1
     FOR UPDATE OF e";

/// Serializes employee creation per company (the lock on its active subscription) so that the
/// plan limit holds under concurrent requests.
const LOCK_PLAN: &str = "SELECT c.slug, p.employee_limit, p.title
     FROM companies c
     JOIN subscriptions s ON s.company_id = c.id AND s.active
     JOIN plans p ON p.plan = s.plan
     WHERE c.id = $1
     FOR UPDATE OF s";

/// A new statement, so its snapshot sees employees committed while we waited for the lock.
const INSERT_EMPLOYEE: &str = "WITH employee AS (
         INSERT INTO employees (company_id, id, full_name, job_title, email, phone, whatsapp, photo_url, bio,
                                social_links, public_slug)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
         WHERE $12::int IS NULL OR (SELECT count(*) FROM employees WHERE company_id = $1) < $12::int
         RETURNING *
     ), card AS (
         INSERT INTO cards (company_id, id, employee_id, url, qr_code, vcard_url)
         SELECT company_id, gen_random_uuid(), id, $13, $14, $15 FROM employee
     )
     SELECT e.id, e.company_id, e.full_name, e.job_title, e.email, e.phone, e.whatsapp,
            e.photo_url, e.photo_hash, e.bio, e.social_links, e.public_slug, $16::text AS company_slug, e.created_at, e.updated_at
     FROM employee e";

const UPDATE_EMPLOYEE: &str = "WITH e AS (
         UPDATE employees SET full_name = $2, job_title = $3, email = $4, phone = $5, whatsapp = $6,
                              photo_url = $7, bio = $8, social_links = $9
         WHERE id = $1
         RETURNING *
     )
     SELECT e.id, e.company_id, e.full_name, e.job_title, e.email, e.phone, e.whatsapp,
            e.photo_url, e.photo_hash, e.bio, e.social_links, e.public_slug, c.slug AS company_slug, e.created_at, e.updated_at
     FROM e JOIN companies c ON c.id = e.company_id";

/// The employee, and its photo unless another employee shows the same image. (The subquery
/// still sees the deleted row, a statement's snapshot being taken before it: hence `e.id <> $1`.)
const DELETE_EMPLOYEE: &str = "WITH gone AS (
         DELETE FROM employees WHERE id = $1 RETURNING company_id, photo_hash
     ), unused_photo AS (
         DELETE FROM media m USING gone
         WHERE m.company_id = gone.company_id AND m.hash = gone.photo_hash
           AND NOT EXISTS (SELECT 1 FROM employees e
                           WHERE e.company_id = m.company_id AND e.photo_hash = m.hash AND e.id <> $1)
           AND NOT EXISTS (SELECT 1 FROM companies c WHERE c.id = m.company_id AND c.logo_hash = m.hash)
     )
     SELECT count(*) FROM gone";

/// Which company an employee id belongs to, for a superadmin only (a SECURITY DEFINER lookup).
const SUPERADMIN_EMPLOYEE_COMPANY: &str = "SELECT superadmin_employee_company($1)";

/// The tenant of `/employees/{employee_id}`: the caller's own company, or for a superadmin the
/// employee's company, looked up first.
pub(super) async fn employee_tenant(
    state: &AppState,
    caller: &Caller,
    employee_id: Uuid,
) -> Result<Tenant, ApiError> {
    if !caller.is_superadmin() {
        return Ok(caller.tenant());
    }
    let row = state
        .db
        .read(&caller.tenant(), async |tx| {
            tx.query_one(SUPERADMIN_EMPLOYEE_COMPANY, [&employee_id])
                .await
        })
        .await?;
    let company: Option<Uuid> = row.try_get(0).map_err(ApiError::internal)?;
    let company = company.ok_or_else(|| ApiError::not_found("Employee not found"))?;
    Ok(Tenant::new(company, Role::Superadmin))
}

/// Locks the employee for an update by the caller: admins and superadmins may edit any of the
/// company's employees, an employee login only the record it is linked to.
pub(super) async fn lock_editable(
    tx: &TenantTx,
    employee_id: Uuid,
    user_id: Uuid,
    is_admin: bool,
) -> Result<Row, ApiError> {
    let row = tx
        .query_opt(GET_EMPLOYEE_FOR_UPDATE, [&employee_id, &user_id])
        .await?
        .ok_or_else(|| ApiError::not_found("Employee not found"))?;
    let linked: bool = row
        .try_get("linked_to_caller")
        .map_err(ApiError::internal)?;
    if !is_admin && !linked {
        return Err(ApiError::forbidden("You can only edit your own card"));
    }
    Ok(row)
}

fn links_json(links: &BTreeMap<String, String>) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(links).map_err(ApiError::internal)
}

/// 200 with one page of the employee list.
#[derive(poem_openapi::ApiResponse)]
pub enum EmployeeList {
    #[oai(status = 200)]
    Ok(
        Json<Vec<Employee>>,
        /// How many employees the whole list holds (with `q`: how many match).
        #[oai(header = "X-Total-Count")]
        i64,
        /// Where the next page starts, for `cursor`; absent on the last page.
        #[oai(header = "X-Next-Cursor")]
        Option<String>,
    ),
}

/// The list parameters, checked: a bad one answers 422 `invalid_parameter` naming it.
fn list_query(
    q: Option<String>,
    sort: Option<String>,
    skip: Option<u32>,
    limit: Option<u32>,
    cursor: Option<String>,
) -> Result<ListQuery, ApiError> {
    let invalid = |detail: String| ApiError::unprocessable("invalid_parameter", detail);
    let (offset, limit) = page(skip, limit)?;
    let sort = match sort.as_deref() {
        None => Sort::DEFAULT,
        Some(value) => Sort::parse(value).ok_or_else(|| {
            invalid(format!(
                "`sort` must be one of {}",
                Sort::ALLOWED.map(|s| format!("`{s}`")).join(", ")
            ))
        })?,
    };
    // An empty search (a cleared search box) is no search.
    let search = match q.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            validate::plain_text("q", text, validate::Lines::Single)
                .map_err(|_| invalid("`q` must be one line of plain text: no control characters, line breaks or bidirectional overrides".to_owned()))?;
            Some(text.to_owned())
        }
    };
    let start = match cursor {
        None => Start::Skip(offset),
        Some(_) if skip.is_some() => {
            return Err(invalid(
                "`cursor` and `skip` do not go together: a cursor says where the page starts"
                    .to_owned(),
            ));
        }
        Some(cursor) => Start::After(
            Cursor::decode(&cursor, sort, search.as_deref()).map_err(|e| invalid(e.to_string()))?,
        ),
    };
    Ok(ListQuery {
        sort,
        search,
        start,
        limit,
    })
}

pub struct EmployeesApi;

#[OpenApi(tag = "ApiTags::Employees")]
impl EmployeesApi {
    /// Add an employee
    ///
    /// Admins of the company and superadmins. Creates the employee's public slug (e.g.
    /// `jane-smith-3f9a2c`) and card. Answers 402 when the company's plan is full.
    #[oai(path = "/company/:company_id/employees", method = "post")]
    async fn create_employee(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: Json<CreateEmployee>,
    ) -> Result<Created<Employee>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let b = body.0;
        let full_name = validate::required_text("full_name", &b.full_name, 200)?;
        let job_title = validate::optional_text("job_title", b.job_title, 200)?;
        let email = validate::optional_email("email", b.email)?;
        let phone = validate::optional_phone("phone", b.phone)?;
        let whatsapp = validate::optional_phone("whatsapp", b.whatsapp)?;
        let photo_url = validate::optional_http_url("photo_url", b.photo_url)?;
        let bio = validate::optional_multiline_text("bio", b.bio, 2000)?;
        let links = links_json(&validate::social_links(b.social_links.unwrap_or_default())?)?;
        let id = Uuid::new_v4();
        let public_slug = format!(
            "{}-{}",
            validate::slug_base(&full_name, 60, "card"),
            validate::random_suffix()
        );

        let row = state
            .db
            .write(&tenant, async |tx| {
                let Some(plan) = tx.query_opt(LOCK_PLAN, [&company_id.0]).await? else {
                    return Err(ApiError::not_found("Company not found"));
                };
                let get = |e| ApiError::internal(e);
                let company_slug: String = plan.try_get("slug").map_err(get)?;
                let limit: Option<i32> = plan.try_get("employee_limit").map_err(get)?;
                let plan_title: String = plan.try_get("title").map_err(get)?;
                // The card row stores paths: the public base URL is configuration.
                let urls = CardUrls::new("", &company_slug, &public_slug);
                let (card, qr, vcard) = (urls.page_path, urls.qr_png_path, urls.vcard_path);
                let row = tx
                    .query_opt(
                        INSERT_EMPLOYEE,
                        [
                            &company_id.0, &id, &full_name, &job_title, &email, &phone, &whatsapp, &photo_url,
                            &bio, &links, &public_slug, &limit, &card, &qr, &vcard, &company_slug,
                        ],
                    )
                    .await?;
                row.ok_or_else(|| {
                    ApiError::new(
                        poem::http::StatusCode::PAYMENT_REQUIRED,
                        "plan_limit_reached",
                        format!(
                            "The {plan_title} plan allows {} employees. Upgrade the plan to add more.",
                            limit.unwrap_or_default()
                        ),
                    )
                })
            })
            .await?;
        let employee = Employee::from_row(&row, &state.public_base_url)?;
        // Its slugs may be remembered as unknown here; other instances hear of it by notification.
        state
            .cards
            .card_created(employee.company_id, &employee.company_slug, employee.id);
        Ok(Created::Created(Json(employee)))
    }

    /// List a company's employees
    ///
    /// Oldest first unless `sort` says otherwise; `X-Total-Count` holds the size of the whole
    /// list (with `q`: how many match). While more follow, `X-Next-Cursor` holds where the next
    /// page starts: pass it as `cursor` with the same `sort` and `q` (not `skip`). A cursor stays
    /// good while employees come and go, and deep pages by cursor cost what the first one does;
    /// deep pages by `skip` cost more the further they go.
    #[oai(
        path = "/company/:company_id/employees",
        method = "get",
        operation_id = "listEmployees"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_employees(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// Only employees whose name, job title or email contains this, ignoring case
        /// (at most 100 characters, one line).
        #[oai(validator(max_length = 100))]
        q: Query<Option<String>>,
        /// `name`, `-name`, `created_at` (the default) or `-created_at`; `-` for descending.
        /// Ties are ordered by id.
        sort: Query<Option<String>>,
        /// How many to skip.
        #[oai(validator(minimum(value = "0"), maximum(value = "4294967295")))]
        skip: Query<Option<u32>>,
        /// How many to return, 1 to 100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
        /// Start after the previous page: its `X-Next-Cursor`.
        #[oai(validator(max_length = 2048))]
        cursor: Query<Option<String>>,
    ) -> Result<EmployeeList, ApiError> {
        let tenant = auth.0.tenant_for(company_id.0, "Company not found")?;
        let query = list_query(q.0, sort.0, skip.0, limit.0, cursor.0)?;
        let page = state
            .db
            .read(&tenant, async |tx| {
                employee_list::list(&tx, company_id.0, &query).await
            })
            .await?
            .ok_or_else(|| ApiError::not_found("Company not found"))?;
        let employees = page
            .rows
            .iter()
            .map(|row| Employee::from_row(row, &state.public_base_url))
            .collect::<Result<_, _>>()?;
        let next = page.next.map(|cursor| cursor.encode());
        Ok(EmployeeList::Ok(Json(employees), page.total, next))
    }

    /// Get an employee
    #[oai(path = "/employees/:employee_id", method = "get")]
    async fn get_employee(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
    ) -> Result<Json<Employee>, ApiError> {
        let tenant = employee_tenant(&state, &auth.0, employee_id.0).await?;
        let row = state
            .db
            .read(&tenant, async |tx| {
                tx.query_opt(GET_EMPLOYEE, [&employee_id.0]).await
            })
            .await
            .map_err(ApiError::from)?;
        let row = row.ok_or_else(|| ApiError::not_found("Employee not found"))?;
        Ok(Json(Employee::from_row(&row, &state.public_base_url)?))
    }

    /// Update an employee
    ///
    /// Admins of the company, superadmins, and the employee whose login is linked to this
    /// record. Only the fields present change; `null` clears an optional field.
    #[oai(path = "/employees/:employee_id", method = "put")]
    async fn update_employee(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
        body: Json<UpdateEmployee>,
    ) -> Result<Json<Employee>, ApiError> {
        let caller = auth.0;
        let tenant = employee_tenant(&state, &caller, employee_id.0).await?;
        let b = body.0;
        let full_name = b
            .full_name
            .map(|n| validate::required_text("full_name", &n, 200))
            .transpose()?;
        let job_title = validate::maybe(b.job_title, |v| {
            validate::optional_text("job_title", Some(v), 200)
        })?;
        let email = validate::maybe(b.email, |v| validate::optional_email("email", Some(v)))?;
        let phone = validate::maybe(b.phone, |v| validate::optional_phone("phone", Some(v)))?;
        let whatsapp = validate::maybe(b.whatsapp, |v| {
            validate::optional_phone("whatsapp", Some(v))
        })?;
        let photo_url = validate::maybe(b.photo_url, |v| {
            validate::optional_http_url("photo_url", Some(v))
        })?;
        let bio = validate::maybe(b.bio, |v| {
            validate::optional_multiline_text("bio", Some(v), 2000)
        })?;
        let social_links = match b.social_links {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(BTreeMap::new()),
            MaybeUndefined::Value(links) => Some(validate::social_links(links)?),
        };
        let user_id = caller.user_id();
        let is_admin = caller.require_admin().is_ok();

        let row = state
            .db
            .write(&tenant, async |tx| {
                let row = lock_editable(&tx, employee_id.0, user_id, is_admin).await?;
                let mut e = Employee::from_row(&row, "")?;
                // The URL set on the employee, not the uploaded photo that takes its place.
                e.photo_url = row.try_get("photo_url").map_err(ApiError::internal)?;
                if let Some(name) = full_name {
                    e.full_name = name;
                }
                job_title.update_to(&mut e.job_title);
                email.update_to(&mut e.email);
                phone.update_to(&mut e.phone);
                whatsapp.update_to(&mut e.whatsapp);
                photo_url.update_to(&mut e.photo_url);
                bio.update_to(&mut e.bio);
                if let Some(links) = social_links {
                    e.social_links = links;
                }
                let links = links_json(&e.social_links)?;
                let row = tx
                    .query_one(
                        UPDATE_EMPLOYEE,
                        [
                            &e.id,
                            &e.full_name,
                            &e.job_title,
                            &e.email,
                            &e.phone,
                            &e.whatsapp,
                            &e.photo_url,
                            &e.bio,
                            &links,
                        ],
                    )
                    .await?;
                Ok::<_, ApiError>(row)
            })
            .await?;
        let employee = Employee::from_row(&row, &state.public_base_url)?;
        state
            .cards
            .forget_employee(employee.company_id, employee.id);
        Ok(Json(employee))
    }

    /// Delete an employee
    ///
    /// Admins of the company and superadmins. The card goes with it; a login linked to the
    /// employee stays, unlinked.
    #[oai(path = "/employees/:employee_id", method = "delete")]
    async fn delete_employee(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let caller = auth.0;
        let tenant = employee_tenant(&state, &caller, employee_id.0).await?;
        caller.require_admin()?;
        let deleted = state
            .db
            .write(&tenant, async |tx| {
                tx.query_one(DELETE_EMPLOYEE, [&employee_id.0]).await
            })
            .await
            .map_err(ApiError::from)?
            .try_get::<_, i64>(0)
            .map_err(ApiError::internal)?;
        if deleted == 0 {
            return Err(ApiError::not_found("Employee not found"));
        }
        state
            .cards
            .forget_employee(tenant.company_id, employee_id.0);
        Ok(NoContent::NoContent)
    }
}
