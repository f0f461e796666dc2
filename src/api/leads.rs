//! A company's leads, for its members: admins (and superadmins) see all of them, an employee
//! only those left on their own card. Listing, one lead, its vCard, the CSV export, and the
//! erasure (admins only).

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use poem::{Body, Request, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::{Binary, Json},
};
use uuid::Uuid;

use super::{
    ApiTags, AppState, NoContent, attachment, csv_export,
    time_bound::{self, TimeBound},
};
use crate::{
    auth::{BearerAuth, Caller, Role},
    card::{CardProfile, CardUrls, vcard},
    db::{Db, DbError, Tenant},
    error::ApiError,
    model::{
        self,
        audit::{AuditContext, AuditEvent, Target},
        lead::{Cursor, ListQuery, Scope},
    },
};

pub const DEFAULT_LEAD_PAGE: u32 = 50;
pub const MAX_LEAD_PAGE: u32 = 200;
/// Leads per page of the CSV export, each page a read of its own.
const EXPORT_PAGE: i64 = 1000;
/// The longest search.
const MAX_SEARCH: usize = 200;

#[derive(Debug, Object)]
pub struct Lead {
    pub id: Uuid,
    pub company_id: Uuid,
    /// The card it was left on; `null` once that employee was deleted.
    #[oai(nullable)]
    pub employee_id: Option<Uuid>,
    /// The card's name when the lead was left.
    pub employee_name: String,
    pub created_at: DateTime<Utc>,
    pub name: String,
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub phone: Option<String>,
    #[oai(nullable)]
    pub company: Option<String>,
    #[oai(nullable)]
    pub job_title: Option<String>,
    #[oai(nullable)]
    pub note: Option<String>,
    /// Whether the visitor consented, and to what words (`null` when none was asked).
    pub consent_given: bool,
    #[oai(nullable)]
    pub consent_text: Option<String>,
    /// The visitor asked for the card's vCard by email.
    pub vcard_requested: bool,
}

impl From<model::lead::Lead> for Lead {
    fn from(l: model::lead::Lead) -> Self {
        Self {
            id: l.id,
            company_id: l.company_id,
            employee_id: l.employee_id,
            employee_name: l.employee_name,
            created_at: l.created_at,
            name: l.name,
            email: l.email,
            phone: l.phone,
            company: l.company,
            job_title: l.job_title,
            note: l.note,
            consent_given: l.consent_given,
            consent_text: l.consent_text,
            vcard_requested: l.vcard_requested,
        }
    }
}

#[derive(Debug, Object)]
pub struct LeadPage {
    /// Newest first.
    pub leads: Vec<Lead>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub enum LeadsCsv {
    /// The leads as CSV, newest first, streamed. A failure after the first byte cuts the
    /// response short, so a truncated file never looks complete.
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Ok(Binary<Body>, #[oai(header = "Content-Disposition")] String),
}

#[derive(ApiResponse)]
pub enum LeadVcard {
    /// The lead as a vCard 3.0, as an attachment.
    #[oai(status = 200, content_type = "text/vcard; charset=utf-8")]
    Ok(Binary<Bytes>, #[oai(header = "Content-Disposition")] String),
}

fn lead_not_found() -> ApiError {
    ApiError::not_found("Lead not found")
}

/// What the caller may see of its company's leads.
fn scope_of(caller: &Caller) -> Scope {
    match caller.role() {
        Role::Superadmin | Role::Admin => Scope::Company,
        Role::Employee => Scope::LinkedTo(caller.user_id()),
    }
}

/// The tenant of `/leads/{lead_id}`: the caller's own company, or for a superadmin the lead's.
async fn lead_tenant(db: &Db, caller: &Caller, lead_id: Uuid) -> Result<Tenant, ApiError> {
    if !caller.is_superadmin() {
        return Ok(caller.tenant());
    }
    let company = db
        .read(&caller.tenant(), async |tx| {
            model::lead::company_for_superadmin(&tx, lead_id).await
        })
        .await?
        .ok_or_else(lead_not_found)?;
    caller.tenant_for(company, "Lead not found")
}

/// The list's search and time bounds, checked.
type Filters = (Option<String>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The list's filters, checked.
fn filters(
    q: Option<String>,
    from: Option<&TimeBound>,
    to: Option<&TimeBound>,
) -> Result<Filters, ApiError> {
    let search = super::validate::optional_text("q", q, MAX_SEARCH)?;
    let (from, to) = time_bound::range(from, to, Tz::UTC)?;
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(ApiError::invalid("`from` must be before `to`"));
    }
    Ok((search, from, to))
}

pub async fn lead_of(
    state: &AppState,
    caller: &Caller,
    lead_id: Uuid,
) -> Result<model::lead::Lead, ApiError> {
    let tenant = lead_tenant(&state.db, caller, lead_id).await?;
    let scope = scope_of(caller);
    state
        .db
        .read(&tenant, async |tx| {
            model::lead::get(&tx, lead_id, scope).await
        })
        .await?
        .ok_or_else(lead_not_found)
}

pub struct LeadsApi;

#[OpenApi(tag = "ApiTags::Leads")]
impl LeadsApi {
    /// List a company's leads
    ///
    /// Admins and superadmins see every lead of the company; an employee those left on their
    /// own card. Newest first; `q` finds words in the name, email, phone, company, job title
    /// or note.
    #[oai(
        path = "/company/:company_id/leads",
        method = "get",
        operation_id = "listLeads"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list_leads(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// Words to find (case-insensitive), up to 200 characters.
        q: Query<Option<String>>,
        /// RFC 3339, or a date (from its midnight, UTC).
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC).
        to: Query<Option<TimeBound>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// How many, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<LeadPage>, ApiError> {
        let query = list_query(
            &auth.0,
            q.0,
            from.0.as_ref(),
            to.0.as_ref(),
            cursor.0,
            limit.0,
        )?;
        let (leads, next) = list(&state, &auth.0, company_id.0, &query).await?;
        Ok(Json(LeadPage {
            leads: leads.into_iter().map(Lead::from).collect(),
            next_cursor: next.map(|c| c.encode()),
        }))
    }

    /// Export a company's leads as CSV
    ///
    /// Who sees which leads as for the list, with its filters. Newest first, read a page at a
    /// time. Columns: `created_at,lead_id,employee_id,employee_name,name,email,phone,company,
    /// job_title,note,consent_given,consent_text,vcard_requested`. Values a spreadsheet would
    /// run as formulas start with `'`.
    #[oai(
        path = "/company/:company_id/leads/export.csv",
        method = "get",
        operation_id = "exportLeadsCsv"
    )]
    async fn export_leads(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// Words to find, as for the list.
        q: Query<Option<String>>,
        /// RFC 3339, or a date (from its midnight, UTC).
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC).
        to: Query<Option<TimeBound>>,
    ) -> Result<LeadsCsv, ApiError> {
        let body = export(
            &state,
            &auth.0,
            company_id.0,
            q.0,
            from.0.as_ref(),
            to.0.as_ref(),
        )
        .await?;
        Ok(LeadsCsv::Ok(
            Binary(body),
            "attachment; filename=\"leads.csv\"".to_owned(),
        ))
    }

    /// Get a lead
    #[oai(path = "/leads/:lead_id", method = "get", operation_id = "getLead")]
    async fn get_lead(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        lead_id: Path<Uuid>,
    ) -> Result<Json<Lead>, ApiError> {
        Ok(Json(lead_of(&state, &auth.0, lead_id.0).await?.into()))
    }

    /// Get a lead as a vCard
    ///
    /// vCard 3.0, to add the person to an address book.
    #[oai(
        path = "/leads/:lead_id/vcard",
        method = "get",
        operation_id = "getLeadVcard"
    )]
    async fn lead_vcard(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        lead_id: Path<Uuid>,
    ) -> Result<LeadVcard, ApiError> {
        let lead = lead_of(&state, &auth.0, lead_id.0).await?;
        let (text, disposition) = vcard_of(&lead);
        Ok(LeadVcard::Ok(Binary(Bytes::from(text)), disposition))
    }

    /// Erase a lead
    ///
    /// Admins of the company and superadmins. A GDPR erasure: the lead, and every message
    /// about it still held by the outbox (the employee's email, the visitor's card), are gone
    /// at once. The audit trail records that a lead was erased, not who it was.
    #[oai(
        path = "/leads/:lead_id",
        method = "delete",
        operation_id = "eraseLead"
    )]
    async fn erase_lead(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        lead_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let audit = AuditContext::of(req, &auth.0);
        erase(&state, &auth.0, &audit, lead_id.0).await?;
        Ok(NoContent::NoContent)
    }
}

/// The list's query from its parameters as given (the API's and the console's), checked.
pub fn list_query(
    caller: &Caller,
    q: Option<String>,
    from: Option<&TimeBound>,
    to: Option<&TimeBound>,
    cursor: Option<String>,
    limit: Option<u32>,
) -> Result<ListQuery, ApiError> {
    let (search, from, to) = filters(q, from, to)?;
    let after = cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()
        .map_err(|e| ApiError::unprocessable("invalid_cursor", e.to_string()))?;
    Ok(ListQuery {
        scope: scope_of(caller),
        search,
        from,
        to,
        after,
        limit: i64::from(limit.unwrap_or(DEFAULT_LEAD_PAGE).min(MAX_LEAD_PAGE)),
    })
}

/// One page of the company's leads that the caller may see, and the next page's cursor.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    company_id: Uuid,
    query: &ListQuery,
) -> Result<(Vec<model::lead::Lead>, Option<Cursor>), ApiError> {
    let tenant = caller.tenant_for(company_id, "Company not found")?;
    state
        .db
        .read(&tenant, async |tx| {
            model::lead::list(&tx, company_id, query).await
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Company not found"))
}

/// The CSV export of the leads the caller may see, with the list's filters, as a streamed body.
pub async fn export(
    state: &AppState,
    caller: &Caller,
    company_id: Uuid,
    q: Option<String>,
    from: Option<&TimeBound>,
    to: Option<&TimeBound>,
) -> Result<Body, ApiError> {
    let tenant = caller.tenant_for(company_id, "Company not found")?;
    let (search, from, to) = filters(q, from, to)?;
    let query = ListQuery {
        scope: scope_of(caller),
        search,
        from,
        to,
        after: None,
        limit: EXPORT_PAGE,
    };
    // The first page before any byte: a missing company is still a 404.
    let first = state
        .db
        .read(&tenant, async |tx| {
            model::lead::list(&tx, company_id, &query).await
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Company not found"))?;
    Ok(export_body(
        state.db.clone(),
        tenant,
        company_id,
        query,
        first,
    ))
}

/// A lead as a vCard 3.0, and the `Content-Disposition` of its download.
pub fn vcard_of(lead: &model::lead::Lead) -> (String, String) {
    let profile = CardProfile {
        employee_id: lead.id,
        company_id: lead.company_id,
        employee_name: lead.name.clone(),
        company_name: lead.company.clone().unwrap_or_default(),
        job_title: lead.job_title.clone(),
        email: lead.email.clone(),
        phone: lead.phone.clone(),
        bio: lead.note.clone(),
        ..CardProfile::minimal("lead", "lead", &lead.name)
    };
    // No card page to link to: a path is not a web link, so the vCard has no URL of it.
    let urls = CardUrls::new("", "lead", "lead");
    let disposition = attachment::content_disposition(
        &vcard::file_name(&lead.name),
        &vcard::file_name_utf8(&lead.name),
    );
    (vcard::v3(&profile, &urls, None), disposition)
}

/// Erases a lead (admins and superadmins): an employee who may see it is refused (403), a lead
/// the caller may not see is not found.
pub async fn erase(
    state: &AppState,
    caller: &Caller,
    audit: &AuditContext,
    lead_id: Uuid,
) -> Result<(), ApiError> {
    let tenant = lead_tenant(&state.db, caller, lead_id).await?;
    if caller.require_admin().is_err() {
        // An employee may see their own leads but not erase them; others' stay unseen.
        let scope = scope_of(caller);
        let seen = state
            .db
            .read(&tenant, async |tx| {
                model::lead::get(&tx, lead_id, scope).await
            })
            .await?;
        return Err(match seen {
            Some(_) => ApiError::forbidden("Only a company admin can erase a lead"),
            None => lead_not_found(),
        });
    }
    state
        .db
        .write(&tenant, async |tx| {
            let erased = model::lead::erase(&tx, lead_id).await?;
            if let Some(lead) = &erased {
                let event = AuditEvent::new("lead.erased", Target::lead(lead.id));
                model::audit::record(&tx, audit, event).await?;
            }
            Ok::<_, DbError>(erased)
        })
        .await?
        .ok_or_else(lead_not_found)?;
    Ok(())
}

pub const CSV_HEADER: &str = "created_at,lead_id,employee_id,employee_name,name,email,phone,\
company,job_title,note,consent_given,consent_text,vcard_requested\n";

/// The export's body: the first page, then the next ones read as the client takes them (each
/// read a transaction of its own).
fn export_body(
    db: Db,
    tenant: Tenant,
    company_id: Uuid,
    query: ListQuery,
    (leads, next): (Vec<model::lead::Lead>, Option<Cursor>),
) -> Body {
    let mut first = String::from(CSV_HEADER);
    for lead in &leads {
        write_csv(lead, &mut first);
    }
    csv_export::paged_body(first, next, ("lead export", company_id), move |after| {
        let (db, query) = (db.clone(), query.clone());
        async move {
            let query = ListQuery {
                after: Some(after),
                ..query
            };
            let page = db
                .read(&tenant, async |tx| {
                    model::lead::list(&tx, company_id, &query).await
                })
                .await?;
            let Some((leads, next)) = page else {
                return Ok((String::new(), None));
            };
            let mut out = String::with_capacity(leads.len() * 200);
            for lead in &leads {
                write_csv(lead, &mut out);
            }
            Ok::<_, DbError>((out, next))
        }
    })
}

fn write_csv(lead: &model::lead::Lead, out: &mut String) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let employee = lead
        .employee_id
        .map(|id| id.to_string())
        .unwrap_or_default();
    let fields = [
        lead.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        lead.id.to_string(),
        employee,
        lead.employee_name.clone(),
        lead.name.clone(),
        opt(&lead.email),
        opt(&lead.phone),
        opt(&lead.company),
        opt(&lead.job_title),
        opt(&lead.note),
        lead.consent_given.to_string(),
        opt(&lead.consent_text),
        lead.vcard_requested.to_string(),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_export::field(out, field);
    }
    out.push('\n');
}
