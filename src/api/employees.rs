//! Employees and their cards. Creating an employee creates its public slug and its card row in
//! the same transaction, within the limit of the company's plan.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Object, OpenApi, param::Path, param::Query, payload::Json, types::MaybeUndefined,
};
use uuid::Uuid;

use super::{
    ApiTags, AppState, Created, JsonString, NoContent,
    http::PreRenderedJson,
    page,
    upload::{self, ImageUpload},
    validate,
};
use crate::{
    auth::{BearerAuth, Caller},
    card::photo,
    error::ApiError,
    model::{
        self,
        audit::{AuditContext, AuditEvent, Changes, Target},
        employee::{Editor, EmployeeChange, EmployeeField, NewEmployee},
        employee_list::{self, Cursor, ListQuery, Sort, Start},
        media::ImageSlot,
    },
};

// Serialized with serde as well as described by poem-openapi: a page of the list goes straight
// to its bytes (see `EmployeesApi::list_employees`), the same JSON as poem-openapi writes.
#[derive(Debug, Object, serde::Serialize)]
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
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    pub last_updated: DateTime<Utc>,
}

/// A time as poem-openapi writes it (`+00:00`, not serde's `Z`), so both paths agree.
fn rfc3339<S: serde::Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339())
}

impl Employee {
    fn shown(e: model::employee::Employee, base_url: &str) -> Self {
        Self {
            photo_url: e.shown_photo(base_url),
            card_url: e.card_page_url(base_url),
            id: e.id,
            company_id: e.company_id,
            full_name: e.full_name,
            job_title: e.job_title,
            email: e.email,
            phone: e.phone,
            whatsapp: e.whatsapp,
            bio: e.bio,
            social_links: e.social_links,
            public_slug: e.public_slug,
            company_slug: e.company_slug,
            created_at: e.created_at,
            last_updated: e.updated_at,
        }
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

/// Only the fields present change; `null` clears an optional field (`full_name` cannot be
/// cleared).
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateEmployee {
    #[oai(validator(max_length = 200))]
    pub full_name: MaybeUndefined<JsonString>,
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

fn editor(caller: &Caller) -> Editor {
    Editor {
        user_id: caller.user_id(),
        is_admin: caller.is_admin(),
    }
}

fn employee_not_found() -> ApiError {
    ApiError::not_found("Employee not found")
}

/// 200 with one page of the employee list.
#[derive(poem_openapi::ApiResponse)]
pub enum EmployeeList {
    #[oai(status = 200)]
    Ok(
        PreRenderedJson<Vec<Employee>>,
        /// How many employees the whole list holds; with `q`, how many match, counted up to
        /// 1,000 (see `X-Total-Count-Exact`).
        #[oai(header = "X-Total-Count")]
        i64,
        /// `true` when `X-Total-Count` is the exact size of the list; `false` when a search
        /// matches more than 1,000 employees: `X-Total-Count` then says 1000, and at least that
        /// many match.
        #[oai(header = "X-Total-Count-Exact")]
        bool,
        /// Where the next page starts, for `cursor`; absent on the last page.
        #[oai(header = "X-Next-Cursor")]
        Option<String>,
    ),
}

/// The list parameters, checked: a bad one answers 422 `invalid_parameter` naming it (the
/// API's list and the console's people page).
pub fn list_query(
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
    #[oai(
        path = "/company/:company_id/employees",
        method = "post",
        operation_id = "createEmployee"
    )]
    async fn create_employee(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: Json<CreateEmployee>,
    ) -> Result<Created<Employee>, ApiError> {
        let caller = auth.0;
        caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let b = body.0;
        let full_name = EmployeeField::FullName
            .check(&b.full_name)?
            .unwrap_or_default();
        let new = NewEmployee {
            id: Uuid::new_v4(),
            public_slug: model::employee::new_public_slug(&full_name),
            full_name,
            job_title: EmployeeField::JobTitle.check_optional(b.job_title)?,
            email: EmployeeField::Email.check_optional(b.email)?,
            phone: EmployeeField::Phone.check_optional(b.phone)?,
            whatsapp: EmployeeField::Whatsapp.check_optional(b.whatsapp)?,
            photo_url: EmployeeField::PhotoUrl.check_optional(b.photo_url)?,
            bio: EmployeeField::Bio.check_optional(b.bio)?,
            social_links: model::employee::check_social_links(b.social_links.unwrap_or_default())?,
        };
        let audit = AuditContext::of(req, &caller);
        let employee = create_employee(&state, &caller, &audit, company_id.0, &new).await?;
        Ok(Created::Created(Json(Employee::shown(
            employee,
            &state.public_base_url,
        ))))
    }

    /// List a company's employees
    ///
    /// Oldest first unless `sort` says otherwise; `X-Total-Count` holds the size of the whole
    /// list (with `q`: how many match, counted up to 1,000; `X-Total-Count-Exact` is `false`
    /// when more match). While more follow, `X-Next-Cursor` holds where the next page starts:
    /// pass it as `cursor` with the same `sort` and `q` (not `skip`). A cursor stays good while
    /// employees come and go, and deep pages by cursor cost what the first one does; a page by
    /// `skip` costs more the further it is from either end of the list.
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
        let employees: Vec<Employee> = page
            .employees
            .into_iter()
            .map(|e| Employee::shown(e, &state.public_base_url))
            .collect();
        // Straight to bytes: poem-openapi's `Json` would first build a `serde_json::Value` of
        // every field of every row, which costs more than the database's part of the page.
        let body = serde_json::to_vec(&employees).map_err(ApiError::internal)?;
        let next = page.next.map(|cursor| cursor.encode());
        Ok(EmployeeList::Ok(
            PreRenderedJson::new(body.into()),
            page.total,
            page.total_exact,
            next,
        ))
    }

    /// Get an employee
    #[oai(
        path = "/employees/:employee_id",
        method = "get",
        operation_id = "getEmployee"
    )]
    async fn get_employee(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
    ) -> Result<Json<Employee>, ApiError> {
        let tenant = auth.0.employee_tenant(&state.db, employee_id.0).await?;
        let employee = state
            .db
            .read(&tenant, async |tx| {
                model::employee::get(&tx, employee_id.0).await
            })
            .await?
            .ok_or_else(employee_not_found)?;
        Ok(Json(Employee::shown(employee, &state.public_base_url)))
    }

    /// Update an employee
    ///
    /// Admins of the company, superadmins, and the employee whose login is linked to this
    /// record. Only the fields present change; `null` clears an optional field (and is refused
    /// for `full_name`).
    #[oai(
        path = "/employees/:employee_id",
        method = "put",
        operation_id = "updateEmployee"
    )]
    async fn update_employee(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
        body: Json<UpdateEmployee>,
    ) -> Result<Json<Employee>, ApiError> {
        let caller = auth.0;
        // The employee's company first (a superadmin's lookup): an unknown one answers 404
        // before the body is judged.
        let tenant = caller.employee_tenant(&state.db, employee_id.0).await?;
        let b = body.0;
        let optional = |field: EmployeeField, value: MaybeUndefined<JsonString>| {
            validate::maybe(value, |v| field.check(&v)).map(validate::change)
        };
        let change = EmployeeChange {
            full_name: validate::not_null("full_name", b.full_name)?
                .map(|n| EmployeeField::FullName.check(&n))
                .transpose()?
                .flatten(),
            job_title: optional(EmployeeField::JobTitle, b.job_title)?,
            email: optional(EmployeeField::Email, b.email)?,
            phone: optional(EmployeeField::Phone, b.phone)?,
            whatsapp: optional(EmployeeField::Whatsapp, b.whatsapp)?,
            photo_url: optional(EmployeeField::PhotoUrl, b.photo_url)?,
            bio: optional(EmployeeField::Bio, b.bio)?,
            social_links: match b.social_links {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(BTreeMap::new()),
                MaybeUndefined::Value(links) => Some(model::employee::check_social_links(links)?),
            },
        };
        let audit = AuditContext::of(req, &caller);
        let employee =
            update_employee(&state, &caller, &tenant, &audit, employee_id.0, change).await?;
        Ok(Json(Employee::shown(employee, &state.public_base_url)))
    }

    /// Delete an employee
    ///
    /// Admins of the company and superadmins. The card goes with it; a login linked to the
    /// employee stays, unlinked.
    #[oai(
        path = "/employees/:employee_id",
        method = "delete",
        operation_id = "deleteEmployee"
    )]
    async fn delete_employee(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let audit = AuditContext::of(req, &auth.0);
        delete_employee(&state, &auth.0, &audit, employee_id.0).await?;
        Ok(NoContent::NoContent)
    }

    /// Upload an employee's photo
    ///
    /// Admins of the company, superadmins, and the employee linked to this record. A JPEG, PNG
    /// or WebP image up to 5 MB, as the request body or as the `file` field of a form. It is
    /// decoded, turned upright, cropped to a square, stripped of all metadata and stored as a
    /// 512 px JPEG; `photo_url` then points to it.
    #[oai(
        path = "/employees/:employee_id/photo",
        method = "put",
        operation_id = "uploadEmployeePhoto"
    )]
    async fn put_photo(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
        body: ImageUpload,
    ) -> Result<Json<Employee>, ApiError> {
        let audit = AuditContext::of(req, &auth.0);
        let upload = Some(body.into_bytes());
        let employee = change_photo(&state, &auth.0, &audit, employee_id.0, upload).await?;
        Ok(Json(Employee::shown(employee, &state.public_base_url)))
    }

    /// Remove an employee's photo
    ///
    /// Who may upload it may remove it. The photo URL set on the employee, if any, shows again.
    #[oai(
        path = "/employees/:employee_id/photo",
        method = "delete",
        operation_id = "deleteEmployeePhoto"
    )]
    async fn delete_photo(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        employee_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let audit = AuditContext::of(req, &auth.0);
        change_photo(&state, &auth.0, &audit, employee_id.0, upload::NO_UPLOAD).await?;
        Ok(NoContent::NoContent)
    }
}

/// Adds an employee (with its card) to `company_id`, within the plan's limit: the one flow of
/// `POST /company/{id}/employees` and of the console's "Add person" form.
pub async fn create_employee(
    state: &AppState,
    caller: &Caller,
    audit: &AuditContext,
    company_id: Uuid,
    new: &NewEmployee,
) -> Result<model::employee::Employee, ApiError> {
    let tenant = caller.tenant_for(company_id, "Company not found")?;
    caller.require_admin()?;
    let employee = state
        .db
        .write(&tenant, async |tx| {
            let employee = model::employee::create(&tx, company_id, new).await?;
            let changes = Changes::between(None, Some(&employee));
            let event = AuditEvent::new("employee.created", Target::employee(employee.id));
            model::audit::record(&tx, audit, event.changes(changes)).await?;
            model::webhook::enqueue_employees(&tx, "employee.created", &[employee.id]).await?;
            Ok::<_, model::employee::CreateError>(employee)
        })
        .await?;
    // Its slugs may be remembered as unknown here; other instances hear of it by notification.
    state
        .cards
        .card_created(employee.company_id, &employee.company_slug, employee.id);
    Ok(employee)
}

/// Applies a checked change to an employee, if the caller may edit it (an admin, or the
/// employee's own login): the API's update and the console's edit form. `tenant` is
/// [`Caller::employee_tenant`] of the employee.
pub async fn update_employee(
    state: &AppState,
    caller: &Caller,
    tenant: &crate::db::Tenant,
    audit: &AuditContext,
    employee_id: Uuid,
    change: EmployeeChange,
) -> Result<model::employee::Employee, ApiError> {
    let editor = editor(caller);
    let employee = state
        .db
        .write(tenant, async |tx| {
            // The row as it was, locked (the update below locks it again: a no-op).
            let before = model::employee::lock_editable(&tx, employee_id, editor).await?;
            let after = model::employee::update(&tx, employee_id, editor, change).await?;
            let changes = Changes::between(Some(&before), Some(&after));
            let event = AuditEvent::new("employee.updated", Target::employee(after.id));
            model::audit::record(&tx, audit, event.changes(changes)).await?;
            model::webhook::enqueue_employees(&tx, "employee.updated", &[after.id]).await?;
            Ok::<_, model::employee::EditError>(after)
        })
        .await?;
    state
        .cards
        .forget_employee(employee.company_id, employee.id);
    Ok(employee)
}

/// Deletes an employee and its card (admins only): the API's delete and the console's.
pub async fn delete_employee(
    state: &AppState,
    caller: &Caller,
    audit: &AuditContext,
    employee_id: Uuid,
) -> Result<(), ApiError> {
    let tenant = caller.employee_tenant(&state.db, employee_id).await?;
    caller.require_admin()?;
    let editor = editor(caller);
    let deleted = state
        .db
        .write(&tenant, async |tx| {
            let before = model::employee::lock_editable(&tx, employee_id, editor).await?;
            // Queued while the row is still there: the event carries the employee as it was.
            model::webhook::enqueue_employees(&tx, "employee.deleted", &[employee_id]).await?;
            let deleted = model::employee::delete(&tx, employee_id).await?;
            let changes = Changes::between(Some(&before), None);
            let event = AuditEvent::new("employee.deleted", Target::employee(before.id));
            model::audit::record(&tx, audit, event.changes(changes)).await?;
            Ok::<_, model::employee::EditError>(deleted)
        })
        .await?;
    if !deleted {
        return Err(employee_not_found());
    }
    state
        .cards
        .forget_employee(tenant.company_id(), employee_id);
    Ok(())
}

/// Replaces (`Some`) or removes (`None`) the employee's uploaded photo; the employee as it is
/// now. Who may edit the employee is checked before the costly decode (and again under the row
/// lock when storing), so nobody makes the server decode an image for nothing. `upload` reads
/// the image's bytes (bounded in size), only once the caller is known to be allowed.
pub async fn change_photo(
    state: &AppState,
    caller: &Caller,
    audit: &AuditContext,
    employee_id: Uuid,
    upload: Option<impl Future<Output = Result<Vec<u8>, ApiError>>>,
) -> Result<model::employee::Employee, ApiError> {
    let tenant = caller.employee_tenant(&state.db, employee_id).await?;
    let editor = editor(caller);
    let image = match upload {
        Some(upload) => {
            state
                .db
                .read(&tenant, async |tx| {
                    model::employee::check_editable(&tx, employee_id, editor).await
                })
                .await?;
            let bytes = upload.await?;
            Some(upload::normalize(state, bytes, photo::normalize_photo).await?)
        }
        None => None,
    };
    let employee = state
        .db
        .write(&tenant, async |tx| {
            let employee = model::employee::lock_editable(&tx, employee_id, editor).await?;
            let slot = ImageSlot::Photo { employee_id };
            let old = employee.photo_hash.as_deref();
            model::media::replace(&tx, employee.company_id, slot, old, image.as_ref()).await?;
            let new = image.as_ref().map(|image| image.hash.as_str());
            let action = if new.is_some() {
                "employee.photo_set"
            } else {
                "employee.photo_removed"
            };
            let event = AuditEvent::new(action, Target::employee(employee_id));
            let changes = Changes::new().field("photo_hash", old, new);
            model::audit::record(&tx, audit, event.changes(changes)).await?;
            model::webhook::enqueue_employees(&tx, "employee.updated", &[employee_id]).await?;
            model::employee::get(&tx, employee_id)
                .await?
                .ok_or(model::employee::EditError::NotFound)
        })
        .await?;
    state
        .cards
        .forget_employee(tenant.company_id(), employee_id);
    Ok(employee)
}
