//! The CSV export: the events of a company, oldest first, streamed a page at a time.

use chrono::{DateTime, SecondsFormat, Utc};
use poem::Body;
use uuid::Uuid;

use crate::{
    api::{AppState, csv_export},
    db::Tenant,
    error::ApiError,
    model::analytics::{self, Cursor, EXPORT_PAGE_ROWS, EventRow},
};

pub const CSV_HEADER: &str = "occurred_at,event_id,employee_id,action,link,device,region\n";

/// The export of `[from, to)` (`to` default now) of the tenant's company: its slug (for the file
/// name) and the CSV body, streamed. The caller has checked who may export; both doors call this.
/// Authorization, the company's slug and the first page come in one read, before any byte, so a
/// missing company is still a 404.
pub async fn csv_export(
    state: &AppState,
    tenant: Tenant,
    company_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(String, Body), ApiError> {
    let to = to.unwrap_or_else(Utc::now);
    let (slug, rows) = state
        .db
        .read(&tenant, async |tx| {
            analytics::export_start(&tx, company_id, (from, to)).await
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Company not found"))?;
    let (first, next) = chunk(&rows, String::from(CSV_HEADER));
    drop(rows);
    let db = state.db.clone();
    let body = csv_export::paged_body(first, next, ("CSV export", company_id), move |after| {
        let db = db.clone();
        async move {
            let rows = db
                .read(&tenant, async |tx| {
                    analytics::export_page(&tx, company_id, (from, to), Some(after)).await
                })
                .await?;
            Ok::<_, ApiError>(chunk(&rows, String::with_capacity(rows.len() * 160)))
        }
    });
    Ok((slug, body))
}

/// The rows as CSV, and the keyset after them when a full page suggests more.
fn chunk(rows: &[EventRow], mut out: String) -> (String, Option<Cursor>) {
    for row in rows {
        write_csv(row, &mut out);
    }
    let more = rows.len() as i64 >= EXPORT_PAGE_ROWS;
    let last = rows.last().map(EventRow::cursor);
    (out, last.filter(|_| more))
}

/// One event as a line of the export.
fn write_csv(row: &EventRow, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "{},{},{},",
        row.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        row.id,
        row.employee_id
    );
    csv_export::field(out, &row.action);
    out.push(',');
    csv_export::field(out, row.link.as_deref().unwrap_or_default());
    out.push(',');
    csv_export::field(out, row.device.as_deref().unwrap_or_default());
    out.push(',');
    csv_export::field(out, row.region.as_deref().unwrap_or_default());
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn csv_rows_have_every_column() {
        let row = EventRow {
            id: Uuid::nil(),
            occurred_at: utc("2026-03-08T12:00:00.5Z"),
            employee_id: Uuid::max(),
            action: "link_click".into(),
            link: Some("=cmd,x".into()),
            device: None,
            region: Some("DE".into()),
        };
        let mut out = String::new();
        write_csv(&row, &mut out);
        assert_eq!(
            out,
            "2026-03-08T12:00:00.500000Z,00000000-0000-0000-0000-000000000000,\
             ffffffff-ffff-ffff-ffff-ffffffffffff,link_click,\"'=cmd,x\",,DE\n"
        );
        assert_eq!(CSV_HEADER.trim_end().split(',').count(), 7);
    }
}
