//! CSV files uploaded to the console's import, kept between its steps (mapping the columns,
//! the preview, the import) for an hour, and the header a chosen mapping gives them.

use uuid::Uuid;

use super::employee_import::{CsvError, MAX_IMPORT_BYTES};
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
const GET: &str = "SELECT id, file_name, bytes FROM console_imports
     WHERE company_id = $1 AND id = $2 AND expires_at > now()";
const DELETE: &str = "DELETE FROM console_imports WHERE company_id = $1 AND id = $2";

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

/// Forgets the file once imported.
pub async fn delete(tx: &TenantTx, company_id: Uuid, id: Uuid) -> Result<(), DbError> {
    tx.execute(DELETE, [&company_id, &id]).await?;
    Ok(())
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
