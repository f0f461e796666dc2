//! Bulk import of employees: a CSV file or a JSON list of rows, matched by email, checked row by
//! row (see [`crate::model::employee_import`]).

use std::{collections::BTreeMap, time::Duration};

use poem::{Request, RequestBody, http::StatusCode, web::Data};
use poem_openapi::{
    ApiRequest, Enum, Object, OpenApi,
    param::{Path, Query},
    payload::{Json, ParsePayload, Payload},
    registry::{MetaSchema, MetaSchemaRef},
    types::MaybeUndefined,
};
use uuid::Uuid;

use super::{ApiTags, AppState, JsonString};
use crate::{
    auth::BearerAuth,
    error::ApiError,
    model::{
        audit::AuditContext,
        employee_import::{
            self, CsvError, ImportError, ImportReport, ImportRow, MAX_IMPORT_BYTES, MAX_ROWS,
            RowOutcome,
        },
    },
};

/// The largest request body of the import route: the file, and room for JSON's quoting.
pub const MAX_IMPORT_REQUEST_BYTES: usize = MAX_IMPORT_BYTES + 64 * 1024;

/// An import writes up to 10,000 rows in one transaction: more than the usual deadline allows
/// on a busy database, still bounded.
const IMPORT_DEADLINE: Duration = Duration::from_secs(60);

/// Whether a request goes to the import route (which gets a larger body limit, and whose JSON
/// rows are checked one by one, a NUL in one being that row's error).
pub fn is_import_route(method: &poem::http::Method, path: &str) -> bool {
    method == poem::http::Method::POST
        && (path.starts_with("/api/company/") && path.ends_with("/employees/import")
            // The console's upload step.
            || path == "/app/import")
}

/// A CSV file, as the request body.
pub struct CsvFile(pub Vec<u8>);

impl Payload for CsvFile {
    const CONTENT_TYPE: &'static str = "text/csv";

    fn check_content_type(content_type: &str) -> bool {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("text/csv")
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            format: Some("binary"),
            ..MetaSchema::new("string")
        }))
    }
}

impl ParsePayload for CsvFile {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        use poem::FromRequest;
        Ok(Self(Vec::<u8>::from_request(request, body).await?))
    }
}

/// One employee to import. A field left out keeps an updated employee's value; `null` or `""`
/// clears it. Fields are checked as for a single employee, a bad one being the row's error.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ImportRowInput {
    #[oai(nullable)]
    pub full_name: MaybeUndefined<JsonString>,
    /// Matches an employee of the company (ignoring case), which is then updated.
    #[oai(nullable)]
    pub email: MaybeUndefined<JsonString>,
    #[oai(nullable)]
    pub job_title: MaybeUndefined<JsonString>,
    #[oai(nullable)]
    pub phone: MaybeUndefined<JsonString>,
    #[oai(nullable)]
    pub whatsapp: MaybeUndefined<JsonString>,
    #[oai(nullable)]
    pub photo_url: MaybeUndefined<JsonString>,
    #[oai(nullable)]
    pub bio: MaybeUndefined<JsonString>,
    /// `{name: url}`: replaces all the links; `null` or `{}` removes them.
    #[oai(nullable)]
    pub social_links: MaybeUndefined<BTreeMap<String, JsonString>>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ImportRows {
    /// At most 10,000.
    #[oai(validator(max_items = 10000))]
    pub rows: Vec<ImportRowInput>,
}

/// The employees to import.
#[derive(ApiRequest)]
pub enum ImportBody {
    /// A CSV file (UTF-8, comma-separated, `"` quoting) whose first line names its columns:
    /// `full_name`, `email`, `job_title`, `phone`, `whatsapp`, `photo_url`, `bio`, and
    /// `social_links.<name>` for each link (e.g. `social_links.linkedin`). Other columns are
    /// ignored and reported. An empty cell clears the field. At most 10,000 rows, 8 MiB.
    Csv(CsvFile),
    /// The rows as JSON.
    Json(Json<ImportRows>),
}

#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ImportOutcome {
    Created,
    Updated,
    Unchanged,
    Error,
}

#[derive(Debug, Object)]
pub struct RowProblem {
    /// The field, or null for the row as a whole.
    #[oai(nullable)]
    pub field: Option<String>,
    /// e.g. `validation_error`, `duplicate_in_file`, `wrong_field_count`, `invalid_encoding`.
    pub code: String,
    pub detail: String,
}

#[derive(Debug, Object)]
pub struct ImportRowResult {
    /// 1-based: the CSV record after the header (the header is row 0), or the position in
    /// `rows`.
    pub row: u64,
    pub outcome: ImportOutcome,
    /// The employee created, updated or unchanged; null for an error, and for a row a dry run
    /// would create.
    #[oai(nullable)]
    pub employee_id: Option<Uuid>,
    /// Why the row is in error (empty otherwise).
    pub problems: Vec<RowProblem>,
}

#[derive(Debug, Object)]
pub struct ImportTotals {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub errors: u64,
}

#[derive(Debug, Object)]
pub struct EmployeeImport {
    /// `true`: nothing was written; the report says what the import would do.
    pub dry_run: bool,
    pub totals: ImportTotals,
    /// Columns of the CSV file that are not employee fields, ignored.
    pub ignored_columns: Vec<String>,
    pub rows: Vec<ImportRowResult>,
}

fn shown(report: ImportReport, ignored_columns: Vec<String>) -> EmployeeImport {
    let count = |n: usize| n as u64;
    let t = report.totals;
    EmployeeImport {
        dry_run: report.dry_run,
        totals: ImportTotals {
            rows: count(t.rows),
            created: count(t.created),
            updated: count(t.updated),
            unchanged: count(t.unchanged),
            errors: count(t.errors),
        },
        ignored_columns,
        rows: report
            .rows
            .into_iter()
            .map(|r| ImportRowResult {
                row: count(r.row),
                outcome: match r.outcome {
                    RowOutcome::Created => ImportOutcome::Created,
                    RowOutcome::Updated => ImportOutcome::Updated,
                    RowOutcome::Unchanged => ImportOutcome::Unchanged,
                    RowOutcome::Error => ImportOutcome::Error,
                },
                employee_id: r.employee_id,
                problems: r
                    .problems
                    .into_iter()
                    .map(|p| RowProblem {
                        field: p.field,
                        code: p.code,
                        detail: p.detail,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A JSON row as the model takes it: left out is "not given", `null` is "cleared".
fn json_row(row: usize, input: ImportRowInput) -> ImportRow {
    let given = |value: MaybeUndefined<JsonString>| match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(String::new()),
        MaybeUndefined::Value(v) => Some(v.into_inner()),
    };
    ImportRow {
        row,
        full_name: given(input.full_name),
        email: given(input.email),
        job_title: given(input.job_title),
        phone: given(input.phone),
        whatsapp: given(input.whatsapp),
        photo_url: given(input.photo_url),
        bio: given(input.bio),
        social_links: match input.social_links {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(BTreeMap::new()),
            MaybeUndefined::Value(links) => Some(
                links
                    .into_iter()
                    .map(|(name, url)| (name, url.into_inner()))
                    .collect(),
            ),
        },
        problems: Vec::new(),
    }
}

pub fn csv_error(e: CsvError) -> ApiError {
    ApiError::unprocessable(e.code(), e.to_string())
}

fn import_error(e: ImportError) -> ApiError {
    match e {
        ImportError::NoCompany => ApiError::not_found("Company not found"),
        ImportError::TooManyRows => csv_error(CsvError::TooManyRows),
        ImportError::PlanFull {
            plan_title,
            limit,
            existing,
            creating,
        } => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            // The code a single employee's creation answers with.
            "plan_limit_reached",
            format!(
                "The {plan_title} plan allows {limit} employees; the company has {existing} and \
                 the import would create {creating}. Nothing was imported: upgrade the plan or \
                 import fewer rows."
            ),
        ),
        ImportError::Db(e) => e.into(),
    }
}

/// Imports (or, with `dry_run`, checks) `rows` into `company_id` in one transaction, and tells
/// the card caches: the flow behind `POST /company/{id}/employees/import` and the console's
/// import. The caller is an admin of the company; `progress` hears of each batch written.
pub async fn run(
    state: &AppState,
    caller: &crate::auth::Caller,
    audit: &AuditContext,
    company_id: Uuid,
    rows: &[employee_import::ImportRow],
    dry_run: bool,
    progress: &mut (dyn FnMut(employee_import::Progress) + Send),
) -> Result<employee_import::ImportReport, ApiError> {
    let tenant = caller.tenant_for(company_id, "Company not found")?;
    caller.require_admin()?;
    let db = state.db.clone().with_deadline(IMPORT_DEADLINE);
    let report = db
        .write(&tenant, async |tx| {
            employee_import::import(&tx, rows, dry_run, company_id, audit, progress).await
        })
        .await
        .map_err(import_error)?;
    if !dry_run {
        for row in &report.rows {
            match (row.outcome, row.employee_id) {
                (RowOutcome::Created, Some(id)) => {
                    state
                        .cards
                        .card_created(company_id, &report.company_slug, id)
                }
                (RowOutcome::Updated, Some(id)) => state.cards.forget_employee(company_id, id),
                _ => {}
            }
        }
    }
    Ok(report)
}

pub struct EmployeeImportApi;

#[OpenApi(tag = "ApiTags::Employees")]
impl EmployeeImportApi {
    /// Import employees
    ///
    /// Admins of the company and superadmins. A CSV file (`text/csv`) or JSON rows; each row is
    /// matched to an employee of the company by email (ignoring case) and updates it, or leaves
    /// it unchanged; a row without a match, or without an email, creates one. A second row with
    /// the same email is an error (`duplicate_in_file`). Rows are checked as a single employee
    /// is; a row in error is reported and the others are imported, all in one transaction.
    /// When the rows to create would pass the plan's employee limit nothing is imported: 402
    /// `plan_limit_reached`, with `dry_run` too. `dry_run=true` checks and reports without
    /// writing. A file that cannot be read as CSV (no header, more than 10,000 rows) answers
    /// 422 `invalid_csv` or `too_many_rows`.
    #[oai(
        path = "/company/:company_id/employees/import",
        method = "post",
        operation_id = "importEmployees"
    )]
    async fn import_employees(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// Check and report only: nothing is written.
        dry_run: Query<Option<bool>>,
        body: ImportBody,
    ) -> Result<Json<EmployeeImport>, ApiError> {
        let caller = auth.0;
        caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let dry_run = dry_run.0.unwrap_or(false);
        let (rows, ignored_columns) = match body {
            ImportBody::Csv(file) => {
                let parsed = employee_import::parse_csv(&file.0).map_err(csv_error)?;
                (parsed.rows, parsed.ignored_columns)
            }
            ImportBody::Json(Json(body)) => {
                if body.rows.len() > MAX_ROWS {
                    return Err(csv_error(CsvError::TooManyRows));
                }
                let rows = body
                    .rows
                    .into_iter()
                    .enumerate()
                    .map(|(i, row)| json_row(i + 1, row))
                    .collect();
                (rows, Vec::new())
            }
        };
        let audit = AuditContext::of(req, &caller);
        let report = run(
            &state,
            &caller,
            &audit,
            company_id.0,
            &rows,
            dry_run,
            &mut |_| {},
        )
        .await?;
        Ok(Json(shown(report, ignored_columns)))
    }
}
