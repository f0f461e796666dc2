//! The CSV export: the events of a company, oldest first, streamed a page at a time.

use std::io;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{Stream, StreamExt, stream};
use poem::Body;
use uuid::Uuid;

use crate::{
    api::AppState,
    db::{Db, Tenant},
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
    let (first, next) = ExportPages::chunk(&rows, String::from(CSV_HEADER));
    drop(rows);
    let first = stream::once(async move { Ok::<_, io::Error>(first) });
    let body = match next {
        None => Body::from_bytes_stream(first),
        Some(after) => Body::from_bytes_stream(
            first.chain(
                ExportPages {
                    db: state.db.clone(),
                    tenant,
                    company_id,
                    from,
                    to,
                    after,
                }
                .into_stream(),
            ),
        ),
    };
    Ok((slug, body))
}

/// Where the export stands between two pages.
pub(super) struct ExportPages {
    pub(super) db: Db,
    pub(super) tenant: Tenant,
    pub(super) company_id: Uuid,
    pub(super) from: Option<DateTime<Utc>>,
    pub(super) to: DateTime<Utc>,
    pub(super) after: Cursor,
}

impl ExportPages {
    /// The rows as CSV, and the keyset after them when a full page suggests more.
    pub(super) fn chunk(rows: &[EventRow], mut out: String) -> (Bytes, Option<Cursor>) {
        for row in rows {
            write_csv(row, &mut out);
        }
        let more = rows.len() as i64 >= EXPORT_PAGE_ROWS;
        let last = rows.last().map(EventRow::cursor);
        (Bytes::from(out), last.filter(|_| more))
    }

    /// The pages after the first, fetched one at a time as the client reads (the body's
    /// backpressure), each in a read transaction of its own: memory stays at one page whatever
    /// the export's size. An error cannot be a status anymore; it is logged and the body fails,
    /// which aborts the transfer.
    pub(super) fn into_stream(
        self,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
        stream::unfold(Some(self), |state| async move {
            let mut pages = state?;
            let (company_id, range, after) =
                (pages.company_id, (pages.from, pages.to), pages.after);
            let rows = pages
                .db
                .read(&pages.tenant, async |tx| {
                    analytics::export_page(&tx, company_id, range, Some(after)).await
                })
                .await
                .map_err(ApiError::from);
            let chunk = rows.map(|rows| {
                if rows.is_empty() {
                    return None;
                }
                let capacity = rows.len() * 160;
                Some(Self::chunk(&rows, String::with_capacity(capacity)))
            });
            match chunk {
                Ok(None) => None,
                Ok(Some((bytes, next))) => {
                    let next = next.map(|after| {
                        pages.after = after;
                        pages
                    });
                    Some((Ok(bytes), next))
                }
                Err(e) => {
                    tracing::error!(
                        company_id = %pages.company_id,
                        error = %e,
                        "CSV export failed after its first byte; the response is cut short"
                    );
                    Some((Err(io::Error::other("the export failed")), None))
                }
            }
        })
    }
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
    csv_field(out, &row.action);
    out.push(',');
    csv_field(out, row.link.as_deref().unwrap_or_default());
    out.push(',');
    csv_field(out, row.device.as_deref().unwrap_or_default());
    out.push(',');
    csv_field(out, row.region.as_deref().unwrap_or_default());
    out.push('\n');
}

/// Appends one CSV field (RFC 4180): quoted when it holds a comma, quote or line break, quotes
/// doubled. A value a spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`, and tab or
/// carriage return, per OWASP) gets a leading `'`: `link` and `region` come from visitors.
/// Control characters and bidirectional overrides, which tracking refuses but older rows may
/// hold, become U+FFFD: an export never carries a terminal escape or a reversed text.
fn csv_field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = value.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        let hidden = (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        out.push(if hidden {
            char::REPLACEMENT_CHARACTER
        } else {
            c
        });
    }
    if quoted {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn csv(value: &str) -> String {
        let mut out = String::new();
        csv_field(&mut out, value);
        out
    }

    #[test]
    fn csv_fields_are_escaped() {
        assert_eq!(csv("plain"), "plain");
        assert_eq!(csv(""), "");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv("cr\rhere"), "\"cr\rhere\"");
    }

    #[test]
    fn csv_fields_never_carry_escapes_or_reversed_text() {
        assert_eq!(csv("\u{1}\u{1b}[31mred"), "\u{FFFD}\u{FFFD}[31mred");
        assert_eq!(csv("x\u{0}\u{7f}\u{85}"), "x\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(csv("evil\u{202E}fdp.exe"), "evil\u{FFFD}fdp.exe");
        assert_eq!(csv("\u{2066}a\u{2069}"), "\u{FFFD}a\u{FFFD}");
        assert_eq!(csv("Île-de-France"), "Île-de-France");
    }

    #[test]
    fn csv_fields_that_look_like_formulas_are_defused() {
        assert_eq!(csv("=1+1"), "'=1+1");
        assert_eq!(csv("+49 30 1234"), "'+49 30 1234");
        assert_eq!(csv("-2"), "'-2");
        assert_eq!(csv("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv("\tx"), "'\tx");
        assert_eq!(
            csv("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        // Only a leading sign matters.
        assert_eq!(csv("a=b"), "a=b");
        assert_eq!(csv("linkedin"), "linkedin");
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
