//! Migrations that carry data: applied to a database holding the previous schema's rows, they
//! must keep every count. Run as a database owner without superuser rights, like a managed
//! database's owner, which the forced row-level security binds too.

use crate::helpers::{connect, superuser_url};
use chrono::{DateTime, Utc};
use tokio_postgres::Client;
use uuid::Uuid;

mod sql {
    refinery::embed_migrations!("sql");
}

/// An empty database owned by a role of its own that is not a superuser, and a connection as it.
async fn database_owned_by_a_plain_role() -> (String, Client) {
    let suffix = Uuid::new_v4().simple().to_string();
    let (owner, name) = (format!("owner_{suffix}"), format!("migrate_{suffix}"));
    let admin = connect(&superuser_url("postgres")).await;
    for statement in [
        format!("CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS"),
        format!("CREATE DATABASE {name} OWNER {owner}"),
        // The owner hands the SECURITY DEFINER functions to this role (its BYPASSRLS attribute
        // is not inherited). The roles are cluster-wide; the template's migration created them.
        format!("GRANT callingcard_definer TO {owner}"),
    ] {
        admin.batch_execute(&statement).await.unwrap();
    }
    // The public schema belongs to the database owner from PostgreSQL 15 on; older ones need it.
    let db = connect(&superuser_url(&name)).await;
    // Handing a function to callingcard_definer needs the new owner to be able to create in
    // the schema, as a DBA would set it up for a non-superuser owner.
    db.batch_execute(&format!(
        "ALTER SCHEMA public OWNER TO {owner};
         GRANT CREATE ON SCHEMA public TO callingcard_definer;"
    ))
    .await
    .unwrap();
    let url = superuser_url(&name).replace("postgres@", &format!("{owner}@"));
    (name, connect(&url).await)
}

#[tokio::test]
async fn daily_rollups_are_backfilled_from_the_hourly_ones() {
    let (name, mut owner) = database_owned_by_a_plain_role().await;
    sql::migrations::runner()
        .set_target(refinery::Target::Version(4))
        .run_async(&mut owner)
        .await
        .expect("migrating to V4");

    // Two companies' hourly rollups over three UTC days, written as each tenant.
    let companies = [Uuid::new_v4(), Uuid::new_v4()];
    let employees = [Uuid::new_v4(), Uuid::new_v4()];
    let hours: Vec<DateTime<Utc>> = [
        "2026-03-01T00:00:00Z",
        "2026-03-01T13:00:00Z",
        "2026-03-01T23:00:00Z",
        "2026-03-02T00:00:00Z",
        "2026-03-03T07:00:00Z",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    for (n, company) in companies.iter().enumerate() {
        let tx = owner.transaction().await.unwrap();
        tx.execute(
            "SELECT set_config('app.company_id', $1::uuid::text, true)",
            &[company],
        )
        .await
        .unwrap();
        tx.execute(
            "INSERT INTO companies (id, name, slug) VALUES ($1, 'Backfill', $2)",
            &[company, &format!("backfill-{n}-{}", company.simple())],
        )
        .await
        .unwrap();
        for (h, hour) in hours.iter().enumerate() {
            for (e, employee) in employees.iter().enumerate() {
                for (a, action) in ["view", "call", "preview"].iter().enumerate() {
                    let events = (1 + n + h + e * 3 + a * 5) as i64;
                    tx.execute(
                        "INSERT INTO card_rollup_employee_hourly
                             (company_id, hour, employee_id, action, events)
                         VALUES ($1, $2, $3, $4, $5)",
                        &[company, hour, employee, action, &events],
                    )
                    .await
                    .unwrap();
                    let (device, region) = if e == 0 { ("mobile", "DE") } else { ("", "") };
                    tx.execute(
                        "INSERT INTO card_rollup_company_hourly
                             (company_id, hour, action, device, region, events)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (company_id, hour, action, device, region)
                         DO UPDATE SET events = card_rollup_company_hourly.events + excluded.events",
                        &[company, hour, action, &device, &region, &events],
                    )
                    .await
                    .unwrap();
                }
            }
        }
        tx.commit().await.unwrap();
    }

    let report = sql::migrations::runner()
        .run_async(&mut owner)
        .await
        .expect("migrating to the latest version");
    assert!(
        report.applied_migrations().iter().any(|m| m.version() == 5),
        "V5 applied"
    );

    // Read back as the superuser, past the policies.
    let db = connect(&superuser_url(&name)).await;
    let unpivot = "CROSS JOIN LATERAL (VALUES ('view', d.view), ('scan_qr', d.scan_qr),
                       ('call', d.call), ('email', d.email), ('whatsapp', d.whatsapp),
                       ('download_vcard', d.download_vcard), ('link_click', d.link_click),
                       ('share', d.share), ('preview', d.preview)) AS a (action, events)";
    let read = async |sql: &str| -> Vec<(String, String, String, i64)> {
        db.query(sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    };
    let daily = read(&format!(
        "SELECT d.company_id || '/' || d.day, d.employee_id::text, a.action, a.events
         FROM card_rollup_employee_daily d {unpivot} WHERE a.events > 0 ORDER BY 1, 2, 3"
    ))
    .await;
    let hourly = read(
        "SELECT company_id || '/' || (hour AT TIME ZONE 'UTC')::date, employee_id::text, action,
                sum(events)::bigint
         FROM card_rollup_employee_hourly GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .await;
    // 2 companies × 3 days × 2 employees × 3 actions.
    assert_eq!(daily.len(), 36);
    assert_eq!(daily, hourly);
    let daily = read(&format!(
        "SELECT d.company_id || '/' || d.day, d.device || '/' || d.region, a.action, a.events
         FROM card_rollup_company_daily d {unpivot} WHERE a.events > 0 ORDER BY 1, 2, 3"
    ))
    .await;
    let hourly = read(
        "SELECT company_id || '/' || (hour AT TIME ZONE 'UTC')::date, device || '/' || region,
                action, sum(events)::bigint
         FROM card_rollup_company_hourly GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .await;
    assert_eq!(daily.len(), 36);
    assert_eq!(daily, hourly);
}
