//! Companies (the tenants) and their branding.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Object, OpenApi, param::Path, param::Query, payload::Json, types::MaybeUndefined,
};
use uuid::Uuid;

use super::{
    ApiTags, AppState, Created, JsonString, NoContent, Paged, page,
    schemas::Plan,
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
        company::{CompanyChange, LeadSettingsChange, NewCompany},
        media::ImageSlot,
    },
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
    /// Cards show a "Share your contact" form and take leads (default true).
    pub lead_capture_enabled: bool,
    /// A lead needs the visitor's consent to `lead_consent_text` (default false).
    pub lead_consent_required: bool,
    /// The consent the card asks for; `null`: a default sentence naming the company.
    #[oai(nullable)]
    pub lead_consent_text: Option<String>,
    /// Linked beside the consent, and under the form.
    #[oai(nullable)]
    pub privacy_policy_url: Option<String>,
    /// Leads older than this many days are erased automatically; `null` keeps them.
    #[oai(nullable)]
    pub lead_retention_days: Option<i32>,
}

impl Company {
    fn shown(company: model::company::Company, base_url: &str) -> Self {
        Self {
            logo_url: company.shown_logo(base_url),
            id: company.id,
            name: company.name,
            domain: company.domain,
            brand_color: company.brand_color,
            slug: company.slug,
            created_at: company.created_at,
            lead_capture_enabled: company.leads.capture_enabled,
            lead_consent_required: company.leads.consent_required,
            lead_consent_text: company.leads.consent_text,
            privacy_policy_url: company.leads.privacy_policy_url,
            lead_retention_days: company.leads.retention_days,
        }
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

/// Only the fields present change; `null` clears an optional field (`name` cannot be cleared).
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateCompany {
    #[oai(validator(max_length = 200))]
    pub name: MaybeUndefined<JsonString>,
    #[oai(nullable, validator(max_length = 253))]
    pub domain: MaybeUndefined<JsonString>,
    #[oai(nullable, validator(max_length = 2048))]
    pub logo_url: MaybeUndefined<JsonString>,
    #[oai(nullable, validator(max_length = 7))]
    pub brand_color: MaybeUndefined<JsonString>,
    pub lead_capture_enabled: MaybeUndefined<bool>,
    pub lead_consent_required: MaybeUndefined<bool>,
    /// Up to 1000 characters; `null` (or empty): the default sentence.
    #[oai(nullable, validator(max_length = 1000))]
    pub lead_consent_text: MaybeUndefined<JsonString>,
    /// An absolute http(s) URL.
    #[oai(nullable, validator(max_length = 2048))]
    pub privacy_policy_url: MaybeUndefined<JsonString>,
    /// 1 to 3650; `null` keeps leads until they are erased.
    #[oai(nullable)]
    pub lead_retention_days: MaybeUndefined<i64>,
}

/// The longest consent text a card shows.
pub const MAX_CONSENT_TEXT: usize = 1000;
/// The longest lead retention, in days (ten years).
pub const MAX_LEAD_RETENTION_DAYS: i64 = 3650;

/// The lead settings of an update, checked: `null` clears the texts and the retention, and is
/// refused for the two switches.
fn lead_settings_change(body: &mut UpdateCompany) -> Result<LeadSettingsChange, ApiError> {
    Ok(LeadSettingsChange {
        capture_enabled: validate::not_null(
            "lead_capture_enabled",
            std::mem::take(&mut body.lead_capture_enabled),
        )?,
        consent_required: validate::not_null(
            "lead_consent_required",
            std::mem::take(&mut body.lead_consent_required),
        )?,
        consent_text: validate::change(validate::maybe(
            std::mem::take(&mut body.lead_consent_text),
            |v| validate::optional_multiline_text("lead_consent_text", Some(v), MAX_CONSENT_TEXT),
        )?),
        privacy_policy_url: validate::change(validate::maybe(
            std::mem::take(&mut body.privacy_policy_url),
            |v| validate::optional_http_url("privacy_policy_url", Some(v)),
        )?),
        retention_days: validate::change(validate::maybe(
            std::mem::take(&mut body.lead_retention_days),
            |days| match i32::try_from(days) {
                Ok(days) if (1..=MAX_LEAD_RETENTION_DAYS).contains(&i64::from(days)) => {
                    Ok(Some(days))
                }
                _ => Err(ApiError::invalid(format!(
                    "`lead_retention_days` must be from 1 to {MAX_LEAD_RETENTION_DAYS} \
                     (or null to keep leads)"
                ))),
            },
        )?),
    })
}

/// The tenant of `/company/{company_id}/…` for a change, which only its admins (and
/// superadmins) may make.
pub fn admin_tenant(caller: &Caller, company_id: Uuid) -> Result<crate::db::Tenant, ApiError> {
    let tenant = caller.tenant_for(company_id, "Company not found")?;
    caller.require_admin()?;
    Ok(tenant)
}

fn company_not_found() -> ApiError {
    ApiError::not_found("Company not found")
}

pub struct CompaniesApi;

#[OpenApi(tag = "ApiTags::Companies")]
impl CompaniesApi {
    /// Create a company
    ///
    /// Superadmins only. The company starts on the given plan (default `free`) with no users;
    /// add an admin with `POST /api/company/{company_id}/users`.
    #[oai(path = "/company", method = "post", operation_id = "createCompany")]
    async fn create_company(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        body: Json<CreateCompany>,
    ) -> Result<Created<Company>, ApiError> {
        auth.0.require_superadmin()?;
        let body = body.0;
        let new = NewCompany {
            id: Uuid::new_v4(),
            name: validate::required_text("name", &body.name, 200)?,
            domain: validate::optional_domain("domain", body.domain)?,
            logo_url: validate::optional_http_url("logo_url", body.logo_url)?,
            brand_color: validate::optional_color("brand_color", body.brand_color)?,
            plan: body.plan.unwrap_or(Plan::Free).as_str(),
        };
        // The superadmin enters the new tenant explicitly to create it.
        let tenant = auth.0.enter_as_superadmin(new.id)?;
        let audit = AuditContext::of(req, &auth.0);
        for slug in model::company::slug_candidates(&new.name) {
            let created = state
                .db
                .write(&tenant, async |tx| {
                    let company = model::company::create(&tx, &new, &slug).await?;
                    if let Some(company) = &company {
                        let changes = Changes::between(None, Some(company)).field(
                            "plan",
                            None::<&str>,
                            new.plan,
                        );
                        let event = AuditEvent::new("company.created", Target::company(company.id));
                        model::audit::record(&tx, &audit, event.changes(changes)).await?;
                    }
                    Ok::<_, crate::db::DbError>(company)
                })
                .await?;
            if let Some(company) = created {
                return Ok(Created::Created(Json(Company::shown(
                    company,
                    &state.public_base_url,
                ))));
            }
        }
        Err(ApiError::no_free_slug())
    }

    /// List companies
    ///
    /// A superadmin sees every company; anyone else sees their own. `X-Total-Count` holds the
    /// total.
    #[oai(path = "/company", method = "get", operation_id = "listCompanies")]
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
        let page = page(skip.0, limit.0)?;
        let (companies, total) = state
            .db
            .read(&auth.0.tenant(), async |tx| {
                model::company::list(&tx, page).await
            })
            .await?;
        let companies = companies
            .into_iter()
            .map(|c| Company::shown(c, &state.public_base_url))
            .collect();
        Ok(Paged::Ok(Json(companies), total))
    }

    /// Get a company
    #[oai(
        path = "/company/:company_id",
        method = "get",
        operation_id = "getCompany"
    )]
    async fn get_company(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
    ) -> Result<Json<Company>, ApiError> {
        let tenant = auth.0.tenant_for(company_id.0, "Company not found")?;
        let company = state
            .db
            .read(&tenant, async |tx| {
                model::company::get(&tx, company_id.0).await
            })
            .await?
            .ok_or_else(company_not_found)?;
        Ok(Json(Company::shown(company, &state.public_base_url)))
    }

    /// Update a company's name and branding
    ///
    /// Admins of the company and superadmins. Only the fields present change; `null` clears
    /// `domain`, `logo_url`, `brand_color`, `lead_consent_text`, `privacy_policy_url` or
    /// `lead_retention_days` (and is refused for `name` and the two lead switches). The slug
    /// never changes.
    #[oai(
        path = "/company/:company_id",
        method = "put",
        operation_id = "updateCompany"
    )]
    async fn update_company(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: Json<UpdateCompany>,
    ) -> Result<Json<Company>, ApiError> {
        let tenant = admin_tenant(&auth.0, company_id.0)?;
        let mut body = body.0;
        let leads = lead_settings_change(&mut body)?;
        let change = CompanyChange {
            name: validate::not_null("name", body.name)?
                .map(|n| validate::required_text("name", &n, 200))
                .transpose()?,
            domain: validate::change(validate::maybe(body.domain, |v| {
                validate::optional_domain("domain", Some(v))
            })?),
            logo_url: validate::change(validate::maybe(body.logo_url, |v| {
                validate::optional_http_url("logo_url", Some(v))
            })?),
            brand_color: validate::change(validate::maybe(body.brand_color, |v| {
                validate::optional_color("brand_color", Some(v))
            })?),
            leads,
        };
        let audit = AuditContext::of(req, &auth.0);
        let company = update_company(&state, &tenant, &audit, company_id.0, change).await?;
        Ok(Json(Company::shown(company, &state.public_base_url)))
    }

    /// Upload the company's logo
    ///
    /// Admins of the company and superadmins. A JPEG, PNG or WebP image up to 5 MB, as the
    /// request body or as the `file` field of a form. It is decoded, stripped of all metadata,
    /// scaled to fit 512 px (keeping its proportions and transparency) and stored as PNG;
    /// `logo_url` then points to it.
    #[oai(
        path = "/company/:company_id/logo",
        method = "put",
        operation_id = "uploadCompanyLogo"
    )]
    async fn put_logo(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: ImageUpload,
    ) -> Result<Json<Company>, ApiError> {
        let audit = AuditContext::of(req, &auth.0);
        let upload = Some(body.into_bytes());
        let company = change_logo(&state, &auth.0, &audit, company_id.0, upload).await?;
        Ok(Json(Company::shown(company, &state.public_base_url)))
    }

    /// Remove the company's logo
    #[oai(
        path = "/company/:company_id/logo",
        method = "delete",
        operation_id = "deleteCompanyLogo"
    )]
    async fn delete_logo(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let audit = AuditContext::of(req, &auth.0);
        change_logo(&state, &auth.0, &audit, company_id.0, upload::NO_UPLOAD).await?;
        Ok(NoContent::NoContent)
    }
}

/// Changes a company's name and branding (checked, and only by its admins: `tenant` is
/// [`admin_tenant`]'s): the API's update and the console's branding form.
pub async fn update_company(
    state: &AppState,
    tenant: &crate::db::Tenant,
    audit: &AuditContext,
    company_id: Uuid,
    change: CompanyChange,
) -> Result<model::company::Company, ApiError> {
    let company = state
        .db
        .write(tenant, async |tx| {
            // The row as it was, locked (the update below locks it again: a no-op).
            let Some(before) = model::company::lock(&tx, company_id).await? else {
                return Ok(None);
            };
            let after = model::company::update(&tx, company_id, change).await?;
            if let Some(after) = &after {
                let changes = Changes::between(Some(&before), Some(after));
                let event = AuditEvent::new("company.updated", Target::company(after.id));
                model::audit::record(&tx, audit, event.changes(changes)).await?;
            }
            Ok::<_, crate::db::DbError>(after)
        })
        .await?
        .ok_or_else(company_not_found)?;
    state.cards.forget_company(company.id);
    Ok(company)
}

/// Replaces (`Some`) or removes (`None`) the company's uploaded logo; the company as it is now.
/// `upload` reads the image's bytes (bounded in size), once the caller is known to be an admin.
pub async fn change_logo(
    state: &AppState,
    caller: &Caller,
    audit: &AuditContext,
    company_id: Uuid,
    upload: Option<impl Future<Output = Result<Vec<u8>, ApiError>>>,
) -> Result<model::company::Company, ApiError> {
    let tenant = admin_tenant(caller, company_id)?;
    let image = match upload {
        Some(upload) => Some(upload::normalize(state, upload.await?, photo::normalize_logo).await?),
        None => None,
    };
    let company = state
        .db
        .write(&tenant, async |tx| {
            let Some(company) = model::company::lock(&tx, company_id).await? else {
                return Ok(None);
            };
            let slot = ImageSlot::Logo { company_id };
            let old = company.logo_hash.as_deref();
            model::media::replace(&tx, company_id, slot, old, image.as_ref()).await?;
            let new = image.as_ref().map(|image| image.hash.as_str());
            let action = if new.is_some() {
                "company.logo_set"
            } else {
                "company.logo_removed"
            };
            let event = AuditEvent::new(action, Target::company(company_id));
            let changes = Changes::new().field("logo_hash", old, new);
            model::audit::record(&tx, audit, event.changes(changes)).await?;
            model::company::get(&tx, company_id).await
        })
        .await?
        .ok_or_else(company_not_found)?;
    state.cards.forget_company(company_id);
    Ok(company)
}
