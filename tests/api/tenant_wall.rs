//! The tenant wall at the SQL level, on the service's own role (`callingcard_app`): row-level
//! security on every tenant table, what the role may and may not do, the SECURITY DEFINER
//! lookups that run before a tenant is known, what a visitor's transaction (a public card) may
//! read, and the change notifications that keep the card caches fresh.
//!
//! Data is seeded with the superuser (which bypasses row-level security); every check then runs
//! on a plain connection of the service role, setting `app.company_id` the way `Db` does.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::helpers::{app_role_url, connect, fresh_database, superuser_url};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls, Transaction, error::SqlState};
use uuid::Uuid;

/// A table behind the tenant wall.
struct TenantTable {
    name: &'static str,
    /// The column naming the row's company (`id` for `companies`, the tenant root).
    tenant_col: &'static str,
    /// Inserts one row of company `$1`. `$2` is an employee of that company that has neither a
    /// card nor a login (for the tables that reference employees).
    insert: &'static str,
    /// Statements that drop the current tenant's references to this table's rows; rows still
    /// referenced cannot be deleted.
    unlink: &'static [&'static str],
    /// A harmless change to every row, for the UPDATE checks (`UPDATE {name} SET {touch}`).
    touch: &'static str,
}

impl TenantTable {
    fn is_root(&self) -> bool {
        self.name == "companies"
    }

    /// No UPDATE or DELETE is granted on it at all (see [`APPEND_ONLY`]).
    fn is_append_only(&self) -> bool {
        APPEND_ONLY.contains(&self.name)
    }
}

/// Tables the service role may only INSERT into and SELECT from: its UPDATE and DELETE checks
/// become checks that both are refused outright.
const APPEND_ONLY: &[&str] = &["audit_events"];

/// A webhook of company `$1`, its URL made unique by `$2`.
macro_rules! webhook_insert {
    () => {
        "INSERT INTO webhooks (company_id, id, url, events, secret)
         SELECT $1, gen_random_uuid(), 'https://intruder.example/' || md5($2::uuid::text),
                ARRAY['employee.created'], md5(random()::text) || md5(random()::text)"
    };
}
const WEBHOOK_INSERT: &str = webhook_insert!();

/// Every tenant table. `catalog_walls_every_tenant_table` fails when a table with a `company_id`
/// is missing here, so a new table gets the behavioural checks below too.
const TENANT_TABLES: &[TenantTable] = &[
    TenantTable {
        name: "companies",
        tenant_col: "id",
        insert: "INSERT INTO companies (id, name, slug)
                 VALUES ($1, 'Intruder', 'intruder-' || left(md5($2::uuid::text), 12))",
        unlink: &[],
        touch: CREATED_EARLIER,
    },
    TenantTable {
        name: "employees",
        tenant_col: "company_id",
        insert: "INSERT INTO employees (company_id, id, full_name, public_slug)
                 VALUES ($1, gen_random_uuid(), 'Intruder', 'intruder-' || left(md5($2::uuid::text), 12))",
        unlink: &[],
        touch: CREATED_EARLIER,
    },
    TenantTable {
        name: "users",
        tenant_col: "company_id",
        insert: "INSERT INTO users (company_id, id, email, password_hash, full_name, role, employee_id)
                 VALUES ($1, gen_random_uuid(), 'intruder-' || left(md5($1::uuid::text), 12) || '@example.com',
                         'not-a-hash', 'Intruder', 'employee', $2)",
        unlink: &[],
        touch: CREATED_EARLIER,
    },
    TenantTable {
        name: "cards",
        tenant_col: "company_id",
        insert: "INSERT INTO cards (company_id, id, employee_id, url, qr_code, vcard_url)
                 VALUES ($1, gen_random_uuid(), $2, '/card/x/intruder', '/api/card/x/intruder/qr.png',
                         '/api/card/x/intruder/vcard')",
        unlink: &[],
        touch: CREATED_EARLIER,
    },
    TenantTable {
        name: "subscriptions",
        tenant_col: "company_id",
        insert: "INSERT INTO subscriptions (company_id, plan, active, ended_at)
                 SELECT $1, 'professional', false, now() WHERE $2::uuid IS NOT NULL",
        unlink: &[],
        touch: CREATED_EARLIER,
    },
    // Kept by triggers on employees; the service role could write its own tenant's count, never
    // another's. (Its own INSERT upserts: the company's row exists as soon as it has employees.)
    TenantTable {
        name: "employee_counts",
        tenant_col: "company_id",
        insert: "INSERT INTO employee_counts AS c (company_id, employees)
                 SELECT $1, 1 WHERE $2::uuid IS NOT NULL
                 ON CONFLICT (company_id) DO UPDATE SET employees = c.employees",
        unlink: &[],
        touch: "employees = employees + 1",
    },
    TenantTable {
        name: "outbox",
        tenant_col: "company_id",
        insert: "INSERT INTO outbox (company_id, id, kind, payload)
                 VALUES ($1, gen_random_uuid(), 'email', jsonb_build_object('employee', $2::uuid))",
        unlink: &[],
        touch: "attempts = attempts + 1",
    },
    // An emailed token needs a login of its company: the row inserts one first.
    TenantTable {
        name: "account_tokens",
        tenant_col: "company_id",
        insert: "WITH u AS (
                     INSERT INTO users (company_id, id, email, password_hash, full_name, role)
                     VALUES ($1, gen_random_uuid(), 'token-' || md5(random()::text) || '@example.com',
                             'not-a-hash', 'Intruder', 'employee')
                     RETURNING company_id, id, email
                 )
                 INSERT INTO account_tokens (company_id, token_hash, user_id, purpose, email, expires_at)
                 SELECT company_id, sha256(convert_to(random()::text, 'UTF8')), id, 'password_reset',
                        email, now() + interval '1 hour'
                 FROM u WHERE $2::uuid IS NOT NULL",
        unlink: &[],
        touch: "expires_at = expires_at - interval '1 minute'",
    },
    // A session needs a login of its company: the row inserts one first, through the same wall.
    TenantTable {
        name: "sessions",
        tenant_col: "company_id",
        insert: "WITH u AS (
                     INSERT INTO users (company_id, id, email, password_hash, full_name, role)
                     VALUES ($1, gen_random_uuid(), 'session-' || md5(random()::text) || '@example.com',
                             'not-a-hash', 'Intruder', 'employee')
                     RETURNING company_id, id
                 )
                 INSERT INTO sessions (company_id, id, user_id, expires_at)
                 SELECT company_id, gen_random_uuid(), id, now() + interval '1 day'
                 FROM u WHERE $2::uuid IS NOT NULL",
        unlink: &[],
        touch: "last_used_at = last_used_at - interval '1 minute'",
    },
    TenantTable {
        name: "session_refresh_tokens",
        tenant_col: "company_id",
        insert: "WITH u AS (
                     INSERT INTO users (company_id, id, email, password_hash, full_name, role)
                     VALUES ($1, gen_random_uuid(), 'refresh-' || md5(random()::text) || '@example.com',
                             'not-a-hash', 'Intruder', 'employee')
                     RETURNING company_id, id
                 ), s AS (
                     INSERT INTO sessions (company_id, id, user_id, expires_at)
                     SELECT company_id, gen_random_uuid(), id, now() + interval '1 day' FROM u
                     RETURNING company_id, id
                 )
                 INSERT INTO session_refresh_tokens (company_id, token_hash, session_id)
                 SELECT company_id, sha256(convert_to(random()::text, 'UTF8')), id
                 FROM s WHERE $2::uuid IS NOT NULL",
        unlink: &[],
        touch: "issued_at = issued_at - interval '1 minute'",
    },
    TenantTable {
        name: "invitations",
        tenant_col: "company_id",
        insert: "INSERT INTO invitations (company_id, id, email, role, employee_id, token_hash,
                                          invited_by, expires_at)
                 VALUES ($1, gen_random_uuid(), 'intruder-' || md5(random()::text) || '@example.com',
                         'employee', $2, sha256(convert_to(random()::text, 'UTF8')),
                         gen_random_uuid(), now() + interval '7 days')",
        unlink: &[],
        touch: CREATED_EARLIER,
    },
    // A CSV file kept between the console's import steps.
    TenantTable {
        name: "console_imports",
        tenant_col: "company_id",
        insert: "INSERT INTO console_imports (company_id, id, uploaded_by, file_name, bytes)
                 VALUES ($1, gen_random_uuid(), $2, 'intruder.csv', convert_to('full_name', 'UTF8'))",
        unlink: &[],
        touch: CREATED_EARLIER,
    },
    TenantTable {
        name: "media",
        tenant_col: "company_id",
        insert: "INSERT INTO media (company_id, hash, content_type, bytes)
                 VALUES ($1, md5($2::uuid::text || random()::text), 'image/png', decode('89504e47', 'hex'))",
        unlink: &[
            "UPDATE employees SET photo_hash = NULL",
            "UPDATE companies SET logo_hash = NULL",
        ],
        touch: CREATED_EARLIER,
    },
    // Analytics. Raw events are partitioned (by retention class, then time); the wall is on the
    // parent, the only way the service role reaches them (it has no privileges on partitions).
    // Moving an event a day back moves it to another partition: the checks cover row movement.
    TenantTable {
        name: "card_events",
        tenant_col: "company_id",
        insert: "INSERT INTO card_events (company_id, retention, occurred_at, id, employee_id, action)
                 VALUES ($1, 'd30', now(), gen_random_uuid(), $2, 'call')",
        unlink: &[],
        touch: "occurred_at = occurred_at - interval '1 day'",
    },
    TenantTable {
        name: "card_rollup_employee_hourly",
        tenant_col: "company_id",
        insert: "INSERT INTO card_rollup_employee_hourly (company_id, hour, employee_id, action, events)
                 VALUES ($1, date_trunc('hour', now(), 'UTC'), $2, 'call', 1)",
        unlink: &[],
        touch: "events = events + 1",
    },
    TenantTable {
        name: "card_rollup_company_hourly",
        tenant_col: "company_id",
        insert: "INSERT INTO card_rollup_company_hourly (company_id, hour, action, device, region, events)
                 VALUES ($1, date_trunc('hour', now(), 'UTC'), 'call', '', left(md5($2::uuid::text), 12), 1)",
        unlink: &[],
        touch: "events = events + 1",
    },
    TenantTable {
        name: "card_rollup_employee_daily",
        tenant_col: "company_id",
        insert: "INSERT INTO card_rollup_employee_daily (company_id, day, employee_id, view)
                 VALUES ($1, current_date, $2, 1)",
        unlink: &[],
        touch: "view = view + 1",
    },
    TenantTable {
        name: "card_rollup_company_daily",
        tenant_col: "company_id",
        insert: "INSERT INTO card_rollup_company_daily (company_id, day, device, region, view)
                 VALUES ($1, current_date, '', left(md5($2::uuid::text), 12), 1)",
        unlink: &[],
        touch: "view = view + 1",
    },
    TenantTable {
        name: "card_rollup_action_hourly",
        tenant_col: "company_id",
        insert: "INSERT INTO card_rollup_action_hourly (company_id, hour, action, events)
                 VALUES ($1, date_trunc('hour', now(), 'UTC') - make_interval(days => 400),
                         left(md5($2::uuid::text), 12), 1)",
        unlink: &[],
        touch: "events = events + 1",
    },
    TenantTable {
        name: "card_visitor_days",
        tenant_col: "company_id",
        insert: "INSERT INTO card_visitor_days (company_id, day, card, visitor, first_hour)
                 VALUES ($1, current_date, $2, md5(random()::text), date_trunc('hour', now(), 'UTC'))",
        unlink: &[],
        touch: "visitor = md5(visitor)",
    },
    TenantTable {
        name: "card_rollup_visitors_hourly",
        tenant_col: "company_id",
        insert: "INSERT INTO card_rollup_visitors_hourly (company_id, card, hour, visitors)
                 VALUES ($1, $2, date_trunc('hour', now(), 'UTC') - make_interval(days => 400), 1)",
        unlink: &[],
        touch: "visitors = visitors + 1",
    },
    // Webhooks: an endpoint (its secret readable by no tenant query), a delivery, an attempt.
    TenantTable {
        name: "webhooks",
        tenant_col: "company_id",
        insert: WEBHOOK_INSERT,
        unlink: &[],
        touch: "description = description",
    },
    TenantTable {
        name: "webhook_deliveries",
        tenant_col: "company_id",
        insert: concat!(
            "WITH w AS (",
            webhook_insert!(),
            " RETURNING company_id, id)
             INSERT INTO webhook_deliveries (company_id, id, webhook_id, event_id, event, subject_id, payload)
             SELECT company_id, gen_random_uuid(), id, gen_random_uuid(), 'employee.created', $2, '{}' FROM w"
        ),
        unlink: &[],
        touch: "attempts = attempts",
    },
    TenantTable {
        name: "webhook_attempts",
        tenant_col: "company_id",
        insert: concat!(
            "WITH w AS (",
            webhook_insert!(),
            " RETURNING company_id, id), d AS (
                 INSERT INTO webhook_deliveries (company_id, id, webhook_id, event_id, event, subject_id, payload)
                 SELECT company_id, gen_random_uuid(), id, gen_random_uuid(), 'employee.created', $2, '{}' FROM w
                 RETURNING company_id, id
             )
             INSERT INTO webhook_attempts (company_id, delivery_id, attempt, outcome, response_code, latency_ms)
             SELECT company_id, id, 1, 'failed', 500, 12 FROM d"
        ),
        unlink: &[],
        touch: "latency_ms = latency_ms",
    },
    TenantTable {
        name: "card_running_employee_daily",
        tenant_col: "company_id",
        insert: "INSERT INTO card_running_employee_daily (company_id, day, employee_id, view)
                 VALUES ($1, current_date, $2, 1)",
        unlink: &[],
        touch: "view = view + 1",
    },
    TenantTable {
        name: "card_running_employee_latest",
        tenant_col: "company_id",
        insert: "INSERT INTO card_running_employee_latest (company_id, employee_id, first_day, last_day, view)
                 VALUES ($1, $2, current_date, current_date, 1)",
        unlink: &[],
        touch: "view = view + 1",
    },
    TenantTable {
        name: "card_running_company_daily",
        tenant_col: "company_id",
        insert: "INSERT INTO card_running_company_daily (company_id, day, device, region, view)
                 VALUES ($1, current_date, '', left(md5($2::uuid::text), 12), 1)",
        unlink: &[],
        touch: "view = view + 1",
    },
    TenantTable {
        name: "card_running_company_latest",
        tenant_col: "company_id",
        insert: "INSERT INTO card_running_company_latest (company_id, device, region, first_day, last_day, view)
                 VALUES ($1, '', left(md5($2::uuid::text), 12), current_date, current_date, 1)",
        unlink: &[],
        touch: "view = view + 1",
    },
    TenantTable {
        name: "card_running_hourly",
        tenant_col: "company_id",
        insert: "INSERT INTO card_running_hourly (company_id, hour, view)
                 SELECT $1, date_trunc('hour', now(), 'UTC') - make_interval(days => 400), 1
                 WHERE $2::uuid IS NOT NULL",
        unlink: &[],
        touch: "view = view + 1",
    },
    TenantTable {
        name: "card_running_hourly_latest",
        tenant_col: "company_id",
        // One row per company: the tenant's own insert replaces it.
        insert: "INSERT INTO card_running_hourly_latest AS r (company_id, first_hour, last_hour, view)
                 SELECT $1, now(), now(), 1 WHERE $2::uuid IS NOT NULL
                 ON CONFLICT (company_id) DO UPDATE SET view = r.view + 1",
        unlink: &[],
        touch: "view = view + 1",
    },
    TenantTable {
        name: "leads",
        tenant_col: "company_id",
        insert: "INSERT INTO leads (company_id, id, employee_id, employee_name, name, email)
                 VALUES ($1, gen_random_uuid(), $2, 'Spare', 'Intruder', 'intruder@example.com')",
        unlink: &[],
        touch: CREATED_EARLIER,
    },
    TenantTable {
        name: "audit_events",
        tenant_col: "company_id",
        insert: "INSERT INTO audit_events (company_id, action, target_type, target_id, outcome)
                 VALUES ($1, 'employee.updated', 'employee', $2, 'success')",
        unlink: &[],
        touch: "outcome = outcome",
    },
];

/// The `touch` of the tables that keep a creation time.
const CREATED_EARLIER: &str = "created_at = created_at - interval '1 day'";

/// The analytics tables, which a visitor's transaction must not see at all.
const ANALYTICS_TABLES: [&str; 14] = [
    "card_events",
    "card_rollup_employee_hourly",
    "card_rollup_company_hourly",
    "card_rollup_employee_daily",
    "card_rollup_company_daily",
    "card_rollup_action_hourly",
    "card_visitor_days",
    "card_rollup_visitors_hourly",
    "card_running_employee_daily",
    "card_running_employee_latest",
    "card_running_company_daily",
    "card_running_company_latest",
    "card_running_hourly",
    "card_running_hourly_latest",
];

/// One seeded company.
struct Seed {
    id: Uuid,
    /// Employees that have a card.
    employees: Vec<Uuid>,
    /// An employee with no card and no login.
    spare_employee: Uuid,
    /// Hashes of the company's media; the first is the photo of `employees[0]`, the last the
    /// company's logo.
    media: Vec<String>,
    admin_id: Uuid,
    admin_email: String,
    admin_hash: String,
}

struct World {
    dbname: String,
    /// Superuser: bypasses row-level security.
    owner: Client,
    a: Seed,
    b: Seed,
}

async fn seed_company(
    owner: &Client,
    slug: &str,
    carded: usize,
    extra_logins: usize,
    past_plans: usize,
    images: usize,
    activity: i32,
) -> Seed {
    let id = Uuid::new_v4();
    owner
        .execute(
            "INSERT INTO companies (id, name, slug) VALUES ($1, $2, $3)",
            &[&id, &format!("Company {slug}"), &slug],
        )
        .await
        .unwrap();
    let add_employee = async |name: &str, employee_slug: &str| {
        let employee = Uuid::new_v4();
        owner
            .execute(
                "INSERT INTO employees (company_id, id, full_name, public_slug) VALUES ($1, $2, $3, $4)",
                &[&id, &employee, &name, &employee_slug],
            )
            .await
            .unwrap();
        employee
    };
    let mut employees = Vec::new();
    for i in 0..carded {
        let employee =
            add_employee(&format!("Employee {i} of {slug}"), &format!("employee-{i}")).await;
        owner
            .execute(
                "INSERT INTO cards (company_id, id, employee_id, url, qr_code, vcard_url)
                 VALUES ($1, gen_random_uuid(), $2, '/card/c/e', '/api/card/c/e/qr.png', '/api/card/c/e/vcard')",
                &[&id, &employee],
            )
            .await
            .unwrap();
        employees.push(employee);
    }
    let spare_employee = add_employee("Spare", "spare").await;
    let admin_id = Uuid::new_v4();
    let admin_email = format!("admin@{slug}.example.com");
    let admin_hash = format!("$argon2id$not-a-real-hash-of-{slug}");
    let insert_user =
        "INSERT INTO users (company_id, id, email, password_hash, full_name, role, employee_id)
                       VALUES ($1, $2, $3, $4, 'Someone', $5, $6)";
    owner
        .execute(
            insert_user,
            &[
                &id,
                &admin_id,
                &admin_email,
                &admin_hash,
                &"admin",
                &None::<Uuid>,
            ],
        )
        .await
        .unwrap();
    // The admin is signed in twice; the first session was refreshed once.
    owner
        .execute(
            "WITH s AS (
                 INSERT INTO sessions (company_id, id, user_id, expires_at)
                 SELECT $1, gen_random_uuid(), $2, now() + interval '30 days'
                 FROM generate_series(1, 2)
                 RETURNING company_id, id
             )
             INSERT INTO session_refresh_tokens (company_id, token_hash, session_id, used_at)
             SELECT company_id, sha256(convert_to(id::text || n, 'UTF8')), id,
                    CASE WHEN n = 1 THEN now() END
             FROM s, generate_series(1, 2) n",
            &[&id, &admin_id],
        )
        .await
        .unwrap();
    owner
        .execute(
            "INSERT INTO outbox (company_id, id, kind, payload)
             VALUES ($1, gen_random_uuid(), 'email', '{}')",
            &[&id],
        )
        .await
        .unwrap();
    owner
        .execute(
            "INSERT INTO account_tokens (company_id, token_hash, user_id, purpose, email, expires_at)
             SELECT $1, sha256(convert_to($2::uuid::text || p, 'UTF8')), $2, p, $3, now() + interval '1 hour'
             FROM unnest(ARRAY['password_reset', 'email_verification']) p",
            &[&id, &admin_id, &admin_email],
        )
        .await
        .unwrap();
    // A pending invitation; its token is `invitation of {slug}`.
    owner
        .execute(
            "INSERT INTO invitations (company_id, id, email, role, token_hash, invited_by, expires_at)
             VALUES ($1, gen_random_uuid(), $2, 'employee', sha256(convert_to($3, 'UTF8')), $4,
                     now() + interval '7 days')",
            &[
                &id,
                &format!("invited@{slug}.example.com"),
                &format!("invitation of {slug}"),
                &admin_id,
            ],
        )
        .await
        .unwrap();
    // A webhook, a delivery to it and an attempt of that delivery.
    owner
        .execute(
            "WITH w AS (
                 INSERT INTO webhooks (company_id, id, url, events, secret)
                 VALUES ($1, gen_random_uuid(), 'https://hooks.' || $2 || '.example/in',
                         ARRAY['employee.created'], 'whsec_' || md5($2) || md5($2))
                 RETURNING company_id, id
             ), d AS (
                 INSERT INTO webhook_deliveries (company_id, id, webhook_id, event_id, event, payload)
                 SELECT company_id, gen_random_uuid(), id, gen_random_uuid(), 'employee.created', '{}'
                 FROM w
                 RETURNING company_id, id
             )
             INSERT INTO webhook_attempts (company_id, delivery_id, attempt, outcome, response_code,
                                           latency_ms)
             SELECT company_id, id, 1, 'failed', 503, 40 FROM d",
            &[&id, &slug],
        )
        .await
        .unwrap();
    // A lead left on the first card (or on none).
    owner
        .execute(
            "INSERT INTO leads (company_id, id, employee_id, employee_name, name, email)
             VALUES ($1, gen_random_uuid(), $2, 'Employee 0', 'Vera Visitor', 'vera@example.com')",
            &[&id, &employees.first().copied()],
        )
        .await
        .unwrap();
    // A CSV file kept between the console's import steps.
    owner
        .execute(
            "INSERT INTO console_imports (company_id, id, uploaded_by, file_name, bytes)
             VALUES ($1, gen_random_uuid(), $2, 'people.csv', convert_to('full_name', 'UTF8'))",
            &[&id, &admin_id],
        )
        .await
        .unwrap();
    for i in 0..extra_logins {
        // One login per employee record: the logins beyond the carded employees are unlinked.
        let linked = employees.get(i).copied();
        let email = format!("employee-{i}@{slug}.example.com");
        owner
            .execute(
                insert_user,
                &[&id, &Uuid::new_v4(), &email, &"x", &"employee", &linked],
            )
            .await
            .unwrap();
    }
    for _ in 0..past_plans {
        owner
            .execute(
                "INSERT INTO subscriptions (company_id, plan, active, ended_at) VALUES ($1, 'professional', false, now())",
                &[&id],
            )
            .await
            .unwrap();
    }
    owner
        .execute(
            "INSERT INTO subscriptions (company_id, plan) VALUES ($1, 'free')",
            &[&id],
        )
        .await
        .unwrap();
    owner
        .execute(
            "INSERT INTO audit_events (company_id, action, target_type, target_id, outcome)
             VALUES ($1, 'company.created', 'company', $1, 'success')",
            &[&id],
        )
        .await
        .unwrap();
    let mut media = Vec::new();
    for i in 0..images {
        let hash: String = owner
            .query_one(
                "INSERT INTO media (company_id, hash, content_type, bytes)
                 VALUES ($1, md5($2), 'image/png', decode('89504e470d0a1a0a', 'hex')) RETURNING hash",
                &[&id, &format!("image {i} of {slug}")],
            )
            .await
            .unwrap()
            .get(0);
        media.push(hash);
    }
    owner
        .execute(
            "UPDATE employees SET photo_hash = $3 WHERE company_id = $1 AND id = $2",
            &[&id, &employees[0], &media[0]],
        )
        .await
        .unwrap();
    owner
        .execute(
            "UPDATE companies SET logo_hash = $2 WHERE id = $1",
            &[&id, &media[images - 1]],
        )
        .await
        .unwrap();
    // `activity` rows in each analytics table: events of the last hour (their retention class
    // is the free plan's, like the subscription above), and rollups of the last hours (or days).
    for sql in [
        "INSERT INTO card_events (company_id, retention, occurred_at, id, employee_id, action, device, region, visitor)
         SELECT $1, 'd30', now() - make_interval(mins => 7 * g), gen_random_uuid(), $2, 'view', 'mobile', 'DE', md5(g::text)
         FROM generate_series(1, $3) g",
        "INSERT INTO card_rollup_employee_hourly (company_id, hour, employee_id, action, events)
         SELECT $1, date_trunc('hour', now(), 'UTC') - make_interval(hours => g), $2, 'view', g
         FROM generate_series(1, $3) g",
        "INSERT INTO card_rollup_company_hourly (company_id, hour, action, device, region, events)
         SELECT $1, date_trunc('hour', now(), 'UTC') - make_interval(hours => g), 'view', 'mobile', 'DE', g
         FROM generate_series(1, $3) g WHERE $2::uuid IS NOT NULL",
        "INSERT INTO card_rollup_employee_daily (company_id, day, employee_id, view)
         SELECT $1, current_date - g, $2, g
         FROM generate_series(1, $3) g",
        "INSERT INTO card_rollup_company_daily (company_id, day, device, region, view)
         SELECT $1, current_date - g, 'mobile', 'DE', g
         FROM generate_series(1, $3) g WHERE $2::uuid IS NOT NULL",
        "INSERT INTO card_rollup_action_hourly (company_id, hour, action, events)
         SELECT $1, date_trunc('hour', now(), 'UTC') - make_interval(hours => g), 'view', g
         FROM generate_series(1, $3) g WHERE $2::uuid IS NOT NULL",
        "INSERT INTO card_visitor_days (company_id, day, card, visitor, first_hour)
         SELECT $1, current_date, $2, md5(g::text), date_trunc('hour', now(), 'UTC')
         FROM generate_series(1, $3) g",
        "INSERT INTO card_rollup_visitors_hourly (company_id, card, hour, visitors)
         SELECT $1, $2, date_trunc('hour', now(), 'UTC') - make_interval(hours => g), g
         FROM generate_series(1, $3) g",
    ] {
        let added = owner
            .execute(sql, &[&id, &employees[0], &activity])
            .await
            .unwrap();
        assert_eq!(added, activity as u64, "{sql}");
    }
    // The running totals of those rollups, as the dashboards read them.
    owner
        .execute("SELECT analytics_rebuild_running($1)", &[&id])
        .await
        .unwrap();
    Seed {
        id,
        employees,
        spare_employee,
        media,
        admin_id,
        admin_email,
        admin_hash,
    }
}

/// Two companies with rows in every tenant table, in different numbers.
async fn world() -> World {
    let dbname = fresh_database().await;
    let owner = connect(&superuser_url(&dbname)).await;
    let a = seed_company(&owner, "alpha", 2, 1, 0, 2, 3).await;
    let b = seed_company(&owner, "beta", 1, 2, 1, 1, 2).await;
    World {
        dbname,
        owner,
        a,
        b,
    }
}

impl World {
    async fn app(&self) -> Client {
        connect(&app_role_url(&self.dbname)).await
    }

    /// Rows of `company` in `table`, counted by the superuser.
    async fn count(&self, table: &TenantTable, company: Uuid) -> i64 {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {} = $1",
            table.name, table.tenant_col
        );
        self.owner
            .query_one(&sql, &[&company])
            .await
            .unwrap()
            .get(0)
    }

    /// Every row of `company` in `table`, as the superuser sees it.
    async fn snapshot(&self, table: &TenantTable, company: Uuid) -> String {
        let sql = format!(
            "SELECT coalesce(json_agg(t ORDER BY t::text), '[]')::text FROM {} t WHERE {} = $1",
            table.name, table.tenant_col
        );
        self.owner
            .query_one(&sql, &[&company])
            .await
            .unwrap()
            .get(0)
    }
}

/// A transaction of the service role, with the tenant settings `Db` would make.
async fn begin<'a>(
    client: &'a mut Client,
    company: Option<Uuid>,
    role: Option<&str>,
) -> Transaction<'a> {
    let tx = client.transaction().await.expect("BEGIN");
    if let Some(company) = company {
        tx.query_one(
            "SELECT set_config('app.company_id', $1, true)",
            &[&company.to_string()],
        )
        .await
        .expect("setting app.company_id");
    }
    if let Some(role) = role {
        tx.query_one("SELECT set_config('app.role', $1, true)", &[&role])
            .await
            .expect("setting app.role");
    }
    tx
}

/// The statement failed on the server with `code`; its message.
#[track_caller]
fn expect_sqlstate<T: std::fmt::Debug>(
    result: Result<T, tokio_postgres::Error>,
    code: &SqlState,
    what: &str,
) -> String {
    let err = match result {
        Ok(value) => panic!(
            "{what}: expected SQLSTATE {}, got Ok({value:?})",
            code.code()
        ),
        Err(err) => err,
    };
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("{what}: not a server error: {err:?}"));
    assert_eq!(db.code(), code, "{what}: {}", db.message());
    db.message().to_owned()
}

/// SQLSTATE 42501 from a row-level security policy (not from a missing grant).
#[track_caller]
fn expect_rls_violation<T: std::fmt::Debug>(result: Result<T, tokio_postgres::Error>, what: &str) {
    let message = expect_sqlstate(result, &SqlState::INSUFFICIENT_PRIVILEGE, what);
    assert!(message.contains("row-level security"), "{what}: {message}");
}

#[tokio::test]
async fn every_tenant_table_shows_and_changes_only_the_current_tenant() {
    let w = world().await;
    let (a, b) = (w.a.id, w.b.id);
    let mut app = w.app().await;

    for table in TENANT_TABLES {
        let (t, col) = (table.name, table.tenant_col);
        let a_count = w.count(table, a).await;
        let b_count = w.count(table, b).await;
        assert!(
            a_count > 0 && b_count > 0,
            "{t}: both companies need rows to test with"
        );
        let a_before = w.snapshot(table, a).await;
        let b_before = w.snapshot(table, b).await;

        // Reads, and writes aimed at B, as tenant A; committed, so that a leak would persist.
        let tx = begin(&mut app, Some(a), Some("admin")).await;
        let visible: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            visible, a_count,
            "{t}: tenant A must see exactly its own rows"
        );
        let tenants: BTreeSet<Uuid> = tx
            .query(&format!("SELECT {col} FROM {t}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(
            tenants,
            BTreeSet::from([a]),
            "{t}: rows of another company are visible"
        );
        let aimed_at_b: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {t} WHERE {col} = $1"), &[&b])
            .await
            .unwrap()
            .get(0);
        assert_eq!(aimed_at_b, 0, "{t}: B's rows are visible by id");
        // A predicate that fails on B's rows must never be evaluated on them: policies run first.
        let probing: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM {t} WHERE CASE WHEN {col} = $1 THEN length({col}::text) / 0 ELSE 1 END = 1"),
                &[&b],
            )
            .await
            .unwrap_or_else(|e| panic!("{t}: a user predicate ran on another tenant's rows: {e}"))
            .get(0);
        assert_eq!(probing, a_count, "{t}");
        if table.is_append_only() {
            tx.commit().await.unwrap();
            assert_no_update_or_delete(&mut app, table, a).await;
        } else {
            let updated = tx
                .execute(
                    &format!("UPDATE {t} SET {} WHERE {col} = $1", table.touch),
                    &[&b],
                )
                .await
                .unwrap();
            assert_eq!(updated, 0, "{t}: UPDATE reached B's rows");
            let deleted = tx
                .execute(&format!("DELETE FROM {t} WHERE {col} = $1"), &[&b])
                .await
                .unwrap();
            assert_eq!(deleted, 0, "{t}: DELETE reached B's rows");
            tx.commit().await.unwrap();
        }
        assert_eq!(
            w.snapshot(table, b).await,
            b_before,
            "{t}: B's rows changed"
        );
        assert_eq!(
            w.snapshot(table, a).await,
            a_before,
            "{t}: A's rows changed"
        );

        // A row of B cannot be written in.
        let tx = begin(&mut app, Some(a), Some("admin")).await;
        expect_rls_violation(
            tx.execute(table.insert, &[&b, &w.b.spare_employee]).await,
            &format!("{t}: INSERT for B"),
        );
        tx.rollback().await.unwrap();

        // A row of A cannot be moved out to B (WITH CHECK).
        let tx = begin(&mut app, Some(a), Some("admin")).await;
        let moved = tx
            .execute(
                &format!("UPDATE {t} SET {col} = $1 WHERE {col} = $2"),
                &[&b, &a],
            )
            .await;
        let what = format!("{t}: UPDATE moving A's rows to B");
        if table.is_append_only() {
            expect_sqlstate(moved, &SqlState::INSUFFICIENT_PRIVILEGE, &what);
        } else {
            expect_rls_violation(moved, &what);
        }
        tx.rollback().await.unwrap();
        if table.is_append_only() {
            // Its own rows: inserted, never changed (checked above).
            let tx = begin(&mut app, Some(a), Some("admin")).await;
            assert_eq!(
                tx.execute(table.insert, &[&a, &w.a.spare_employee])
                    .await
                    .unwrap(),
                1,
                "{t}: own INSERT"
            );
            tx.rollback().await.unwrap();
            assert_eq!(
                w.snapshot(table, a).await,
                a_before,
                "{t}: A's rows changed"
            );
            assert_eq!(
                w.snapshot(table, b).await,
                b_before,
                "{t}: B's rows changed"
            );
            continue;
        }

        // Controls: the same statements work on the tenant's own rows, so the refusals above
        // come from the wall and not from a broken statement.
        let mut tx = begin(&mut app, Some(a), Some("admin")).await;
        let sql = format!("UPDATE {t} SET {} WHERE {col} = $1", table.touch);
        assert_eq!(
            tx.execute(&sql, &[&a]).await.unwrap(),
            a_count as u64,
            "{t}: own UPDATE"
        );
        let sql = format!("UPDATE {t} SET {}", table.touch);
        assert_eq!(
            tx.execute(&sql, &[]).await.unwrap(),
            a_count as u64,
            "{t}: UPDATE without WHERE"
        );
        if !table.is_root() {
            assert_eq!(
                tx.execute(table.insert, &[&a, &w.a.spare_employee])
                    .await
                    .unwrap(),
                1,
                "{t}: own INSERT"
            );
        }
        let sql = format!("DELETE FROM {t} WHERE {col} = $1");
        if !table.unlink.is_empty() {
            // Rows in use stay until the tenant's own references to them are gone.
            let in_use = tx.savepoint("delete_in_use").await.unwrap();
            expect_sqlstate(
                in_use.execute(&sql, &[&a]).await,
                &SqlState::FOREIGN_KEY_VIOLATION,
                &format!("{t}: DELETE of rows still referenced"),
            );
            in_use.rollback().await.unwrap();
            for unlink in table.unlink {
                assert!(tx.execute(*unlink, &[]).await.unwrap() > 0, "{t}: {unlink}");
            }
        }
        assert!(
            tx.execute(&sql, &[&a]).await.unwrap() >= a_count as u64,
            "{t}: own DELETE"
        );
        tx.rollback().await.unwrap();
        if table.is_root() {
            // A new company is inserted as its own tenant (that is how sign-up works).
            let new_company = Uuid::new_v4();
            let tx = begin(&mut app, Some(new_company), Some("admin")).await;
            assert_eq!(
                tx.execute(table.insert, &[&new_company, &a]).await.unwrap(),
                1,
                "{t}: own INSERT"
            );
            tx.rollback().await.unwrap();
        }
        assert_eq!(
            w.snapshot(table, a).await,
            a_before,
            "{t}: rolled-back changes persisted"
        );
        assert_eq!(
            w.snapshot(table, b).await,
            b_before,
            "{t}: B's rows changed"
        );
    }
}

/// An append-only table: UPDATE and DELETE are refused outright (no privilege), not merely
/// filtered by the wall, whichever rows they aim at.
async fn assert_no_update_or_delete(app: &mut Client, table: &TenantTable, tenant: Uuid) {
    let (t, col) = (table.name, table.tenant_col);
    for sql in [
        format!("UPDATE {t} SET {} WHERE {col} <> $1", table.touch),
        format!("UPDATE {t} SET {} WHERE {col} = $1", table.touch),
        format!("DELETE FROM {t} WHERE {col} <> $1"),
        format!("DELETE FROM {t} WHERE {col} = $1"),
    ] {
        let tx = begin(app, Some(tenant), Some("admin")).await;
        let message = expect_sqlstate(
            tx.execute(&sql, &[&tenant]).await,
            &SqlState::INSUFFICIENT_PRIVILEGE,
            &format!("{t}: {sql}"),
        );
        assert!(
            !message.contains("row-level security"),
            "{t}: {sql}: {message}"
        );
        tx.rollback().await.unwrap();
    }
}

/// With no tenant in the transaction nothing under the wall is visible or writable.
async fn assert_walled_off(
    app: &mut Client,
    w: &World,
    expected_setting: Option<&str>,
    context: &str,
) {
    let mut tx = app.transaction().await.unwrap();
    let setting: Option<String> = tx
        .query_one("SELECT current_setting('app.company_id', true)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        setting.as_deref(),
        expected_setting,
        "{context}: app.company_id"
    );
    for table in TENANT_TABLES {
        let t = table.name;
        assert!(w.count(table, w.a.id).await > 0);
        let visible: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(visible, 0, "{context}: {t} visible without a tenant");
        if table.is_append_only() {
            for sql in [
                format!("UPDATE {t} SET {}", table.touch),
                format!("DELETE FROM {t}"),
            ] {
                let savepoint = tx.savepoint("append_only").await.unwrap();
                expect_sqlstate(
                    savepoint.execute(&sql, &[]).await,
                    &SqlState::INSUFFICIENT_PRIVILEGE,
                    &format!("{context}: {sql}"),
                );
                savepoint.rollback().await.unwrap();
            }
            continue;
        }
        let sql = format!("UPDATE {t} SET {}", table.touch);
        assert_eq!(
            tx.execute(&sql, &[]).await.unwrap(),
            0,
            "{context}: {t} updatable without a tenant"
        );
        assert_eq!(
            tx.execute(&format!("DELETE FROM {t}"), &[]).await.unwrap(),
            0,
            "{context}: {t} deletable"
        );
    }
    for table in TENANT_TABLES {
        let savepoint = tx.savepoint("insert_without_tenant").await.unwrap();
        let company = if table.is_root() {
            Uuid::new_v4()
        } else {
            w.a.id
        };
        expect_rls_violation(
            savepoint
                .execute(table.insert, &[&company, &w.a.spare_employee])
                .await,
            &format!("{context}: INSERT into {} without a tenant", table.name),
        );
        savepoint.rollback().await.unwrap();
    }
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn without_a_tenant_nothing_is_visible_and_inserts_fail() {
    let w = world().await;
    let mut app = w.app().await;
    let snapshots = {
        let mut all = Vec::new();
        for table in TENANT_TABLES {
            all.push((
                w.snapshot(table, w.a.id).await,
                w.snapshot(table, w.b.id).await,
            ));
        }
        all
    };

    // A brand-new connection: the setting has never existed (NULL).
    assert_walled_off(&mut app, &w, None, "fresh connection").await;

    // After a committed transaction of tenant A on the same connection the setting reads as ''.
    let tx = begin(&mut app, Some(w.a.id), Some("admin")).await;
    let seen: i64 = tx
        .query_one("SELECT count(*) FROM employees", &[])
        .await
        .unwrap()
        .get(0);
    assert!(seen > 0, "control: tenant A sees its employees");
    tx.commit().await.unwrap();
    assert_walled_off(
        &mut app,
        &w,
        Some(""),
        "after a committed tenant transaction",
    )
    .await;

    // Likewise after a rolled-back one, and after one that failed.
    let tx = begin(&mut app, Some(w.a.id), Some("superadmin")).await;
    tx.rollback().await.unwrap();
    assert_walled_off(
        &mut app,
        &w,
        Some(""),
        "after a rolled-back tenant transaction",
    )
    .await;
    let tx = begin(&mut app, Some(w.a.id), Some("admin")).await;
    assert!(tx.query_one("SELECT 1/0", &[]).await.is_err());
    tx.rollback().await.unwrap();
    assert_walled_off(&mut app, &w, Some(""), "after a failed tenant transaction").await;

    for (table, (a_before, b_before)) in TENANT_TABLES.iter().zip(snapshots) {
        assert_eq!(w.snapshot(table, w.a.id).await, a_before, "{}", table.name);
        assert_eq!(w.snapshot(table, w.b.id).await, b_before, "{}", table.name);
    }
}

/// A future table that forgets any part of the wall fails here.
#[tokio::test]
async fn catalog_walls_every_tenant_table() {
    let w = world().await;
    // Partitions are not tables of their own for the wall: the policies live on the partitioned
    // table, and what keeps the service role from reading a partition directly (which would
    // skip them) is that it has no privilege on any partition; checked below.
    let rows = w
        .owner
        .query(
            "WITH tenant_tables AS (
                 SELECT c.oid, c.relname::text AS name, c.relrowsecurity, c.relforcerowsecurity, a.attnum AS tenant_att
                 FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
                      AND a.attname = CASE WHEN c.relname = 'companies' THEN 'id' ELSE 'company_id' END
                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             )
             SELECT t.name, t.relrowsecurity, t.relforcerowsecurity,
                    (SELECT count(*) FROM pg_policy p WHERE p.polrelid = t.oid) AS policies,
                    EXISTS (SELECT 1 FROM pg_index i
                            WHERE i.indrelid = t.oid AND i.indisvalid AND i.indpred IS NULL
                              AND i.indkey[0] = t.tenant_att) AS tenant_led_index,
                    EXISTS (SELECT 1 FROM pg_constraint k
                            WHERE k.conrelid = t.oid AND k.contype = 'p' AND t.tenant_att = ANY (k.conkey)) AS pk_has_tenant,
                    EXISTS (SELECT 1 FROM pg_constraint k
                            WHERE k.conrelid = t.oid AND k.contype = 'p' AND k.conkey[1] = t.tenant_att) AS pk_leads_with_tenant
             FROM tenant_tables t
             ORDER BY t.name",
            &[],
        )
        .await
        .unwrap();
    let found: BTreeSet<String> = rows.iter().map(|r| r.get::<_, String>("name")).collect();
    let known: BTreeSet<String> = TENANT_TABLES.iter().map(|t| t.name.to_owned()).collect();
    assert_eq!(
        found, known,
        "tenant tables in the schema vs. those this file tests"
    );
    for row in &rows {
        let name: String = row.get("name");
        assert!(
            row.get::<_, bool>("relrowsecurity"),
            "{name}: row-level security is not enabled"
        );
        assert!(
            row.get::<_, bool>("relforcerowsecurity"),
            "{name}: row-level security is not forced"
        );
        assert!(row.get::<_, i64>("policies") >= 1, "{name}: no policy");
        assert!(
            row.get::<_, bool>("tenant_led_index"),
            "{name}: no (non-partial) index led by the tenant column"
        );
        assert!(
            row.get::<_, bool>("pk_has_tenant"),
            "{name}: the primary key lacks the tenant column"
        );
        // Leading, so the schema can be distributed by tenant (card_events too, whose key must
        // also hold its partition keys, retention and occurred_at).
        assert!(
            row.get::<_, bool>("pk_leads_with_tenant"),
            "{name}: the primary key does not start with the tenant column"
        );
    }

    // Partitions: row-level security is not enabled on them (policies of the partitioned table
    // apply to queries through it only), so the service role must have no privilege at all on
    // any of them, on the table or on a column, and reach their rows through the parent alone.
    let partitions = w
        .owner
        .query(
            "SELECT c.relname::text, pg_partition_root(c.oid)::text AS root,
                    has_table_privilege('callingcard_app', c.oid,
                        'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS any_privilege,
                    has_any_column_privilege('callingcard_app', c.oid,
                        'SELECT, INSERT, UPDATE, REFERENCES') AS any_column_privilege
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relispartition AND c.relkind IN ('r', 'p')
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let partition_names: BTreeSet<String> = partitions.iter().map(|r| r.get(0)).collect();
    for expected in [
        "card_events_d30",
        "card_events_d365",
        "card_events_forever",
        "card_events_d30_default",
        "card_events_d365_default",
        "card_events_forever_default",
    ] {
        assert!(
            partition_names.contains(expected),
            "{expected} missing from {partition_names:?}"
        );
    }
    assert!(
        partition_names
            .iter()
            .any(|p| p.starts_with("card_events_d30_p")),
        "no daily partition: {partition_names:?}"
    );
    for row in &partitions {
        let (name, root): (String, String) = (row.get(0), row.get(1));
        assert!(
            known.contains(&root),
            "{name}: a partition of {root}, which is not a tenant table"
        );
        assert!(
            !row.get::<_, bool>("any_privilege"),
            "{name}: the service role has a privilege on a partition"
        );
        assert!(
            !row.get::<_, bool>("any_column_privilege"),
            "{name}: the service role has a column privilege on a partition"
        );
    }

    // Every permissive policy is about the tenant; only SELECT policies may also admit the
    // superadmin. Restrictive policies can only take rows away from what the permissive ones
    // admit (e.g. `not_for_visitors`), so they cannot open the wall whatever they say.
    let policies = w
        .owner
        .query(
            "SELECT tablename::text, policyname::text, cmd, coalesce(qual, ''), coalesce(with_check, '')
             FROM pg_policies WHERE schemaname = 'public' AND permissive = 'PERMISSIVE'",
            &[],
        )
        .await
        .unwrap();
    for table in &known {
        let mut guarded_all = false;
        for p in policies.iter().filter(|p| p.get::<_, String>(0) == *table) {
            let (name, cmd, qual, check): (String, String, String, String) =
                (p.get(1), p.get(2), p.get(3), p.get(4));
            let tenant = |expr: &str| expr.contains("current_setting('app.company_id'");
            match cmd.as_str() {
                "SELECT" => assert!(
                    tenant(&qual) || qual.contains("current_setting('app.role'"),
                    "{table}.{name}: a read policy about neither tenant nor role: {qual}"
                ),
                "INSERT" => assert!(tenant(&check), "{table}.{name}: {check}"),
                "DELETE" => assert!(tenant(&qual), "{table}.{name}: {qual}"),
                _ => {
                    assert!(
                        tenant(&qual) && tenant(&check),
                        "{table}.{name} ({cmd}): {qual} / {check}"
                    );
                    guarded_all |= cmd == "ALL";
                }
            }
        }
        assert!(
            guarded_all,
            "{table}: no FOR ALL policy bound to app.company_id"
        );
    }

    // Foreign keys between tenant tables lead with the tenant on both sides: the checks that
    // enforce them bypass row-level security, so a key without the tenant could point across.
    let foreign_keys = w
        .owner
        .query(
            "WITH tenant_att AS (
                 SELECT c.oid, a.attnum FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
                      AND a.attname = CASE WHEN c.relname = 'companies' THEN 'id' ELSE 'company_id' END
                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
             )
             SELECT k.conname::text, k.conkey[1] = src.attnum AND k.confkey[1] = dst.attnum
             FROM pg_constraint k
             JOIN tenant_att src ON src.oid = k.conrelid
             JOIN tenant_att dst ON dst.oid = k.confrelid
             WHERE k.contype = 'f'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        foreign_keys.len() >= 4,
        "expected the foreign keys of the schema, got {}",
        foreign_keys.len()
    );
    for fk in &foreign_keys {
        assert!(
            fk.get::<_, bool>(1),
            "{}: does not lead with the tenant on both sides",
            fk.get::<_, String>(0)
        );
    }

    // Views run with their owner's rights (a superuser's: no row-level security at all) unless
    // they are security_invoker; materialized views and foreign tables cannot be walled.
    let unwalled = w
        .owner
        .query(
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm', 'f')
               AND EXISTS (SELECT 1 FROM pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attname = 'company_id' AND NOT a.attisdropped)
               AND NOT (c.relkind = 'v' AND coalesce(c.reloptions, '{}') && ARRAY['security_invoker=true', 'security_invoker=on'])",
            &[],
        )
        .await
        .unwrap();
    let unwalled: Vec<String> = unwalled.iter().map(|r| r.get(0)).collect();
    assert!(
        unwalled.is_empty(),
        "tenant data outside the wall: {unwalled:?}"
    );
}

#[tokio::test]
async fn service_role_has_no_way_around_the_wall() {
    let w = world().await;
    let role = w
        .owner
        .query_one(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolcanlogin
             FROM pg_roles WHERE rolname = 'callingcard_app'",
            &[],
        )
        .await
        .unwrap();
    assert!(
        !role.get::<_, bool>("rolsuper"),
        "the service role is a superuser"
    );
    assert!(
        !role.get::<_, bool>("rolbypassrls"),
        "the service role bypasses row-level security"
    );
    assert!(!role.get::<_, bool>("rolcreaterole"));
    assert!(!role.get::<_, bool>("rolcreatedb"));
    assert!(!role.get::<_, bool>("rolreplication"));
    assert!(role.get::<_, bool>("rolcanlogin"));

    // Owns nothing (an owner is exempt from row-level security unless it is forced, and may
    // switch it off), belongs to no role, and cannot create anything.
    let facts = w
        .owner
        .query_one(
            "SELECT
               (SELECT count(*) FROM pg_shdepend d JOIN pg_database db ON db.oid = d.dbid
                 WHERE db.datname = current_database() AND d.refobjid = 'callingcard_app'::regrole
                   AND d.deptype = 'o') AS owned,
               (SELECT count(*) FROM pg_class WHERE relowner = 'callingcard_app'::regrole) AS relations,
               (SELECT count(*) FROM pg_proc WHERE proowner = 'callingcard_app'::regrole) AS functions,
               (SELECT count(*) FROM pg_namespace WHERE nspowner = 'callingcard_app'::regrole) AS schemas,
               (SELECT count(*) FROM pg_type WHERE typowner = 'callingcard_app'::regrole) AS types,
               (SELECT datdba = 'callingcard_app'::regrole FROM pg_database
                 WHERE datname = current_database()) AS owns_database,
               (SELECT count(*) FROM pg_auth_members WHERE member = 'callingcard_app'::regrole) AS memberships,
               has_schema_privilege('callingcard_app', 'public', 'CREATE') AS create_in_public,
               has_database_privilege('callingcard_app', current_database(), 'CREATE') AS create_schemas",
            &[],
        )
        .await
        .unwrap();
    for column in [
        "owned",
        "relations",
        "functions",
        "schemas",
        "types",
        "memberships",
    ] {
        assert_eq!(facts.get::<_, i64>(column), 0, "callingcard_app: {column}");
    }
    for column in ["owns_database", "create_in_public", "create_schemas"] {
        assert!(!facts.get::<_, bool>(column), "callingcard_app: {column}");
    }

    // Table privileges: the tenant tables through the wall only (TRUNCATE would skip it), plus
    // reading the plans; nothing at all on anything else, e.g. the migration history.
    let grants = w
        .owner
        .query(
            "SELECT c.relname::text, c.relrowsecurity,
                    has_table_privilege('callingcard_app', c.oid, 'SELECT') AS can_select,
                    has_table_privilege('callingcard_app', c.oid, 'INSERT, UPDATE, DELETE') AS can_write,
                    has_table_privilege('callingcard_app', c.oid, 'TRUNCATE, REFERENCES, TRIGGER') AS can_other
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            &[],
        )
        .await
        .unwrap();
    let names: BTreeSet<String> = grants.iter().map(|r| r.get(0)).collect();
    assert!(
        names.contains("refinery_schema_history") && names.contains("plans"),
        "{names:?}"
    );
    for row in &grants {
        let (name, walled): (String, bool) = (row.get(0), row.get(1));
        assert!(
            !row.get::<_, bool>("can_other"),
            "{name}: TRUNCATE, REFERENCES or TRIGGER granted"
        );
        if !walled {
            assert!(
                !row.get::<_, bool>("can_write"),
                "{name}: writable without row-level security"
            );
            assert_eq!(
                row.get::<_, bool>("can_select"),
                name == "plans",
                "{name}: SELECT grant"
            );
        }
    }

    // The audit trail: written and read, never changed, by the service role.
    let audit_grants: Vec<bool> = w
        .owner
        .query_one(
            "SELECT has_table_privilege('callingcard_app', 'audit_events', 'SELECT'),
                    has_table_privilege('callingcard_app', 'audit_events', 'INSERT'),
                    has_table_privilege('callingcard_app', 'audit_events', 'UPDATE'),
                    has_table_privilege('callingcard_app', 'audit_events', 'DELETE'),
                    has_table_privilege('callingcard_app', 'audit_events', 'TRUNCATE'),
                    has_table_privilege('callingcard_app', 'audit_events', 'REFERENCES'),
                    has_table_privilege('callingcard_app', 'audit_events', 'TRIGGER'),
                    has_any_column_privilege('callingcard_app', 'audit_events', 'UPDATE')",
            &[],
        )
        .await
        .map(|r| (0..8).map(|i| r.get(i)).collect())
        .unwrap();
    assert_eq!(
        audit_grants,
        [true, true, false, false, false, false, false, false],
        "callingcard_app on audit_events: exactly SELECT and INSERT"
    );

    // The same, live.
    let app = w.app().await;
    let plans: i64 = app
        .query_one("SELECT count(*) FROM plans", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(plans, 3);
    let denied = |what: &str| format!("the service role could {what}");
    for (sql, what) in [
        (
            "SELECT * FROM refinery_schema_history",
            "read the migration history",
        ),
        ("TRUNCATE employees", "truncate a tenant table"),
        (
            "INSERT INTO plans (plan, title, sort_order) VALUES ('x', 'X', 9)",
            "add a plan",
        ),
        (
            "CREATE TABLE public.unwalled (company_id uuid)",
            "create a table",
        ),
        (
            "ALTER TABLE employees DISABLE ROW LEVEL SECURITY",
            "switch the wall off",
        ),
        ("SET ROLE callingcard_definer", "become the definer role"),
    ] {
        let message = expect_sqlstate(
            app.batch_execute(sql).await,
            &SqlState::INSUFFICIENT_PRIVILEGE,
            &denied(what),
        );
        assert!(!message.contains("row-level security"), "{what}: {message}");
    }

    // Planner statistics of walled tables (sample values!) are hidden from the service role.
    w.owner.batch_execute("ANALYZE").await.unwrap();
    let stats_sql = "SELECT count(*) FROM pg_stats WHERE schemaname = 'public'
                     AND (tablename IN ('companies', 'employees', 'users', 'cards', 'subscriptions', 'media', 'employee_counts',
                                        'card_events', 'card_rollup_employee_hourly',
                                        'card_rollup_company_hourly', 'card_rollup_action_hourly',
                                        'card_rollup_employee_daily', 'card_rollup_company_daily',
                                        'card_visitor_days', 'card_rollup_visitors_hourly', 'audit_events',
                                        'card_running_employee_daily', 'card_running_hourly', 'leads')
                          OR tablename LIKE 'card\\_events\\_%')";
    let superuser_sees: i64 = w.owner.query_one(stats_sql, &[]).await.unwrap().get(0);
    assert!(superuser_sees > 0, "control: ANALYZE produced statistics");
    let app_sees: i64 = app.query_one(stats_sql, &[]).await.unwrap().get(0);
    assert_eq!(
        app_sees, 0,
        "pg_stats shows walled tables' values to the service role"
    );

    // The SECURITY DEFINER functions: exactly the known ones, each answering exactly what it was
    // written to answer, with a pinned search_path, callable by the service role and not by
    // PUBLIC. The lookups are owned by the definer role (which cannot log in); analytics
    // maintenance by the schema owner (see below).
    let definers = w
        .owner
        .query(
            "SELECT p.proname::text, pg_get_function_identity_arguments(p.oid),
                    pg_get_function_result(p.oid), r.rolname::text, r.rolcanlogin, r.rolsuper,
                    coalesce(p.proconfig, '{}') AS config,
                    EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x
                            WHERE x.grantee = 0 AND x.privilege_type = 'EXECUTE') AS public_execute,
                    has_function_privilege('callingcard_app', p.oid, 'EXECUTE') AS app_execute
             FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             JOIN pg_roles r ON r.oid = p.proowner
             WHERE n.nspname = 'public' AND p.prosecdef
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let signatures: Vec<(String, String, String)> = definers
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected = [
        (
            "account_token_lookup",
            "p_token_hash bytea",
            "TABLE(company_id uuid, purpose text, expired boolean, used boolean)",
        ),
        ("account_tokens_forget", "", "bigint"),
        (
            "analytics_maintain",
            "",
            "TABLE(dropped_partitions integer, purged_events bigint)",
        ),
        ("audit_events_fill_actor", "", "trigger"),
        (
            "audit_login_attempt",
            "p_email text, p_action text, p_outcome text, p_request_id text, p_client_address inet, p_user_agent text",
            "boolean",
        ),
        ("audit_purge", "p_retention_days integer, p_batch integer", "bigint"),
        ("card_company", "p_company_slug text", "uuid"),
        ("email_has_login", "p_email text", "boolean"),
        (
            "employee_search_keys",
            "p_pattern text, p_limit integer",
            "TABLE(id uuid, created_at timestamp with time zone, name_key text)",
        ),
        (
            "invitation_by_token",
            "p_token_hash bytea",
            "TABLE(invitation_id uuid, company_id uuid, company_name text, email text, role text, employee_id uuid, employee_name text, state text)",
        ),
        ("lead_recipient", "p_employee_id uuid", "text"),
        ("leads_purge", "p_batch integer", "bigint"),
        (
            "login_failed",
            "p_email text, p_address bytea, p_limit integer, p_trust_seconds integer",
            "void",
        ),
        (
            "login_lookup",
            "p_email text",
            "TABLE(user_id uuid, company_id uuid, role text, is_active boolean, password_hash text)",
        ),
        ("login_succeeded", "p_email text, p_address bytea", "void"),
        ("login_throttle_forget", "p_trust_seconds integer", "bigint"),
        (
            "login_throttle_wait",
            "p_email text, p_address bytea, p_limit integer, p_trust_seconds integer",
            "integer",
        ),
        (
            "outbox_backlog",
            "p_limit integer",
            "TABLE(pending bigint, failed bigint)",
        ),
        (
            "outbox_claim",
            "p_limit integer, p_lease_seconds double precision",
            "TABLE(company_id uuid, id uuid, kind text, payload jsonb, attempts integer, claim uuid)",
        ),
        (
            "outbox_failed",
            "p_company_id uuid, p_id uuid, p_claim uuid, p_error text, p_permanent boolean, \
             p_max_attempts integer, p_retry_seconds double precision",
            "boolean",
        ),
        ("outbox_forget", "p_keep_seconds double precision", "bigint"),
        ("outbox_next_due", "", "double precision"),
        (
            "outbox_sent",
            "p_company_id uuid, p_id uuid, p_claim uuid",
            "boolean",
        ),
        (
            "session_check",
            "p_company uuid, p_session uuid, p_user uuid, p_role text",
            "boolean",
        ),
        (
            "session_refresh",
            "p_token_hash bytea, p_new_hash bytea, p_idle_seconds double precision",
            "TABLE(outcome text, session_id uuid, user_id uuid, company_id uuid, role text, expires_at timestamp with time zone)",
        ),
        ("superadmin_employee_company", "p_employee_id uuid", "uuid"),
        ("superadmin_lead_company", "p_lead_id uuid", "uuid"),
        (
            "webhook_attempted",
            "p_company_id uuid, p_id uuid, p_claim uuid, p_delivered boolean, \
             p_response_code integer, p_latency_ms integer, p_error text, \
             p_retry_seconds double precision",
            "TABLE(state text, disabled boolean)",
        ),
        (
            "webhook_claim",
            "p_limit integer, p_per_webhook integer, p_lease_seconds double precision",
            "TABLE(company_id uuid, id uuid, webhook_id uuid, event_id uuid, event text, \
             payload jsonb, created_at timestamp with time zone, attempts integer, \
             first_attempt_at timestamp with time zone, claim uuid, url text, secret text)",
        ),
        ("webhook_enqueue_lead", "p_lead_id uuid", "integer"),
        ("webhook_forget", "p_keep_seconds double precision", "bigint"),
        ("webhook_next_due", "", "double precision"),
    ]
    .map(|(name, args, result)| (name.to_owned(), args.to_owned(), result.to_owned()));
    assert_eq!(signatures, expected, "SECURITY DEFINER functions");
    let schema_owner: String = w
        .owner
        .query_one(
            "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'public.card_events'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for row in &definers {
        let name: String = row.get(0);
        let config: Vec<String> = row.get("config");
        if name == "analytics_maintain" {
            // Not callingcard_definer: creating and dropping partitions takes the ownership of
            // the partitioned tables (no grant allows it), and giving the analytics tables to the
            // definer role would hand DDL over them to every lookup it runs. So the function runs
            // as the owner of the tables, the schema owner that applies the migrations, and takes
            // no parameters: it can only do what retention says.
            assert_eq!(row.get::<_, &str>(3), schema_owner, "{name}: owner");
            assert_ne!(
                row.get::<_, &str>(3),
                "callingcard_definer",
                "{name}: owner"
            );
            assert_ne!(row.get::<_, &str>(3), "callingcard_app", "{name}: owner");
            // public holds the tables it works on; the service role cannot create anything
            // there (checked above), and the function names every relation it touches with
            // its schema, so the caller's temporary tables (pg_temp, searched last) are inert.
            assert_eq!(
                config,
                ["search_path=public, pg_temp"],
                "{name}: search_path not pinned"
            );
        } else {
            assert_eq!(
                row.get::<_, &str>(3),
                "callingcard_definer",
                "{name}: owner"
            );
            assert!(!row.get::<_, bool>(4), "{name}: owned by a login role");
            assert!(!row.get::<_, bool>(5), "{name}: owned by a superuser");
            assert_eq!(
                config,
                ["search_path=pg_catalog, pg_temp"],
                "{name}: search_path not pinned"
            );
        }
        assert!(
            !row.get::<_, bool>("public_execute"),
            "{name}: executable by PUBLIC"
        );
        assert!(
            row.get::<_, bool>("app_execute"),
            "{name}: not executable by the service role"
        );
    }

    // Partition management itself is the owner's alone: it would let the caller create tables
    // (and move rows) at will. The service role has only analytics_maintain().
    let managers = w
        .owner
        .query(
            "SELECT p.proname::text, p.prosecdef,
                    EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x
                            WHERE x.grantee = 0 AND x.privilege_type = 'EXECUTE') AS public_execute,
                    has_function_privilege('callingcard_app', p.oid, 'EXECUTE') AS app_execute
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'public'
               AND p.proname IN ('analytics_ensure_partitions', 'analytics_create_partition')
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let names: Vec<String> = managers.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        names,
        ["analytics_create_partition", "analytics_ensure_partitions"]
    );
    for row in &managers {
        let name: String = row.get(0);
        assert!(!row.get::<_, bool>(1), "{name}: SECURITY DEFINER");
        assert!(
            !row.get::<_, bool>("public_execute"),
            "{name}: executable by PUBLIC"
        );
        assert!(
            !row.get::<_, bool>("app_execute"),
            "{name}: executable by the service role"
        );
    }
    for sql in [
        "SELECT analytics_ensure_partitions(now(), now() + interval '1 day')",
        "SELECT analytics_create_partition('card_events_d30', 'card_events_d30_p20000101',
                                           '2000-01-01', '2000-01-02')",
    ] {
        expect_sqlstate(
            app.query_one(sql, &[]).await,
            &SqlState::INSUFFICIENT_PRIVILEGE,
            sql,
        );
    }
}

#[tokio::test]
async fn login_lookup_needs_no_tenant_and_answers_only_what_login_needs() {
    let w = world().await;
    let app = w.app().await;
    // No tenant at all: the users themselves are invisible...
    let users: i64 = app
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0);
    // ...but the lookup finds a login by email, in any case.
    let rows = app
        .query(
            "SELECT * FROM login_lookup($1)",
            &[&w.a.admin_email.to_uppercase()],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let columns: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        columns,
        [
            "user_id",
            "company_id",
            "role",
            "is_active",
            "password_hash"
        ],
        "login_lookup must answer exactly what login needs"
    );
    assert_eq!(row.get::<_, Uuid>("user_id"), w.a.admin_id);
    assert_eq!(row.get::<_, Uuid>("company_id"), w.a.id);
    assert_eq!(row.get::<_, &str>("role"), "admin");
    assert!(row.get::<_, bool>("is_active"));
    assert_eq!(row.get::<_, &str>("password_hash"), w.a.admin_hash);

    let rows = app
        .query(
            "SELECT user_id, company_id FROM login_lookup($1)",
            &[&w.b.admin_email],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, Uuid>(1), w.b.id);
    for unknown in ["nobody@example.com", "", "%", "admin@%"] {
        let rows = app
            .query("SELECT * FROM login_lookup($1)", &[&unknown])
            .await
            .unwrap();
        assert!(rows.is_empty(), "{unknown:?} matched {} logins", rows.len());
    }
}

#[tokio::test]
async fn invitation_lookups_need_no_tenant_and_answer_only_what_was_asked() {
    let w = world().await;
    let app = w.app().await;
    let invitations: i64 = app
        .query_one("SELECT count(*) FROM invitations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(invitations, 0, "no tenant: no invitation visible");
    // A token finds its own invitation, with its company and state, and nothing else.
    let hash = |token: &str| -> Vec<u8> {
        use sha2::{Digest, Sha256};
        Sha256::digest(token.as_bytes()).to_vec()
    };
    let rows = app
        .query(
            "SELECT * FROM invitation_by_token($1)",
            &[&hash("invitation of alpha")],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let columns: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        columns,
        [
            "invitation_id",
            "company_id",
            "company_name",
            "email",
            "role",
            "employee_id",
            "employee_name",
            "state"
        ]
    );
    assert_eq!(rows[0].get::<_, Uuid>("company_id"), w.a.id);
    assert_eq!(rows[0].get::<_, &str>("email"), "invited@alpha.example.com");
    assert_eq!(rows[0].get::<_, &str>("state"), "pending");
    for unknown in [hash("invitation of nobody"), Vec::new(), b"%".to_vec()] {
        let rows = app
            .query("SELECT * FROM invitation_by_token($1)", &[&unknown])
            .await
            .unwrap();
        assert!(rows.is_empty());
    }
    // Whether an email has a login, in any case and any company; no pattern matches.
    for (email, taken) in [
        (w.a.admin_email.to_uppercase(), true),
        (w.b.admin_email.clone(), true),
        ("nobody@example.com".to_owned(), false),
        ("admin@%".to_owned(), false),
        ("%".to_owned(), false),
    ] {
        let answer: bool = app
            .query_one("SELECT email_has_login($1)", &[&email])
            .await
            .unwrap()
            .get(0);
        assert_eq!(answer, taken, "{email}");
    }
}

#[tokio::test]
async fn login_throttle_is_reached_through_its_functions_only() {
    let w = world().await;
    let app = w.app().await;
    // The tables: nothing, not even with a tenant set.
    for table in ["login_failures", "login_trusted_addresses"] {
        for sql in [
            format!("SELECT count(*) FROM {table}"),
            format!("DELETE FROM {table}"),
        ] {
            expect_sqlstate(
                app.batch_execute(&sql).await,
                &SqlState::INSUFFICIENT_PRIVILEGE,
                &sql,
            );
        }
    }
    // The functions need no tenant, and answer a number of seconds, nothing about anyone.
    let (address, stranger) = (vec![1u8; 16], vec![2u8; 16]);
    let wait = async |email: &str, address: &Vec<u8>| -> i32 {
        app.query_one(
            "SELECT login_throttle_wait($1, $2, 2, 3600)",
            &[&email, address],
        )
        .await
        .unwrap()
        .get(0)
    };
    let email = w.a.admin_email.as_str();
    assert_eq!(wait(email, &stranger).await, 0);
    app.execute("SELECT login_succeeded($1, $2)", &[&email, &address])
        .await
        .unwrap();
    for _ in 0..2 {
        app.execute("SELECT login_failed($1, $2, 2, 3600)", &[&email, &stranger])
            .await
            .unwrap();
    }
    // The email in any case is the same account.
    let refused = wait(&email.to_uppercase(), &stranger).await;
    assert!((3590..=3600).contains(&refused), "{refused}");
    assert_eq!(wait(email, &address).await, 0, "the trusted address");
    assert_eq!(
        wait(&w.b.admin_email, &stranger).await,
        0,
        "another account"
    );
    // Stored: digests and keyed hashes, no email.
    let stored: i64 = w
        .owner
        .query_one(
            "SELECT count(*) FROM login_failures f
             WHERE f.email_digest = sha256(convert_to(lower($1), 'UTF8'))
               AND NOT EXISTS (SELECT 1 FROM login_failures g
                               WHERE position(convert_to($1, 'UTF8') IN g.email_digest) > 0)",
            &[&email],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
    let forgot: i64 = app
        .query_one("SELECT login_throttle_forget(3600)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(forgot, 0, "nothing is old yet");
}

#[tokio::test]
async fn superadmin_employee_company_answers_only_superadmin_transactions() {
    let w = world().await;
    let mut app = w.app().await;
    let (a_employee, b_employee) = (w.a.employees[0], w.b.employees[0]);
    let lookup = "SELECT superadmin_employee_company($1)";

    for (company, role) in [
        (None, None),
        (Some(w.a.id), Some("admin")),
        (Some(w.a.id), Some("employee")),
        (Some(w.b.id), Some("admin")),
        (Some(w.a.id), Some("SUPERADMIN")),
        (Some(w.a.id), Some("")),
    ] {
        let tx = begin(&mut app, company, role).await;
        for employee in [a_employee, b_employee] {
            let answer: Option<Uuid> = tx.query_one(lookup, &[&employee]).await.unwrap().get(0);
            assert_eq!(
                answer, None,
                "answered app.role {role:?} in company {company:?} about employee {employee}"
            );
        }
        tx.commit().await.unwrap();
    }

    for company in [Some(w.a.id), None] {
        let tx = begin(&mut app, company, Some("superadmin")).await;
        let of_b: Option<Uuid> = tx.query_one(lookup, &[&b_employee]).await.unwrap().get(0);
        let of_a: Option<Uuid> = tx.query_one(lookup, &[&a_employee]).await.unwrap().get(0);
        let of_nobody: Option<Uuid> = tx
            .query_one(lookup, &[&Uuid::new_v4()])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            (of_a, of_b, of_nobody),
            (Some(w.a.id), Some(w.b.id), None),
            "superadmin in {company:?}"
        );
        tx.commit().await.unwrap();
    }

    // The superadmin mark was transaction-local: gone in the next transaction.
    let tx = begin(&mut app, None, None).await;
    let role: Option<String> = tx
        .query_one("SELECT current_setting('app.role', true)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(role.as_deref(), Some(""));
    let answer: Option<Uuid> = tx.query_one(lookup, &[&b_employee]).await.unwrap().get(0);
    assert_eq!(answer, None);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn superadmin_reads_every_company_but_writes_only_its_own() {
    let w = world().await;
    let (a, b) = (w.a.id, w.b.id);
    let companies = &TENANT_TABLES[0];
    assert_eq!(companies.name, "companies");
    let b_before = w.snapshot(companies, b).await;
    let mut app = w.app().await;

    let tx = begin(&mut app, Some(a), Some("superadmin")).await;
    let all: BTreeSet<Uuid> = tx
        .query("SELECT id FROM companies", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        all,
        BTreeSet::from([a, b]),
        "a superadmin reads every company"
    );
    // Only companies: the rest of B's data stays behind the wall.
    for table in &TENANT_TABLES[1..] {
        let t = table.name;
        let visible: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            visible,
            w.count(table, a).await,
            "{t}: a superadmin in A sees A's rows only"
        );
    }
    let updated = tx
        .execute(
            "UPDATE companies SET name = 'Taken over' WHERE id = $1",
            &[&b],
        )
        .await
        .unwrap();
    assert_eq!(updated, 0, "a superadmin updated another company");
    let deleted = tx
        .execute("DELETE FROM companies WHERE id = $1", &[&b])
        .await
        .unwrap();
    assert_eq!(deleted, 0, "a superadmin deleted another company");
    let locked = tx
        .query("SELECT id FROM companies WHERE id = $1 FOR UPDATE", &[&b])
        .await
        .unwrap();
    assert!(
        locked.is_empty(),
        "a superadmin locked another company for update"
    );
    let renamed = tx
        .execute("UPDATE companies SET name = name || ' (renamed)'", &[])
        .await
        .unwrap();
    assert_eq!(
        renamed, 1,
        "an UPDATE without WHERE must reach the current tenant's company only"
    );
    tx.commit().await.unwrap();
    assert_eq!(
        w.snapshot(companies, b).await,
        b_before,
        "B's company changed"
    );
    let a_name: String = w
        .owner
        .query_one("SELECT name FROM companies WHERE id = $1", &[&a])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        a_name, "Company alpha (renamed)",
        "control: the superadmin's own company was renamed"
    );

    // A superadmin mark without a tenant reads everything and writes nothing.
    let tx = begin(&mut app, None, Some("superadmin")).await;
    let count: i64 = tx
        .query_one("SELECT count(*) FROM companies", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
    assert_eq!(
        tx.execute("UPDATE companies SET name = name", &[])
            .await
            .unwrap(),
        0
    );
    assert_eq!(tx.execute("DELETE FROM companies", &[]).await.unwrap(), 0);
    expect_rls_violation(
        tx.execute(companies.insert, &[&Uuid::new_v4(), &a]).await,
        "a superadmin inserted a company without entering it",
    );
    tx.rollback().await.unwrap();
    assert_eq!(w.snapshot(companies, b).await, b_before);

    // The same tenant without the mark sees its own company only.
    let tx = begin(&mut app, Some(a), Some("admin")).await;
    let ids: Vec<Uuid> = tx
        .query("SELECT id FROM companies", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [a]);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn card_company_needs_no_tenant_and_answers_only_the_company() {
    let w = world().await;
    let mut app = w.app().await;
    let lookup = "SELECT card_company($1)";

    // No tenant at all: the companies themselves are invisible...
    let companies: i64 = app
        .query_one("SELECT count(*) FROM companies", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(companies, 0);
    // ...but the lookup names the company of a slug, and nothing else.
    let row = app.query_one(lookup, &[&"alpha"]).await.unwrap();
    assert_eq!(row.len(), 1, "card_company must answer a single value");
    assert_eq!(row.get::<_, Option<Uuid>>(0), Some(w.a.id));
    let of_b: Option<Uuid> = app.query_one(lookup, &[&"beta"]).await.unwrap().get(0);
    assert_eq!(of_b, Some(w.b.id));
    for unknown in ["nobody", "", "%", "alph%", "ALPHA", "alpha ", "employee-0"] {
        let answer: Option<Uuid> = app.query_one(lookup, &[&unknown]).await.unwrap().get(0);
        assert_eq!(answer, None, "{unknown:?} named a company");
    }

    // The same answer whatever the transaction's tenant and role: it is the step before a
    // visitor's transaction has a tenant at all.
    for (company, role) in [
        (Some(w.b.id), Some("public")),
        (Some(w.b.id), Some("admin")),
        (None, Some("public")),
    ] {
        let tx = begin(&mut app, company, role).await;
        let answer: Option<Uuid> = tx.query_one(lookup, &[&"alpha"]).await.unwrap().get(0);
        assert_eq!(answer, Some(w.a.id), "in company {company:?} as {role:?}");
        tx.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn a_visitor_reads_its_card_company_but_no_logins_or_billing() {
    let w = world().await;
    let (a, b) = (w.a.id, w.b.id);
    let mut app = w.app().await;
    // Logins, billing and analytics (restrictive `not_for_visitors` policies): nothing a card
    // shows.
    let hidden_from_visitors: Vec<&str> = [
        "users",
        "subscriptions",
        "audit_events",
        "invitations",
        "webhooks",
        "webhook_deliveries",
        "webhook_attempts",
    ]
    .into_iter()
    .chain(ANALYTICS_TABLES)
    .collect();
    // Leads a visitor may leave but never read (see the test after this one).
    let unread_by_visitors = ["leads"];

    let tx = begin(&mut app, Some(a), Some("public")).await;
    for table in TENANT_TABLES {
        let (t, col) = (table.name, table.tenant_col);
        let a_count = w.count(table, a).await;
        assert!(a_count > 0, "{t}: A needs rows to test with");
        let visible: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await
            .unwrap()
            .get(0);
        if hidden_from_visitors.contains(&t) || unread_by_visitors.contains(&t) {
            assert_eq!(visible, 0, "{t}: a visitor sees its company's rows");
            // Policies run before user predicates here too: a predicate that would fail on
            // any row is never evaluated.
            let probing: i64 = tx
                .query_one(
                    &format!("SELECT count(*) FROM {t} WHERE length({col}::text) / 0 = 1"),
                    &[],
                )
                .await
                .unwrap_or_else(|e| panic!("{t}: a visitor's predicate ran on hidden rows: {e}"))
                .get(0);
            assert_eq!(probing, 0, "{t}");
        } else {
            assert_eq!(visible, a_count, "{t}: a visitor sees the card's company");
        }
        let tenants: BTreeSet<Uuid> = tx
            .query(&format!("SELECT {col} FROM {t}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(
            tenants.is_subset(&BTreeSet::from([a])),
            "{t}: a visitor sees another company: {tenants:?}"
        );
        let of_b: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {t} WHERE {col} = $1"), &[&b])
            .await
            .unwrap()
            .get(0);
        assert_eq!(of_b, 0, "{t}: a visitor sees B's rows by id");
    }
    // The card of an employee, with its photo, the way a public card is read.
    let photos: Vec<String> = tx
        .query(
            "SELECT m.hash FROM employees e
             JOIN cards c ON c.company_id = e.company_id AND c.employee_id = e.id
             JOIN media m ON m.company_id = e.company_id AND m.hash = e.photo_hash",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(photos, [w.a.media[0].clone()]);
    tx.rollback().await.unwrap();

    // A visitor cannot write a login, a subscription or an event either (the restrictive policy
    // has no WITH CHECK, so its USING applies to new rows).
    for &t in &hidden_from_visitors {
        let table = TENANT_TABLES.iter().find(|x| x.name == t).unwrap();
        let tx = begin(&mut app, Some(a), Some("public")).await;
        expect_rls_violation(
            tx.execute(table.insert, &[&a, &w.a.spare_employee]).await,
            &format!("{t}: INSERT by a visitor"),
        );
        tx.rollback().await.unwrap();
    }

    // Controls: the restriction is the visitor's alone. The same company in any other role (the
    // collector, which stores the events, included), or with no role set, sees its logins,
    // subscriptions and analytics.
    for role in [
        Some("admin"),
        Some("employee"),
        Some("superadmin"),
        Some("collector"),
        None,
    ] {
        let tx = begin(&mut app, Some(a), role).await;
        for &t in &hidden_from_visitors {
            let table = TENANT_TABLES.iter().find(|x| x.name == t).unwrap();
            let visible: i64 = tx
                .query_one(&format!("SELECT count(*) FROM {t}"), &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(visible, w.count(table, a).await, "{t} as {role:?}");
        }
        tx.rollback().await.unwrap();
    }
    // And the mark is transaction-local: the next transaction of the connection is not a
    // visitor's.
    let tx = begin(&mut app, Some(a), None).await;
    let role: Option<String> = tx
        .query_one("SELECT current_setting('app.role', true)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(role.as_deref(), Some(""));
    tx.rollback().await.unwrap();
}

/// A visitor of a card (`app.role = 'public'`) leaves a lead in the card's company, and that
/// is all: it reads, changes and erases none, not even the one it just left.
#[tokio::test]
async fn a_visitor_leaves_a_lead_but_never_reads_changes_or_erases_one() {
    let w = world().await;
    let (a, b) = (w.a.id, w.b.id);
    let mut app = w.app().await;
    let leads = TENANT_TABLES.iter().find(|t| t.name == "leads").unwrap();
    let (a_before, b_before) = (w.snapshot(leads, a).await, w.snapshot(leads, b).await);

    let tx = begin(&mut app, Some(a), Some("public")).await;
    assert_eq!(
        tx.execute(leads.insert, &[&a, &w.a.employees[0]])
            .await
            .unwrap(),
        1,
        "a visitor's lead"
    );
    let seen: i64 = tx
        .query_one("SELECT count(*) FROM leads", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, 0, "a visitor reads leads");
    let touched = tx
        .execute("UPDATE leads SET name = 'Changed'", &[])
        .await
        .unwrap();
    assert_eq!(touched, 0, "a visitor changes leads");
    let erased = tx.execute("DELETE FROM leads", &[]).await.unwrap();
    assert_eq!(erased, 0, "a visitor erases leads");
    // Where its card's lead email goes: the linked login's address (the card has none), which
    // the visitor cannot read itself; nothing for another company's employee.
    let to: Option<String> = tx
        .query_one("SELECT lead_recipient($1)", &[&w.a.employees[0]])
        .await
        .unwrap()
        .get(0);
    assert_eq!(to.as_deref(), Some("employee-0@alpha.example.com"));
    let elsewhere: Option<String> = tx
        .query_one("SELECT lead_recipient($1)", &[&w.b.employees[0]])
        .await
        .unwrap()
        .get(0);
    assert_eq!(elsewhere, None, "lead_recipient of another company");
    tx.commit().await.unwrap();
    assert_eq!(
        w.count(leads, a).await,
        2,
        "the visitor's lead was stored beside the seeded one"
    );
    assert_ne!(w.snapshot(leads, a).await, a_before);

    // Reading the new row back (RETURNING) is reading: refused.
    let tx = begin(&mut app, Some(a), Some("public")).await;
    expect_rls_violation(
        tx.query(
            "INSERT INTO leads (company_id, id, employee_name, name, phone)
             VALUES ($1, gen_random_uuid(), 'x', 'y', '555 0100') RETURNING id",
            &[&a],
        )
        .await,
        "a visitor's INSERT … RETURNING",
    );
    tx.rollback().await.unwrap();
    // A lead for another company: refused as any write across the wall.
    let tx = begin(&mut app, Some(a), Some("public")).await;
    expect_rls_violation(
        tx.execute(leads.insert, &[&b, &w.b.employees[0]]).await,
        "a visitor's lead for B",
    );
    tx.rollback().await.unwrap();
    assert_eq!(w.snapshot(leads, b).await, b_before, "B's leads changed");
}

#[tokio::test]
async fn media_references_stay_inside_the_tenant() {
    let w = world().await;
    let (a, b) = (w.a.id, w.b.id);
    let b_only = w.b.media[0].clone();
    assert!(!w.a.media.contains(&b_only));
    let employee = w.a.employees[1];
    let mut app = w.app().await;

    // A's employee pointed at an image only B has. The UPDATE itself passes the wall (the row
    // stays A's); the foreign key then looks for (A, hash) in media — the key leads with the
    // tenant, and the check bypasses row-level security — finds nothing and refuses: 23503,
    // not a row-level security error.
    let set_photo = "UPDATE employees SET photo_hash = $2 WHERE id = $1";
    let set_logo = "UPDATE companies SET logo_hash = $1";
    let mut messages = Vec::new();
    for hash in [b_only.clone(), format!("{:032x}", Uuid::new_v4().as_u128())] {
        let tx = begin(&mut app, Some(a), Some("admin")).await;
        let message = expect_sqlstate(
            tx.execute(set_photo, &[&employee, &hash]).await,
            &SqlState::FOREIGN_KEY_VIOLATION,
            "an A employee's photo from B's media",
        );
        assert!(message.contains("employees_photo_fkey"), "{message}");
        tx.rollback().await.unwrap();
        let tx = begin(&mut app, Some(a), Some("admin")).await;
        let message_logo = expect_sqlstate(
            tx.execute(set_logo, &[&hash]).await,
            &SqlState::FOREIGN_KEY_VIOLATION,
            "A's logo from B's media",
        );
        assert!(
            message_logo.contains("companies_logo_fkey"),
            "{message_logo}"
        );
        tx.rollback().await.unwrap();
        messages.push((message, message_logo));
    }
    // No oracle either: an image B has is refused exactly like one nobody has.
    assert_eq!(messages[0], messages[1]);

    // Nor can A write the image into B's media to point at it.
    let tx = begin(&mut app, Some(a), Some("admin")).await;
    expect_rls_violation(
        tx.execute(
            "INSERT INTO media (company_id, hash, content_type, bytes)
             VALUES ($1, $2, 'image/png', decode('89', 'hex'))",
            &[&b, &w.a.media[0]],
        )
        .await,
        "A inserting media for B",
    );
    tx.rollback().await.unwrap();

    // Controls: A's own images work; and A may hold the same image B holds (media is keyed by
    // tenant too, so the upload neither fails nor tells A that B has it) and then use it.
    let tx = begin(&mut app, Some(a), Some("admin")).await;
    assert_eq!(
        tx.execute(set_photo, &[&employee, &w.a.media[1]])
            .await
            .unwrap(),
        1
    );
    assert_eq!(tx.execute(set_logo, &[&w.a.media[0]]).await.unwrap(), 1);
    assert_eq!(
        tx.execute(
            "INSERT INTO media (company_id, hash, content_type, bytes)
             VALUES ($1, $2, 'image/png', decode('89', 'hex'))",
            &[&a, &b_only],
        )
        .await
        .unwrap(),
        1,
        "A uploading an image B also has"
    );
    assert_eq!(
        tx.execute(set_photo, &[&employee, &b_only]).await.unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let stored: (Uuid, Option<String>) = w
        .owner
        .query_one(
            "SELECT company_id, photo_hash FROM employees WHERE id = $1",
            &[&employee],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(stored, (a, Some(b_only.clone())));
    let b_media = TENANT_TABLES
        .iter()
        .find(|t| t.name == "media")
        .expect("media is a tenant table");
    assert_eq!(w.count(b_media, b).await, w.b.media.len() as i64);
}

/// The notifications on `card_changed` of a connection of the service role that listens.
struct Listener {
    _client: Client,
    payloads: mpsc::UnboundedReceiver<String>,
}

impl Listener {
    async fn start(dbname: &str) -> Self {
        let (client, mut connection) = tokio_postgres::connect(&app_role_url(dbname), NoTls)
            .await
            .expect("connecting the listener");
        let (sender, payloads) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                // Notices and any other messages are of no interest here.
                if let AsyncMessage::Notification(n) =
                    message.expect("the listener's connection failed")
                {
                    assert_eq!(n.channel(), "card_changed");
                    if sender.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        client.batch_execute("LISTEN card_changed").await.unwrap();
        Self {
            _client: client,
            payloads,
        }
    }

    /// The next notification; fails after a few seconds without one.
    async fn next(&mut self, what: &str) -> String {
        tokio::time::timeout(Duration::from_secs(5), self.payloads.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: no notification"))
            .expect("the listener stopped")
    }

    /// Nothing (more) arrives for a while.
    async fn assert_quiet(&mut self, what: &str) {
        if let Ok(payload) =
            tokio::time::timeout(Duration::from_millis(300), self.payloads.recv()).await
        {
            panic!("{what}: unexpected notification {payload:?}");
        }
    }
}

#[tokio::test]
async fn committed_card_changes_notify_every_instance_once() {
    let w = world().await;
    let a = w.a.id;
    let mut listener = Listener::start(&w.dbname).await;
    let mut app = w.app().await;
    let (first, second) = (w.a.employees[0], w.a.employees[1]);

    let tx = begin(&mut app, Some(a), Some("admin")).await;
    let updated = tx
        .execute(
            "UPDATE employees SET job_title = 'Chief Cards Officer' WHERE id = $1",
            &[&first],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    // Nothing before the commit.
    listener.assert_quiet("an uncommitted update").await;
    tx.commit().await.unwrap();
    assert_eq!(
        listener.next("an employee's job title").await,
        format!("employee:{a}:{first}")
    );
    listener.assert_quiet("one employee updated").await;

    let tx = begin(&mut app, Some(a), Some("admin")).await;
    assert_eq!(
        tx.execute("UPDATE companies SET brand_color = '#0a0b0c'", &[])
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert_eq!(
        listener.next("the company's brand color").await,
        format!("company:{a}")
    );
    listener.assert_quiet("the company updated").await;

    // A rolled-back change says nothing; the committed one after it is the only notification.
    let tx = begin(&mut app, Some(a), Some("admin")).await;
    assert_eq!(
        tx.execute(
            "UPDATE employees SET job_title = 'Never' WHERE id = $1",
            &[&second],
        )
        .await
        .unwrap(),
        1
    );
    tx.rollback().await.unwrap();
    listener.assert_quiet("a rolled-back update").await;
    let tx = begin(&mut app, Some(a), Some("admin")).await;
    assert_eq!(
        tx.execute(
            "UPDATE employees SET job_title = 'Committed' WHERE id = $1",
            &[&second],
        )
        .await
        .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert_eq!(
        listener.next("an update after a rolled-back one").await,
        format!("employee:{a}:{second}")
    );
    listener.assert_quiet("after the rolled-back update").await;

    // Deleting an employee (whose card goes with it, and whose login is unlinked) is one
    // notification too.
    let tx = begin(&mut app, Some(a), Some("admin")).await;
    assert_eq!(
        tx.execute("DELETE FROM employees WHERE id = $1", &[&first])
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert_eq!(
        listener.next("a deleted employee").await,
        format!("employee:{a}:{first}")
    );
    listener.assert_quiet("one employee deleted").await;
}
