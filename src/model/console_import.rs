//! CSV files uploaded to the console's import, kept between its steps (mapping the columns,
//! the preview, the import) for an hour, and the header a chosen mapping gives them.

use uuid::Uuid;

use super::employee_import::{CsvError, ImportTotals, MAX_IMPORT_BYTES};
use crate::db::{DbError, TenantTx};

/// An uploaded file.
#[derive(Clone, Debug)]
pub struct StoredImport {
    pub id: Uuid,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

// A company's expired files go when it uploads the next one, so they never pile up.
const DELETE_EXPIRED: &str =
    "DELETE FROM console_imports WHERE company_id = $1 AND expires_at <= now()";
const INSERT: &str = "INSERT INTO console_imports (company_id, id, uploaded_by, file_name, bytes)
     VALUES ($1, $2, $3, $4, $5)";
// A file whose import finished is no longer there to map or preview (its bytes are gone).
const GET: &str = "SELECT id, file_name, bytes FROM console_imports
     WHERE company_id = $1 AND id = $2 AND expires_at > now() AND state <> 'done'";

/// Keeps `bytes` (at most [`MAX_IMPORT_BYTES`], which the table checks too) for the next steps.
pub async fn store(
    tx: &TenantTx,
    company_id: Uuid,
    uploaded_by: Uuid,
    file_name: &str,
    bytes: &[u8],
) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    let file_name: String = file_name.chars().take(255).collect();
    tx.execute(DELETE_EXPIRED, [&company_id]).await?;
    tx.execute(INSERT, [&company_id, &id, &uploaded_by, &file_name, &bytes])
        .await?;
    Ok(id)
}

/// The file, unless it is another company's, expired or gone.
pub async fn get(
    tx: &TenantTx,
    company_id: Uuid,
    id: Uuid,
) -> Result<Option<StoredImport>, DbError> {
    let Some(row) = tx.query_opt(GET, [&company_id, &id]).await? else {
        return Ok(None);
    };
    Ok(Some(StoredImport {
        id: row.try_get("id")?,
        file_name: row.try_get("file_name")?,
        bytes: row.try_get("bytes")?,
    }))
}

/// Where an import of a file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportState {
    /// Uploaded, its columns not imported yet.
    Uploaded,
    /// Importing: `done` of `total` rows written so far.
    Running {
        done: usize,
        total: usize,
    },
    /// Running once, but its task stopped saying how far it was (its instance went away): its
    /// transaction rolled back, nothing was imported.
    Stalled,
    Done(ImportTotals),
    /// Refused as a whole (the plan's limit, say), or failed: nothing was imported.
    Failed {
        detail: String,
    },
}

/// The progress of an import: its file's name and state.
#[derive(Clone, Debug)]
pub struct ImportProgress {
    pub file_name: String,
    pub state: ImportState,
}

/// How long a running import may go without a word before it counts as stalled. A step of
/// progress is 500 rows, well under a second.
const STALLED_AFTER: &str = "2 minutes";

const START: &str = "UPDATE console_imports
     SET state = 'running', rows_total = $3, rows_done = 0, outcome = NULL, progress_at = now()
     WHERE company_id = $1 AND id = $2 AND expires_at > now()
       AND (state IN ('uploaded', 'failed')
            OR (state = 'running' AND progress_at < now() - $4::text::interval))
     RETURNING id";
const ADVANCE: &str = "UPDATE console_imports SET rows_done = $3, progress_at = now()
     WHERE company_id = $1 AND id = $2 AND state = 'running'";
// A finished import's file is no longer needed: its bytes go, its totals stay until it expires.
const FINISH: &str = "UPDATE console_imports
     SET state = 'done', rows_done = rows_total, outcome = $3, bytes = ''::bytea,
         progress_at = now()
     WHERE company_id = $1 AND id = $2";
const FAIL: &str = "UPDATE console_imports
     SET state = 'failed', outcome = jsonb_build_object('detail', $3::text), progress_at = now()
     WHERE company_id = $1 AND id = $2";
const PROGRESS: &str = "SELECT file_name, state, rows_total, rows_done, outcome,
            state = 'running' AND progress_at < now() - $3::text::interval AS stalled
     FROM console_imports
     WHERE company_id = $1 AND id = $2 AND expires_at > now()";

/// What [`start`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Started,
    /// This file's import runs already, or is done: a second click on "Import" starts nothing.
    Already,
    /// Another import of the company runs: one at a time, so that a company's imports never
    /// hold more than one connection (they would wait for each other's lock on the plan).
    Busy,
}

// Starts for one company take turns (a lock held until the transaction ends), so that two of
// them cannot both see no other import running.
const TAKE_TURN: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 0))";
const OTHER_RUNNING: &str = "SELECT EXISTS (SELECT 1 FROM console_imports
     WHERE company_id = $1 AND id <> $2 AND state = 'running' AND expires_at > now()
       AND progress_at >= now() - $3::text::interval)";

/// Marks the file's import as running over `total` rows, unless it runs or is done already, or
/// another import of the company runs.
pub async fn start(
    tx: &TenantTx,
    company_id: Uuid,
    id: Uuid,
    total: usize,
) -> Result<Start, DbError> {
    let total = i32::try_from(total).unwrap_or(i32::MAX);
    tx.query_one(TAKE_TURN, [&company_id]).await?;
    let busy: bool = tx
        .query_one(OTHER_RUNNING, [&company_id, &id, &STALLED_AFTER])
        .await?
        .try_get(0)?;
    if busy {
        return Ok(Start::Busy);
    }
    let started = tx
        .query_opt(START, [&company_id, &id, &total, &STALLED_AFTER])
        .await?;
    Ok(if started.is_some() {
        Start::Started
    } else {
        Start::Already
    })
}

/// Records that `done` rows are written.
pub async fn advance(
    tx: &TenantTx,
    company_id: Uuid,
    id: Uuid,
    done: usize,
) -> Result<(), DbError> {
    let done = i32::try_from(done).unwrap_or(i32::MAX);
    tx.execute(ADVANCE, [&company_id, &id, &done]).await?;
    Ok(())
}

/// Records the totals of the finished import, and lets go of the file's bytes.
pub async fn finish(
    tx: &TenantTx,
    company_id: Uuid,
    id: Uuid,
    totals: &ImportTotals,
) -> Result<(), DbError> {
    let outcome = serde_json::json!({
        "rows": totals.rows,
        "created": totals.created,
        "updated": totals.updated,
        "unchanged": totals.unchanged,
        "errors": totals.errors,
    });
    tx.execute(FINISH, [&company_id, &id, &outcome]).await?;
    Ok(())
}

/// Records why the import failed (nothing was imported).
pub async fn fail(tx: &TenantTx, company_id: Uuid, id: Uuid, detail: &str) -> Result<(), DbError> {
    tx.execute(FAIL, [&company_id, &id, &detail]).await?;
    Ok(())
}

/// Where the import of the file `id` is, unless the file is another company's, expired or gone.
pub async fn progress(
    tx: &TenantTx,
    company_id: Uuid,
    id: Uuid,
) -> Result<Option<ImportProgress>, DbError> {
    let Some(row) = tx
        .query_opt(PROGRESS, [&company_id, &id, &STALLED_AFTER])
        .await?
    else {
        return Ok(None);
    };
    let count = |column: &str| -> Result<usize, DbError> {
        let n: i32 = row.try_get(column)?;
        Ok(usize::try_from(n).unwrap_or(0))
    };
    let state: String = row.try_get("state")?;
    let outcome: Option<serde_json::Value> = row.try_get("outcome")?;
    let outcome = outcome.unwrap_or_default();
    let number = |key: &str| {
        outcome[key]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
    };
    let state = match state.as_str() {
        "running" if row.try_get::<_, bool>("stalled")? => ImportState::Stalled,
        "running" => ImportState::Running {
            done: count("rows_done")?,
            total: count("rows_total")?,
        },
        "done" => ImportState::Done(ImportTotals {
            rows: number("rows"),
            created: number("created"),
            updated: number("updated"),
            unchanged: number("unchanged"),
            errors: number("errors"),
        }),
        "failed" => ImportState::Failed {
            detail: outcome["detail"].as_str().unwrap_or_default().to_owned(),
        },
        _ => ImportState::Uploaded,
    };
    Ok(Some(ImportProgress {
        file_name: row.try_get("file_name")?,
        state,
    }))
}

/// Whether a file fits.
pub fn fits(bytes: &[u8]) -> bool {
    bytes.len() <= MAX_IMPORT_BYTES
}

/// The columns the file's first line names (a UTF-8 byte order mark dropped).
pub fn header(bytes: &[u8]) -> Result<Vec<String>, CsvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return Err(CsvError::Empty),
        Err(e) => return Err(CsvError::Unreadable(e.to_string())),
    }
    record
        .iter()
        .map(|name| {
            std::str::from_utf8(name)
                .map(|n| n.trim().to_owned())
                .map_err(|_| CsvError::HeaderNotUtf8)
        })
        .collect()
}

/// The file with its first line replaced by `columns` (the chosen mapping: an employee field's
/// name, or an empty name for a column to ignore), for the import's own CSV reader.
pub fn with_header(bytes: &[u8], columns: &[String]) -> Result<Vec<u8>, CsvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return Err(CsvError::Empty),
        Err(e) => return Err(CsvError::Unreadable(e.to_string())),
    }
    let mut rest = usize::try_from(reader.position().byte()).unwrap_or(bytes.len());
    // The reader stops between a header's `\r` and its `\n`.
    if rest > 0 && bytes.get(rest - 1) == Some(&b'\r') && bytes.get(rest) == Some(&b'\n') {
        rest += 1;
    }
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer
        .write_record(columns)
        .map_err(|e| CsvError::Unreadable(e.to_string()))?;
    let mut out = writer
        .into_inner()
        .map_err(|e| CsvError::Unreadable(e.to_string()))?;
    out.extend_from_slice(bytes.get(rest..).unwrap_or_default());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_renames_the_header_and_keeps_the_rows() {
        let file = b"\xEF\xBB\xBFName,E-mail,Notes\r\nJane,\"jane@example.com\",x\nBob,b@x.io,y\n";
        assert_eq!(header(file).unwrap(), ["Name", "E-mail", "Notes"]);
        let mapped =
            with_header(file, &["full_name".into(), "email".into(), String::new()]).unwrap();
        assert_eq!(
            String::from_utf8(mapped).unwrap(),
            "full_name,email,\r\nJane,\"jane@example.com\",x\nBob,b@x.io,y\n"
        );
    }
}
