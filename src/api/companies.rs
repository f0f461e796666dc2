//! Companies (the tenants) and their branding.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    Object, OpenApi, param::Path, param::Query, payload::Json, types::MaybeUndefined,
};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{
    ApiTags, AppState, Created, JsonString, Paged, cards, page, subscriptions::Plan, validate,
};
use crate::{
    auth::{BearerAuth, Role},
    db::Tenant,
    error::ApiError,
};

#[derive(Debug, Object)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    #[oai(nullable)]
    pub domain: Option<String>,
    /// The uploaded logo (`PUT /company/{id}/logo`), or else the URL set here.
    #[oai(nullable)]
    pub logo_url: Option<String>,
    /// `#RGB` or `#RRGGBB`.
    #[oai(nullable)]
    pub brand_color: Option<String>,
    /// First segment of every public card URL. Chosen at creation and never changed, so printed
    /// QR codes keep working.
    pub slug: String,
    pub created_at: DateTime<Utc>,
}

impl Company {
    pub(super) fn from_row(row: &Row, base_url: &str) -> Result<Self, ApiError> {
        let get = |e| ApiError::internal(e);
        let id: Uuid = row.try_get("id").map_err(get)?;
        let logo_hash: Option<String> = row.try_get("logo_hash").map_err(get)?;
        let logo_url = match logo_hash {
            Some(hash) => Some(format!("{base_url}{}", cards::logo_path(id, &hash))),
            None => row.try_get("logo_url").map_err(get)?,
        };
        Ok(Self {
            id,
            name: row.try_get("name").map_err(get)?,
            domain: row.try_get("domain").map_err(get)?,
            logo_url,
            brand_color: row.try_get("brand_color").map_err(get)?,
            slug: row.try_get("slug").map_err(get)?,
            created_at: row.try_get("created_at").map_err(get)?,
        })
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateCompany {
    #[oai(validator(max_length = 200))]
    pub name: JsonString,
    #[oai(nullable, validator(max_length = 253))]
    pub domain: Option<JsonString>,
    #[oai(nullable, validator(max_length = 2048))]
    pub logo_url: Option<JsonString>,
    #[oai(nullable, validator(max_length = 7))]
    pub brand_color: Option<JsonString>,
    /// Defaults to `free`.
    #[oai(nullable)]
    pub plan: Option<Plan>,
}

/// Only the fields present change; `null` clears an optional field.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateCompany {
    #[oai(nullable, validator(max_length = 200))]
    pub name: Option<JsonString>,
    #[oai(nullable, validator(max_length = 253))]
    pub domain: MaybeUndefined<JsonString>,
    #[oai(nullable, validator(max_length = 2048))]
    pub logo_url: MaybeUndefined<JsonString>,
    #[oai(nullable, validator(max_length = 7))]
    pub brand_color: MaybeUndefined<JsonString>,
}

/// Tells an empty list from a missing company. (Row-level security already hides other tenants'
/// companies.)
const COMPANY_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1)";

pub(super) const GET_COMPANY: &str = "SELECT id, name, domain, logo_url, logo_hash, brand_color, slug, created_at FROM companies WHERE id = $1";

pub(super) const GET_COMPANY_FOR_UPDATE: &str =
    "SELECT id, name, domain, logo_url, logo_hash, brand_color, slug, created_at
     FROM companies WHERE id = $1 FOR UPDATE";

// No tenant filter: row-level security shows a tenant its own company, a superadmin all of them.
const LIST_COMPANIES: &str =
    "SELECT id, name, domain, logo_url, logo_hash, brand_color, slug, created_at
     FROM companies ORDER BY created_at, id OFFSET $1 LIMIT $2";
const COUNT_COMPANIES: &str = "SELECT count(*) FROM companies";

const UPDATE_COMPANY: &str =
    "UPDATE companies SET name = $2, domain = $3, logo_url = $4, brand_color = $5
     WHERE id = $1
     RETURNING id, name, domain, logo_url, logo_hash, brand_color, slug, created_at";

/// The company and its first subscription in one statement: a pipelined COMMIT can never
/// commit one without the other. A taken slug inserts nothing and returns no row.
const CREATE_COMPANY: &str = "WITH company AS (
         INSERT INTO companies (id, name, domain, logo_url, brand_color, slug)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT ON CONSTRAINT companies_slug_key DO NOTHING
         RETURNING id, name, domain, logo_url, logo_hash, brand_color, slug, created_at
     ), subscription AS (
         INSERT INTO subscriptions (company_id, plan) SELECT id, $7 FROM company
     )
     SELECT id, name, domain, logo_url, logo_hash, brand_color, slug, created_at FROM company";

/// One page of a list under `/company/{company_id}/…`, its total, and whether the company
/// exists at all (an empty list of a missing company is a 404), in one pipelined read.
pub async fn company_page(
    state: &AppState,
    tenant: &Tenant,
    company_id: Uuid,
    (list_sql, count_sql): (&str, &str),
    (offset, limit): (i64, i64),
) -> Result<(Vec<Row>, i64), ApiError> {
    let (exists, rows, total) = state
        .db
        .read(tenant, async |tx| {
            let (exists, rows, count) = tokio::join!(
                tx.query_one(COMPANY_EXISTS, [&company_id]),
                tx.query(list_sql, [&company_id, &offset, &limit]),
                tx.query_one(count_sql, [&company_id]),
            );
            let exists: bool = exists?.try_get(0).map_err(ApiError::internal)?;
            let total: i64 = count?.try_get(0).map_err(ApiError::internal)?;
            Ok::<_, ApiError>((exists, rows?, total))
        })
        .await?;
    if !exists {
        return Err(ApiError::not_found("Company not found"));
    }
    Ok((rows, total))
}

/// Slugs to try for a new company, in order: `base`, then `base-<random>`. Concurrent sign-ups
/// of the same name each end up with their own.
pub fn slug_candidates(base: &str) -> impl Iterator<Item = String> + '_ {
    (0..5).map(move |i| {
        if i == 0 {
            base.to_owned()
        } else {
            format!("{base}-{}", validate::random_suffix())
        }
    })
}

pub fn no_free_slug() -> ApiError {
    ApiError::conflict(
        "slug_taken",
        "Could not find a free slug for this name, try another",
    )
}

/// The slug base of a company name: at most 60 characters, leaving room for a suffix.
pub fn company_slug_base(name: &str) -> String {
    validate::slug_base(name, 60, "company")
}

pub struct CompaniesApi;

#[OpenApi(tag = "ApiTags::Companies")]
impl CompaniesApi {
    /// Create a company
    ///
    /// Superadmins only. The company starts on the given plan (default `free`) with no users;
    /// add an admin with `POST /api/company/{company_id}/users`.
    #[oai(path = "/company", method = "post")]
    async fn create_company(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<CreateCompany>,
    ) -> Result<Created<Company>, ApiError> {
        auth.0.require_superadmin()?;
        let body = body.0;
        let name = validate::required_text("name", &body.name, 200)?;
        let domain = validate::optional_domain("domain", body.domain)?;
        let logo_url = validate::optional_http_url("logo_url", body.logo_url)?;
        let brand_color = validate::optional_color("brand_color", body.brand_color)?;
        let plan = body.plan.unwrap_or(Plan::Free);
        let id = Uuid::new_v4();
        // The superadmin enters the new tenant explicitly to create it.
        let tenant = Tenant::new(id, Role::Superadmin);
        let mut created = None;
        for slug in slug_candidates(&company_slug_base(&name)) {
            let row = state
                .db
                .write(&tenant, async |tx| {
                    tx.query_opt(
                        CREATE_COMPANY,
                        [
                            &id,
                            &name,
                            &domain,
                            &logo_url,
                            &brand_color,
                            &slug,
                            &plan.as_str(),
                        ],
                    )
                    .await
                })
                .await
                .map_err(ApiError::from)?;
            if let Some(row) = row {
                created = Some(Company::from_row(&row, &state.public_base_url)?);
                break;
            }
        }
        let company = created.ok_or_else(no_free_slug)?;
        Ok(Created::Created(Json(company)))
    }

    /// List companies
    ///
    /// A superadmin sees every company; anyone else sees their own. `X-Total-Count` holds the
    /// total.
    #[oai(path = "/company", method = "get")]
    async fn list_companies(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// How many to skip.
        #[oai(validator(minimum(value = "0"), maximum(value = "4294967295")))]
        skip: Query<Option<u32>>,
        /// How many to return, 1 to 100 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Paged<Company>, ApiError> {
        let (offset, limit) = page(skip.0, limit.0)?;
        let (rows, total) = state
            .db
            .read(&auth.0.tenant(), async |tx| {
                let (rows, count) = tokio::join!(
                    tx.query(LIST_COMPANIES, [&offset, &limit]),
                    tx.query_one(COUNT_COMPANIES, []),
                );
                let total: i64 = count?.try_get(0).map_err(ApiError::internal)?;
                Ok::<_, ApiError>((rows?, total))
            })
            .await?;
        let companies = rows
            .iter()
            .map(|row| Company::from_row(row, &state.public_base_url))
            .collect::<Result<_, _>>()?;
        Ok(Paged::Ok(Json(companies), total))
    }

    /// Get a company
    #[oai(path = "/company/:company_id", method = "get")]
    async fn get_company(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
    ) -> Result<Json<Company>, ApiError> {
        let tenant = auth.0.tenant_for(company_id.0, "Company not found")?;
        let row = state
            .db
            .read(&tenant, async |tx| {
                tx.query_opt(GET_COMPANY, [&company_id.0]).await
            })
            .await
            .map_err(ApiError::from)?;
        let row = row.ok_or_else(|| ApiError::not_found("Company not found"))?;
        Ok(Json(Company::from_row(&row, &state.public_base_url)?))
    }

    /// Update a company's name and branding
    ///
    /// Admins of the company and superadmins. Only the fields present change; `null` clears
    /// `domain`, `logo_url` or `brand_color`. The slug never changes.
    #[oai(path = "/company/:company_id", method = "put")]
    async fn update_company(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: Json<UpdateCompany>,
    ) -> Result<Json<Company>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let body = body.0;
        let name = body
            .name
            .map(|n| validate::required_text("name", &n, 200))
            .transpose()?;
        let domain = validate::maybe(body.domain, |v| {
            validate::optional_domain("domain", Some(v))
        })?;
        let logo_url = validate::maybe(body.logo_url, |v| {
            validate::optional_http_url("logo_url", Some(v))
        })?;
        let brand_color = validate::maybe(body.brand_color, |v| {
            validate::optional_color("brand_color", Some(v))
        })?;

        let company = state
            .db
            .write(&tenant, async |tx| {
                let Some(row) = tx
                    .query_opt(GET_COMPANY_FOR_UPDATE, [&company_id.0])
                    .await?
                else {
                    return Err(ApiError::not_found("Company not found"));
                };
                let mut company = Company::from_row(&row, "")?;
                // The URL set on the company, not the uploaded logo that takes its place.
                company.logo_url = row.try_get("logo_url").map_err(ApiError::internal)?;
                if let Some(name) = name {
                    company.name = name;
                }
                domain.update_to(&mut company.domain);
                logo_url.update_to(&mut company.logo_url);
                brand_color.update_to(&mut company.brand_color);
                let row = tx
                    .query_one(
                        UPDATE_COMPANY,
                        [
                            &company.id,
                            &company.name,
                            &company.domain,
                            &company.logo_url,
                            &company.brand_color,
                        ],
                    )
                    .await?;
                Company::from_row(&row, &state.public_base_url)
            })
            .await?;
        state.cards.forget_company(company.id);
        Ok(Json(company))
    }
}
