//! The running totals the dashboards read (sql/V18__analytics_running_totals.sql) as ingestion
//! keeps them, batch by batch, against the same totals computed again from the rollups
//! (`analytics_rebuild_running`): days and hours with no events between batches, events before
//! a key's first row, inside its rows and after its last, and one batch over several days.

use callingcard::analytics::ingest::INGEST;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use tokio_postgres::Client;
use uuid::Uuid;

use crate::helpers::{company_with_card, scalar, spawn_app, superuser};

const TABLES: [&str; 6] = [
    "card_running_employee_daily",
    "card_running_employee_latest",
    "card_running_company_daily",
    "card_running_company_latest",
    "card_running_hourly",
    "card_running_hourly_latest",
];

struct Ev {
    at: DateTime<Utc>,
    employee: Uuid,
    action: &'static str,
    device: Option<&'static str>,
    region: Option<&'static str>,
    visitor: Option<String>,
}

fn ev(at: DateTime<Utc>, employee: Uuid, action: &'static str) -> Ev {
    Ev {
        at,
        employee,
        action,
        device: None,
        region: None,
        visitor: None,
    }
}

impl Ev {
    fn from(mut self, device: &'static str, region: &'static str, visitor: u32) -> Self {
        self.device = Some(device);
        self.region = Some(region);
        self.visitor = Some(format!("{visitor:032x}"));
        self
    }
}

/// Stores `events` of `company` in one statement, as the writer does.
async fn ingest(db: &Client, company: Uuid, events: &[Ev]) {
    let ids: Vec<Uuid> = events.iter().map(|_| Uuid::new_v4()).collect();
    let at: Vec<DateTime<Utc>> = events.iter().map(|e| e.at).collect();
    let employees: Vec<Uuid> = events.iter().map(|e| e.employee).collect();
    let actions: Vec<&str> = events.iter().map(|e| e.action).collect();
    let links: Vec<Option<&str>> = events.iter().map(|_| None).collect();
    let devices: Vec<Option<&str>> = events.iter().map(|e| e.device).collect();
    let regions: Vec<Option<&str>> = events.iter().map(|e| e.region).collect();
    let visitors: Vec<Option<&str>> = events.iter().map(|e| e.visitor.as_deref()).collect();
    let stored: i64 = db
        .query_one(
            INGEST.as_str(),
            &[
                &company, &ids, &at, &employees, &actions, &links, &devices, &regions, &visitors,
            ],
        )
        .await
        .expect("storing events")
        .get(0);
    assert_eq!(stored as usize, events.len());
}

/// Every running row of `company`, in a stable order.
async fn running(db: &Client, company: Uuid) -> Vec<String> {
    let mut all = Vec::new();
    for table in TABLES {
        let rows: String = db
            .query_one(
                &format!(
                    "SELECT coalesce(json_agg(t ORDER BY t::text), '[]')::text FROM {table} t
                     WHERE company_id = $1"
                ),
                &[&company],
            )
            .await
            .unwrap()
            .get(0);
        all.push(format!("{table}: {rows}"));
    }
    all
}

/// The running totals ingestion left equal those computed again from the rollups.
async fn assert_as_rebuilt(db: &Client, company: Uuid, after: &str) {
    let kept = running(db, company).await;
    db.execute("SELECT analytics_rebuild_running($1)", &[&company])
        .await
        .unwrap();
    let rebuilt = running(db, company).await;
    for (kept, rebuilt) in kept.iter().zip(&rebuilt) {
        assert_eq!(kept, rebuilt, "after {after}");
    }
}

#[tokio::test]
async fn ingestion_keeps_the_running_totals_dense_and_equal_to_the_rollups() {
    let app = spawn_app().await;
    let (_admin, card) = company_with_card(&app, "Running Co").await;
    let db = superuser(&app).await;
    let company = card.company_id;
    let (a, b, c) = (card.employee_id, Uuid::new_v4(), Uuid::new_v4());
    let now = Utc::now().with_minute(30).unwrap();
    let day = |n: i64| now - TimeDelta::days(n);

    ingest(
        &db,
        company,
        &[
            ev(day(10), a, "view").from("mobile", "DE", 1),
            ev(day(10), a, "view").from("mobile", "DE", 1),
            ev(day(3), b, "call").from("tablet", "FR", 2),
        ],
    )
    .await;
    assert_as_rebuilt(&db, company, "a first batch over two days").await;

    ingest(&db, company, &[ev(day(20), a, "share")]).await;
    assert_as_rebuilt(&db, company, "an event before the first rows").await;

    // A lead (counted by the server when one is stored) is carried like any action.
    ingest(
        &db,
        company,
        &[ev(day(25), b, "lead").from("mobile", "DE", 7)],
    )
    .await;
    assert_as_rebuilt(&db, company, "a lead before the first rows").await;

    ingest(
        &db,
        company,
        &[
            ev(day(5), a, "view").from("desktop", "DE", 3),
            ev(day(5), c, "preview"),
            ev(day(15), b, "email").from("tablet", "FR", 2),
        ],
    )
    .await;
    assert_as_rebuilt(&db, company, "events inside the rows and a new key").await;

    ingest(
        &db,
        company,
        &[
            ev(day(7), a, "download_vcard").from("mobile", "DE", 4),
            ev(day(7), a, "lead").from("mobile", "DE", 4),
            ev(day(1), a, "link_click").from("mobile", "DE", 4),
            ev(now - TimeDelta::hours(3), b, "whatsapp").from("mobile", "NL", 5),
            ev(now, a, "view").from("mobile", "DE", 6),
        ],
    )
    .await;
    assert_as_rebuilt(&db, company, "one batch over several days, up to now").await;

    // Dense: a row for every day from the first event to the last, for each employee.
    let days: i64 = db
        .query_one(
            "SELECT count(*) FROM card_running_employee_daily WHERE company_id = $1 AND employee_id = $2",
            &[&company, &a],
        )
        .await
        .unwrap()
        .get(0);
    let first_to_last = (now.date_naive() - day(20).date_naive()).num_days() + 1;
    assert_eq!(days, first_to_last);
    let views_and_total: (i64, i64) = db
        .query_one(
            "SELECT view, view + scan_qr + call + email + whatsapp + download_vcard + link_click
                    + share + lead + preview
             FROM card_running_employee_latest WHERE company_id = $1 AND employee_id = $2",
            &[&company, &a],
        )
        .await
        .map(|row| (row.get(0), row.get(1)))
        .unwrap();
    assert_eq!(views_and_total, (4, 8));
    // The leads, per card and for the company's series (whose latest row is the whole total).
    let leads = async |sql: &str| scalar(&db, sql, &[&company]).await;
    assert_eq!(
        leads("SELECT sum(lead)::bigint FROM card_running_employee_latest WHERE company_id = $1")
            .await,
        2
    );
    assert_eq!(
        leads("SELECT lead FROM card_running_hourly_latest WHERE company_id = $1").await,
        2
    );
    assert_eq!(
        leads(
            "SELECT lead FROM card_running_company_latest
             WHERE company_id = $1 AND device = 'mobile' AND region = 'DE'"
        )
        .await,
        2
    );
}
