//! Bulk import of employees: a CSV file or a list of rows, matched to the company's employees by
//! email (ignoring case) so that importing the same file again updates them or leaves them
//! unchanged instead of duplicating them. A row without an email is always created.
//!
//! Each row is checked exactly as the API checks one employee ([`EmployeeField::check`]); a row
//! in error is reported and the others go on. The valid rows are written in the caller's one
//! transaction (all of them or none), in batches of [`CHUNK_ROWS`] (one `INSERT … SELECT FROM
//! unnest(…)` or `UPDATE … FROM unnest(…)` per batch, never a statement per row). The plan's
//! employee limit applies to the import as a whole: when the rows to create would pass it,
//! nothing is written. One audit event, `employee.imported`, records the counts; each employee
//! created or changed is a webhook event (`employee.created`, `employee.updated`), queued a batch
//! at a time.
//!
//! Rows are numbered from 1: in a CSV file, the record after the header (the header is row 0;
//! a quoted field spanning lines still makes one record); in a list, its position.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use uuid::Uuid;

mod csv_file;

pub use csv_file::{CsvError, CsvRows, parse_csv};

use super::{
    audit::{self, AuditContext, AuditEvent, Changes, Target},
    employee::{self, Employee, EmployeeField, employee_columns},
    webhook,
};
use crate::{
    card::CardUrls,
    db::{DbError, TenantTx},
};

/// Most rows in one import.
pub const MAX_ROWS: usize = 10_000;
/// Largest CSV file (or JSON body) of one import: 10,000 rows of about 800 bytes.
pub const MAX_IMPORT_BYTES: usize = 8 * 1024 * 1024;
/// Rows per statement when writing, and per step of progress.
pub const CHUNK_ROWS: usize = 500;
/// The prefix of a social link's column: `social_links.linkedin` is the `linkedin` link.
pub const SOCIAL_LINK_COLUMN: &str = "social_links.";

/// One row to import. A field that is `None` was not given (no such column, or left out of a
/// JSON row): an employee being updated keeps it. An empty value clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportRow {
    /// 1-based (see the module's documentation).
    pub row: usize,
    pub full_name: Option<String>,
    pub job_title: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub whatsapp: Option<String>,
    pub photo_url: Option<String>,
    pub bio: Option<String>,
    /// `{name: url}`; empty URLs are dropped. `None` keeps an updated employee's links.
    pub social_links: Option<BTreeMap<String, String>>,
    /// What was wrong with the row as read (its encoding, its number of fields).
    pub problems: Vec<RowProblem>,
}

impl ImportRow {
    fn field(&self, field: EmployeeField) -> Option<&str> {
        match field {
            EmployeeField::FullName => self.full_name.as_deref(),
            EmployeeField::JobTitle => self.job_title.as_deref(),
            EmployeeField::Email => self.email.as_deref(),
            EmployeeField::Phone => self.phone.as_deref(),
            EmployeeField::Whatsapp => self.whatsapp.as_deref(),
            EmployeeField::PhotoUrl => self.photo_url.as_deref(),
            EmployeeField::Bio => self.bio.as_deref(),
        }
    }

    fn set(&mut self, field: EmployeeField, value: String) {
        let slot = match field {
            EmployeeField::FullName => &mut self.full_name,
            EmployeeField::JobTitle => &mut self.job_title,
            EmployeeField::Email => &mut self.email,
            EmployeeField::Phone => &mut self.phone,
            EmployeeField::Whatsapp => &mut self.whatsapp,
            EmployeeField::PhotoUrl => &mut self.photo_url,
            EmployeeField::Bio => &mut self.bio,
        };
        *slot = Some(value);
    }
}

/// Why a row was not imported: the field (none for the row as a whole), a stable code, and
/// words for a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowProblem {
    pub field: Option<String>,
    pub code: String,
    pub detail: String,
}

impl RowProblem {
    fn new(field: Option<&str>, code: &str, detail: impl Into<String>) -> Self {
        Self {
            field: field.map(str::to_owned),
            code: code.to_owned(),
            detail: detail.into(),
        }
    }
}

/// What happened to a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowOutcome {
    Created,
    Updated,
    Unchanged,
    Error,
}

impl RowOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Error => "error",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowResult {
    pub row: usize,
    pub outcome: RowOutcome,
    /// The employee created, updated or left unchanged (none for a row in error, nor for one a
    /// dry run would create).
    pub employee_id: Option<Uuid>,
    pub problems: Vec<RowProblem>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportTotals {
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub errors: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Nothing was written: what would happen.
    pub dry_run: bool,
    pub company_slug: String,
    pub rows: Vec<RowResult>,
    pub totals: ImportTotals,
}

/// Why an import is refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("no such company")]
    NoCompany,
    #[error("more than {MAX_ROWS} rows")]
    TooManyRows,
    /// Creating `creating` employees beside the `existing` ones would pass the plan's limit.
    #[error("the {plan_title} plan allows {limit} employees")]
    PlanFull {
        plan_title: String,
        limit: i32,
        existing: i64,
        creating: usize,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// How far the write has come: rows written so far of those to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// The company's plan, locked (as single creates lock it) so that the limit holds against
/// concurrent creations, and so that two imports of one company run one after the other.
const LOCK_PLAN: &str = "SELECT c.slug, p.employee_limit, p.title
     FROM companies c
     JOIN subscriptions s ON s.company_id = c.id AND s.active
     JOIN plans p ON p.plan = s.plan
     WHERE c.id = $1
     FOR UPDATE OF s";

/// The same, for a dry run, which changes nothing and so locks nothing.
const READ_PLAN: &str = "SELECT c.slug, p.employee_limit, p.title
     FROM companies c
     JOIN subscriptions s ON s.company_id = c.id AND s.active
     JOIN plans p ON p.plan = s.plan
     WHERE c.id = $1";

const COUNT_EMPLOYEES: &str = "SELECT count(*) FROM employees WHERE company_id = $1";

/// The employees with these emails (lower-cased), oldest first: when two share an address, the
/// oldest is the one an import updates.
const EMPLOYEES_BY_EMAIL: &str = concat!(
    "SELECT ",
    employee_columns!(),
    " FROM employees e JOIN companies c ON c.id = e.company_id
     WHERE e.company_id = $1 AND lower(e.email) = ANY($2::text[])
     ORDER BY e.created_at, e.id"
);

const TAKEN_SLUGS: &str = "SELECT public_slug FROM employees
     WHERE company_id = $1 AND public_slug = ANY($2::text[])";

/// A batch of new employees and their cards, in one statement.
const INSERT_EMPLOYEES: &str = "WITH e AS (
         INSERT INTO employees (company_id, id, full_name, job_title, email, phone, whatsapp,
                                photo_url, bio, social_links, public_slug)
         SELECT $1, n.* FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                                    $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::text[]) AS n
         RETURNING id
     )
     INSERT INTO cards (company_id, id, employee_id, url, qr_code, vcard_url)
     SELECT $1, gen_random_uuid(), e.id, u.url, u.qr, u.vcard
     FROM e JOIN unnest($2::uuid[], $12::text[], $13::text[], $14::text[]) AS u(id, url, qr, vcard)
          ON u.id = e.id";

/// A batch of changed employees, in one statement.
const UPDATE_EMPLOYEES: &str = "UPDATE employees e
     SET full_name = u.full_name, job_title = u.job_title, email = u.email, phone = u.phone,
         whatsapp = u.whatsapp, photo_url = u.photo_url, bio = u.bio,
         social_links = u.social_links
     FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                 $8::text[], $9::text[], $10::jsonb[])
          AS u(id, full_name, job_title, email, phone, whatsapp, photo_url, bio, social_links)
     WHERE e.company_id = $1 AND e.id = u.id";

/// An employee's stored fields, as an import writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fields {
    full_name: String,
    job_title: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    whatsapp: Option<String>,
    photo_url: Option<String>,
    bio: Option<String>,
    social_links: BTreeMap<String, String>,
}

impl Fields {
    fn of(e: &Employee) -> Self {
        Self {
            full_name: e.full_name.clone(),
            job_title: e.job_title.clone(),
            email: e.email.clone(),
            phone: e.phone.clone(),
            whatsapp: e.whatsapp.clone(),
            photo_url: e.photo_url.clone(),
            bio: e.bio.clone(),
            social_links: e.social_links.clone(),
        }
    }

    fn slot(&mut self, field: EmployeeField) -> &mut Option<String> {
        match field {
            EmployeeField::JobTitle => &mut self.job_title,
            EmployeeField::Email => &mut self.email,
            EmployeeField::Phone => &mut self.phone,
            EmployeeField::Whatsapp => &mut self.whatsapp,
            EmployeeField::PhotoUrl => &mut self.photo_url,
            EmployeeField::Bio => &mut self.bio,
            // Never cleared: handled on its own.
            EmployeeField::FullName => unreachable!("full_name is not optional"),
        }
    }
}

/// A row's given fields, checked: `None` is "not given", `Some(None)` "cleared".
#[derive(Default)]
struct CheckedRow {
    values: Vec<(EmployeeField, Option<String>)>,
    social_links: Option<BTreeMap<String, String>>,
}

impl CheckedRow {
    fn email_key(&self) -> Option<String> {
        self.values
            .iter()
            .find(|(f, _)| *f == EmployeeField::Email)
            .and_then(|(_, v)| v.as_ref())
            .map(|email| email.to_lowercase())
    }

    fn full_name(&self) -> Option<&str> {
        self.values
            .iter()
            .find(|(f, _)| *f == EmployeeField::FullName)
            .and_then(|(_, v)| v.as_deref())
    }

    /// `base` with this row's given fields applied.
    fn applied_to(&self, mut base: Fields) -> Fields {
        for (field, value) in &self.values {
            match field {
                EmployeeField::FullName => {
                    if let Some(name) = value {
                        base.full_name = name.clone();
                    }
                }
                other => *base.slot(*other) = value.clone(),
            }
        }
        if let Some(links) = &self.social_links {
            base.social_links = links.clone();
        }
        base
    }
}

/// Checks each given field as the API checks it, collecting every problem of the row.
fn check_row(row: &ImportRow) -> Result<CheckedRow, Vec<RowProblem>> {
    let mut problems = row.problems.clone();
    let mut checked = CheckedRow::default();
    for field in EmployeeField::ALL {
        let Some(value) = row.field(field) else {
            continue;
        };
        match field.check(value) {
            Ok(value) => checked.values.push((field, value)),
            Err(e) => problems.push(RowProblem::new(Some(field.name()), e.code(), e.detail())),
        }
    }
    if let Some(links) = &row.social_links {
        match employee::check_social_links(links.clone()) {
            Ok(links) => checked.social_links = Some(links),
            Err(e) => problems.push(RowProblem::new(Some("social_links"), e.code(), e.detail())),
        }
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(problems)
    }
}

/// What the import will do with one row.
enum Plan {
    Create(Uuid, Fields),
    Update(Uuid, Fields),
    Unchanged(Uuid),
    Refused(Vec<RowProblem>),
}

/// Imports `rows` into `company_id`, in the caller's transaction (a read-write one, even for a
/// dry run, which writes nothing). `progress` hears of each batch written. Recording the
/// `employee.imported` event with `audit`.
pub async fn import(
    tx: &TenantTx,
    rows: &[ImportRow],
    dry_run: bool,
    company_id: Uuid,
    audit: &AuditContext,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ImportReport, ImportError> {
    if rows.len() > MAX_ROWS {
        return Err(ImportError::TooManyRows);
    }
    let plan_sql = if dry_run { READ_PLAN } else { LOCK_PLAN };
    let Some(plan) = tx.query_opt(plan_sql, [&company_id]).await? else {
        return Err(ImportError::NoCompany);
    };
    let company_slug: String = plan.try_get("slug").map_err(DbError::from)?;
    let limit: Option<i32> = plan.try_get("employee_limit").map_err(DbError::from)?;
    let plan_title: String = plan.try_get("title").map_err(DbError::from)?;

    let checked: Vec<Result<CheckedRow, Vec<RowProblem>>> = rows.iter().map(check_row).collect();
    let emails: Vec<String> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok().and_then(CheckedRow::email_key))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // A new statement after the lock: it sees employees committed while we waited for it.
    let mut existing: HashMap<String, Employee> = HashMap::new();
    for row in tx.query(EMPLOYEES_BY_EMAIL, [&company_id, &emails]).await? {
        let e = Employee::try_from(&row)?;
        if let Some(key) = e.email.as_ref().map(|m| m.to_lowercase()) {
            existing.entry(key).or_insert(e);
        }
    }

    let mut seen_emails: HashMap<String, usize> = HashMap::new();
    let mut plans = Vec::with_capacity(rows.len());
    for (row, checked) in rows.iter().zip(checked) {
        let checked = match checked {
            Ok(checked) => checked,
            Err(problems) => {
                // Still claims its email, so that a later row with it is a duplicate too.
                if let Some(email) = row.email.as_deref() {
                    seen_emails
                        .entry(email.trim().to_lowercase())
                        .or_insert(row.row);
                }
                plans.push(Plan::Refused(problems));
                continue;
            }
        };
        let key = checked.email_key();
        if let Some(key) = &key {
            if let Some(first) = seen_emails.get(key) {
                plans.push(Plan::Refused(vec![RowProblem::new(
                    Some("email"),
                    "duplicate_in_file",
                    format!("Row {first} has the same email address"),
                )]));
                continue;
            }
            seen_emails.insert(key.clone(), row.row);
        }
        plans.push(match key.and_then(|k| existing.get(&k)) {
            Some(current) => {
                let before = Fields::of(current);
                let after = checked.applied_to(before.clone());
                if after == before {
                    Plan::Unchanged(current.id)
                } else {
                    Plan::Update(current.id, after)
                }
            }
            None => match checked.full_name() {
                Some(name) => {
                    let base = Fields {
                        full_name: name.to_owned(),
                        job_title: None,
                        email: None,
                        phone: None,
                        whatsapp: None,
                        photo_url: None,
                        bio: None,
                        social_links: BTreeMap::new(),
                    };
                    Plan::Create(Uuid::new_v4(), checked.applied_to(base))
                }
                None => Plan::Refused(vec![RowProblem::new(
                    Some("full_name"),
                    "validation_error",
                    "`full_name` is required to create an employee (no employee has this email)",
                )]),
            },
        });
    }

    let creating = plans
        .iter()
        .filter(|p| matches!(p, Plan::Create(..)))
        .count();
    if let Some(limit) = limit
        && creating > 0
    {
        let existing: i64 = tx
            .query_one(COUNT_EMPLOYEES, [&company_id])
            .await?
            .try_get(0)
            .map_err(DbError::from)?;
        if existing + creating as i64 > i64::from(limit) {
            return Err(ImportError::PlanFull {
                plan_title,
                limit,
                existing,
                creating,
            });
        }
    }

    let mut report = ImportReport {
        dry_run,
        company_slug,
        rows: Vec::with_capacity(rows.len()),
        totals: ImportTotals {
            rows: rows.len(),
            ..ImportTotals::default()
        },
    };
    let mut creates = Vec::new();
    let mut updates = Vec::new();
    for (row, plan) in rows.iter().zip(plans) {
        let (outcome, employee_id, problems) = match plan {
            Plan::Create(id, fields) => {
                report.totals.created += 1;
                creates.push((id, fields));
                (RowOutcome::Created, (!dry_run).then_some(id), Vec::new())
            }
            Plan::Update(id, fields) => {
                report.totals.updated += 1;
                updates.push((id, fields));
                (RowOutcome::Updated, Some(id), Vec::new())
            }
            Plan::Unchanged(id) => {
                report.totals.unchanged += 1;
                (RowOutcome::Unchanged, Some(id), Vec::new())
            }
            Plan::Refused(problems) => {
                report.totals.errors += 1;
                (RowOutcome::Error, None, problems)
            }
        };
        report.rows.push(RowResult {
            row: row.row,
            outcome,
            employee_id,
            problems,
        });
    }
    if dry_run {
        return Ok(report);
    }

    let total = creates.len() + updates.len();
    let mut done = 0;
    let slugs = unique_slugs(tx, company_id, &creates).await?;
    for (batch, slugs) in creates.chunks(CHUNK_ROWS).zip(slugs.chunks(CHUNK_ROWS)) {
        insert_batch(tx, company_id, &report.company_slug, batch, slugs).await?;
        let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        webhook::enqueue_employees(tx, "employee.created", &ids).await?;
        done += batch.len();
        progress(Progress { done, total });
    }
    for batch in updates.chunks(CHUNK_ROWS) {
        update_batch(tx, company_id, batch).await?;
        let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        webhook::enqueue_employees(tx, "employee.updated", &ids).await?;
        done += batch.len();
        progress(Progress { done, total });
    }
    if total > 0 {
        let t = report.totals;
        let changes = Changes::new()
            .field("created", None::<usize>, t.created)
            .field("updated", None::<usize>, t.updated)
            .field("unchanged", None::<usize>, t.unchanged)
            .field("errors", None::<usize>, t.errors);
        let event = AuditEvent::new("employee.imported", Target::company(company_id));
        audit::record(tx, audit, event.changes(changes)).await?;
    }
    Ok(report)
}

/// A public slug for each new employee, as a single create makes it, unique in the company: a
/// suffix that collides with another new one or a stored one is drawn again.
async fn unique_slugs(
    tx: &TenantTx,
    company_id: Uuid,
    creates: &[(Uuid, Fields)],
) -> Result<Vec<String>, DbError> {
    let mut slugs: Vec<String> = creates
        .iter()
        .map(|(_, f)| employee::new_public_slug(&f.full_name))
        .collect();
    // Six random hex digits: a redraw is rare, two in a row rarer still.
    for _ in 0..8 {
        let mut taken: HashSet<String> = tx
            .query(TAKEN_SLUGS, [&company_id, &slugs])
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut in_batch = HashSet::with_capacity(slugs.len());
        let mut redrawn = false;
        for (slug, (_, fields)) in slugs.iter_mut().zip(creates) {
            while taken.contains(slug.as_str()) || !in_batch.insert(slug.clone()) {
                *slug = employee::new_public_slug(&fields.full_name);
                redrawn = true;
            }
        }
        if !redrawn {
            return Ok(slugs);
        }
        // Redrawn ones are checked against the stored slugs again.
        taken.clear();
    }
    Err(DbError::Misuse("could not draw unique public slugs"))
}

fn links_json(links: &BTreeMap<String, String>) -> Result<serde_json::Value, DbError> {
    serde_json::to_value(links).map_err(|e| super::decode_error("social_links", e))
}

/// The columns of a batch, as the arrays `unnest` takes.
#[derive(Default)]
struct Columns {
    ids: Vec<Uuid>,
    full_names: Vec<String>,
    job_titles: Vec<Option<String>>,
    emails: Vec<Option<String>>,
    phones: Vec<Option<String>>,
    whatsapps: Vec<Option<String>>,
    photo_urls: Vec<Option<String>>,
    bios: Vec<Option<String>>,
    links: Vec<serde_json::Value>,
}

impl Columns {
    fn of(batch: &[(Uuid, Fields)]) -> Result<Self, DbError> {
        let mut c = Columns::default();
        for (id, f) in batch {
            c.ids.push(*id);
            c.full_names.push(f.full_name.clone());
            c.job_titles.push(f.job_title.clone());
            c.emails.push(f.email.clone());
            c.phones.push(f.phone.clone());
            c.whatsapps.push(f.whatsapp.clone());
            c.photo_urls.push(f.photo_url.clone());
            c.bios.push(f.bio.clone());
            c.links.push(links_json(&f.social_links)?);
        }
        Ok(c)
    }
}

async fn insert_batch(
    tx: &TenantTx,
    company_id: Uuid,
    company_slug: &str,
    batch: &[(Uuid, Fields)],
    slugs: &[String],
) -> Result<(), DbError> {
    let c = Columns::of(batch)?;
    let (mut pages, mut qrs, mut vcards) = (Vec::new(), Vec::new(), Vec::new());
    for slug in slugs {
        // The card row stores paths: the public base URL is configuration.
        let urls = CardUrls::new("", company_slug, slug);
        pages.push(urls.page_path);
        qrs.push(urls.qr_png_path);
        vcards.push(urls.vcard_path);
    }
    tx.execute(
        INSERT_EMPLOYEES,
        [
            &company_id,
            &c.ids,
            &c.full_names,
            &c.job_titles,
            &c.emails,
            &c.phones,
            &c.whatsapps,
            &c.photo_urls,
            &c.bios,
            &c.links,
            &slugs,
            &pages,
            &qrs,
            &vcards,
        ],
    )
    .await?;
    Ok(())
}

async fn update_batch(
    tx: &TenantTx,
    company_id: Uuid,
    batch: &[(Uuid, Fields)],
) -> Result<(), DbError> {
    let c = Columns::of(batch)?;
    tx.execute(
        UPDATE_EMPLOYEES,
        [
            &company_id,
            &c.ids,
            &c.full_names,
            &c.job_titles,
            &c.emails,
            &c.phones,
            &c.whatsapps,
            &c.photo_urls,
            &c.bios,
            &c.links,
        ],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reads_into_rows_numbered_after_the_header() {
        let file = "\u{feff}full_name,Email,job_title,social_links.linkedin,notes\n\
                    Jane Smith,jane@example.com,CTO,https://linkedin.com/in/jane,x\n\
                    \"Doe, John\",,\"Multi\nline\",,y\n";
        let parsed = parse_csv(file.as_bytes()).unwrap();
        assert_eq!(parsed.ignored_columns, ["notes"]);
        assert_eq!(parsed.rows.len(), 2);
        let jane = &parsed.rows[0];
        assert_eq!(jane.row, 1);
        assert_eq!(jane.email.as_deref(), Some("jane@example.com"));
        assert_eq!(
            jane.social_links.as_ref().unwrap()["linkedin"],
            "https://linkedin.com/in/jane"
        );
        assert_eq!(jane.phone, None);
        let john = &parsed.rows[1];
        assert_eq!(john.row, 2);
        assert_eq!(john.full_name.as_deref(), Some("Doe, John"));
        assert_eq!(john.job_title.as_deref(), Some("Multi\nline"));
        assert!(john.social_links.as_ref().unwrap().is_empty());
    }

    #[test]
    fn unreadable_rows_are_row_problems() {
        let mut file = b"full_name,email\nJane,jane@example.com,extra\n".to_vec();
        file.extend_from_slice(b"Jo\xFFn,john@example.com\n");
        let parsed = parse_csv(&file).unwrap();
        assert_eq!(parsed.rows[0].problems[0].code, "wrong_field_count");
        assert_eq!(parsed.rows[1].problems[0].code, "invalid_encoding");
        assert_eq!(
            parsed.rows[1].problems[0].field.as_deref(),
            Some("full_name")
        );
    }

    #[test]
    fn files_without_a_usable_header_are_refused() {
        assert_eq!(parse_csv(b"").unwrap_err(), CsvError::Empty);
        assert_eq!(
            parse_csv(b"Jane Smith,jane@example.com\n").unwrap_err(),
            CsvError::NoHeader
        );
        assert_eq!(
            parse_csv(b"email,EMAIL\n").unwrap_err(),
            CsvError::DuplicateColumn("email".into())
        );
        assert_eq!(
            parse_csv(b"full_name,\xFF\n").unwrap_err(),
            CsvError::HeaderNotUtf8
        );
        let many = format!("full_name\n{}", "x\n".repeat(MAX_ROWS + 1));
        assert_eq!(
            parse_csv(many.as_bytes()).unwrap_err(),
            CsvError::TooManyRows
        );
    }

    #[test]
    fn rows_are_checked_as_the_api_checks_an_employee() {
        let row = ImportRow {
            row: 1,
            full_name: Some("Jane\u{0}".into()),
            email: Some("not-an-email".into()),
            bio: Some("x".repeat(2001)),
            ..ImportRow::default()
        };
        let problems = check_row(&row).err().unwrap();
        let fields: Vec<_> = problems.iter().filter_map(|p| p.field.as_deref()).collect();
        assert_eq!(fields, ["full_name", "email", "bio"]);
        let ok = ImportRow {
            row: 2,
            full_name: Some(" Jane ".into()),
            email: Some("Jane@Example.com".into()),
            phone: Some("".into()),
            ..ImportRow::default()
        };
        let checked = check_row(&ok).ok().unwrap();
        assert_eq!(checked.full_name(), Some("Jane"));
        assert_eq!(checked.email_key().as_deref(), Some("jane@example.com"));
    }
}
