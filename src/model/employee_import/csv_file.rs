//! Reading an import's CSV file: RFC 4180 quoting, read as bytes so that a record that is not
//! UTF-8, or has the wrong number of fields, is that row's problem and not the file's; a header
//! naming the columns (employee fields, `social_links.<name>`, or others, ignored and listed).

use std::collections::{BTreeMap, HashSet};

use super::{ImportRow, MAX_ROWS, RowProblem, SOCIAL_LINK_COLUMN};
use crate::model::employee::EmployeeField;

/// A CSV file, read: its rows, and the header's columns that are not employee fields (reported,
/// and ignored).
#[derive(Clone, Debug, Default)]
pub struct CsvRows {
    pub rows: Vec<ImportRow>,
    pub ignored_columns: Vec<String>,
}

/// Why a CSV file cannot be imported at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsvError {
    #[error("The file is empty: its first line must name the columns, e.g. full_name,email")]
    Empty,
    #[error(
        "The first line must name the columns (full_name, email, job_title, phone, whatsapp, \
         photo_url, bio, social_links.<name>); it names none of them"
    )]
    NoHeader,
    #[error("The header is not UTF-8 text: save the file as CSV UTF-8")]
    HeaderNotUtf8,
    #[error("The header names the column `{0}` twice")]
    DuplicateColumn(String),
    #[error("The file holds more than {MAX_ROWS} rows: split it")]
    TooManyRows,
    #[error("The file cannot be read as CSV: {0}")]
    Unreadable(String),
}

impl CsvError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooManyRows => "too_many_rows",
            _ => "invalid_csv",
        }
    }
}

/// Where a column of the file goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Column {
    Field(EmployeeField),
    SocialLink(String),
    Ignored,
}

fn column(name: &str) -> Column {
    let lower = name.to_lowercase();
    if let Some(field) = EmployeeField::from_name(&lower) {
        return Column::Field(field);
    }
    match name.get(..SOCIAL_LINK_COLUMN.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(SOCIAL_LINK_COLUMN) => {
            Column::SocialLink(name[SOCIAL_LINK_COLUMN.len()..].to_owned())
        }
        _ => Column::Ignored,
    }
}

/// Reads a CSV file with a header row (comma-separated, `"` quoting, an optional UTF-8 byte
/// order mark). Rows that cannot be read (not UTF-8, a wrong number of fields) come back with
/// their problems; only a file without a usable header, or with too many rows, is refused.
pub fn parse_csv(bytes: &[u8]) -> Result<CsvRows, CsvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => return Err(CsvError::Empty),
        Some(record) => record.map_err(|e| CsvError::Unreadable(e.to_string()))?,
    };
    let mut columns = Vec::with_capacity(header.len());
    let mut ignored_columns = Vec::new();
    let mut seen = HashSet::new();
    for name in &header {
        let name = std::str::from_utf8(name).map_err(|_| CsvError::HeaderNotUtf8)?;
        let name = name.trim();
        let column = column(name);
        let key = match &column {
            Column::Field(field) => Some(field.name().to_owned()),
            Column::SocialLink(link) => Some(format!("{SOCIAL_LINK_COLUMN}{link}")),
            Column::Ignored => None,
        };
        match key {
            Some(key) if !seen.insert(key.clone()) => return Err(CsvError::DuplicateColumn(key)),
            Some(_) => {}
            None => ignored_columns.push(name.to_owned()),
        }
        columns.push(column);
    }
    if columns.iter().all(|c| *c == Column::Ignored) {
        return Err(CsvError::NoHeader);
    }
    let has_links = columns.iter().any(|c| matches!(c, Column::SocialLink(_)));
    let mut rows = Vec::new();
    for (index, record) in records.enumerate() {
        let record = record.map_err(|e| CsvError::Unreadable(e.to_string()))?;
        // A blank line between records is no row (the csv reader already skips empty lines).
        if record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(CsvError::TooManyRows);
        }
        rows.push(csv_row(index + 1, &columns, has_links, &record));
    }
    Ok(CsvRows {
        rows,
        ignored_columns,
    })
}

fn csv_row(row: usize, columns: &[Column], has_links: bool, record: &csv::ByteRecord) -> ImportRow {
    let mut out = ImportRow {
        row,
        social_links: has_links.then(BTreeMap::new),
        ..ImportRow::default()
    };
    if record.len() != columns.len() {
        out.problems.push(RowProblem::new(
            None,
            "wrong_field_count",
            format!(
                "The row has {} fields; the header names {}",
                record.len(),
                columns.len()
            ),
        ));
        return out;
    }
    for (column, raw) in columns.iter().zip(record) {
        let field_name = match column {
            Column::Field(field) => field.name().to_owned(),
            Column::SocialLink(link) => format!("{SOCIAL_LINK_COLUMN}{link}"),
            Column::Ignored => continue,
        };
        let Ok(value) = String::from_utf8(raw.to_vec()) else {
            out.problems.push(RowProblem::new(
                Some(&field_name),
                "invalid_encoding",
                format!("`{field_name}` is not UTF-8 text"),
            ));
            continue;
        };
        match column {
            Column::Field(field) => out.set(*field, value),
            Column::SocialLink(link) => {
                if !value.trim().is_empty()
                    && let Some(links) = out.social_links.as_mut()
                {
                    links.insert(link.clone(), value);
                }
            }
            Column::Ignored => {}
        }
    }
    out
}
