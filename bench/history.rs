//! History for the benchmarks that need a company with a past: the service on a loopback port,
//! a company on the enterprise plan with its employees, and generated card events loaded
//! straight into the tables (and rollups) as the superuser, in chunks, as history would have
//! arrived.
// Each benchmark is its own crate and uses part of this.
#![allow(dead_code)]

use std::{io::Write as _, time::Instant};

use callingcard::{
    analytics::{ACTION_COLUMNS, ADD_PER_ACTION, COUNT_PER_ACTION},
    config::Config,
    startup::Application,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Events generated and written per loader transaction.
pub const CHUNK: u64 = 200_000;
/// How far back the loaded history goes.
pub const HISTORY_DAYS: u32 = 400;
/// Distinct people behind the loaded visits (their visitor id changes every UTC day).
pub const PEOPLE: u32 = 50_000;

pub struct Service {
    pub base: String,
    pub pool: usize,
}

impl Service {
    pub async fn spawn(database_url: &str) -> anyhow::Result<Self> {
        Self::spawn_with(database_url, &[]).await
    }

    /// The same with more settings (`KEY`, value), which win over the ones above.
    pub async fn spawn_with(database_url: &str, extra: &[(&str, String)]) -> anyhow::Result<Self> {
        let vars = [
            ("DATABASE_URL", database_url.to_owned()),
            ("BIND_ADDR", "127.0.0.1:0".to_owned()),
            ("METRICS_ADDR", "127.0.0.1:0".to_owned()),
            (
                "JWT_SECRET",
                "bench-secret-bench-secret-bench-secret".to_owned(),
            ),
            ("CLIENT_IP_HEADER", "X-Forwarded-For".to_owned()),
            // One token serves the whole run (some 20 minutes), past the default 15.
            ("JWT_TTL", "24h".to_owned()),
        ];
        let config = Config::from_lookup(|key| {
            extra
                .iter()
                .chain(vars.iter())
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        })?;
        let pool = config.database_pool_size;
        let app = Application::build(config).await?;
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until(std::future::pending()));
        Ok(Self { base, pool })
    }
}

/// A company on the enterprise plan with its admin's token and its employees.
pub struct Company {
    pub id: Uuid,
    pub slug: String,
    pub token: String,
    /// `(id, public slug)`, in creation order.
    pub employees: Vec<(Uuid, String)>,
}

impl Company {
    pub async fn create(
        http: &reqwest::Client,
        base: &str,
        db: &tokio_postgres::Client,
        name: &str,
        employees: usize,
    ) -> anyhow::Result<Self> {
        let tag = Uuid::new_v4().simple().to_string();
        let signup: Value = http
            .post(format!("{base}/api/auth/signup"))
            .json(&json!({
                "email": format!("admin-{tag}@bench.example"), "password": "quiet-otter-harbor-1911",
                "full_name": "Bench Admin", "company_name": name
            }))
            .send()
            .await?
            .json()
            .await?;
        let token = signup["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let id: Uuid = signup["company_id"]
            .as_str()
            .unwrap_or_default()
            .parse()
            .map_err(|_| anyhow::anyhow!("signup failed: {signup}"))?;
        // The superuser changes the plan, as `PUT /api/company/{id}/subscription` would (no
        // events yet, so none to move): enterprise allows any number of employees and keeps
        // events forever.
        db.execute(
            "UPDATE subscriptions SET active = false, ended_at = now() WHERE company_id = $1 AND active",
            &[&id],
        )
        .await?;
        db.execute(
            "INSERT INTO subscriptions (company_id, plan) VALUES ($1, 'enterprise')",
            &[&id],
        )
        .await?;
        let mut company = Self {
            id,
            slug: String::new(),
            token,
            employees: Vec::with_capacity(employees),
        };
        for i in 1..=employees {
            let employee: Value = http
                .post(format!("{base}/api/company/{id}/employees"))
                .bearer_auth(&company.token)
                .json(&json!({
                    "full_name": format!("Employee {i:03}"), "job_title": "Sales",
                    "email": format!("employee{i}@bench.example"), "phone": "+49 30 1234567",
                    "whatsapp": "+49 170 1234567",
                    "social_links": {"linkedin": "https://www.linkedin.com/in/bench"}
                }))
                .send()
                .await?
                .json()
                .await?;
            let employee_id = employee["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("creating an employee failed: {employee}"))?;
            let slug = employee["public_slug"].as_str().unwrap_or_default();
            company.slug = employee["company_slug"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            company.employees.push((employee_id, slug.to_owned()));
        }
        Ok(company)
    }
}

/// Loads generated history straight into the tables, as the superuser.
pub struct Loader {
    pub company_id: Uuid,
    pub employees: Vec<Uuid>,
    pub total: u64,
    pub generate: String,
    /// [`STORE`] and [`store_daily`].
    pub store: Vec<String>,
}

pub struct Load {
    pub total: u64,
    pub added: u64,
    pub seconds: f64,
    pub vacuum_seconds: f64,
    pub size: DataSize,
}

pub struct DataSize {
    /// card_events, employee rollup, company rollup, action and visitor rollups, daily rollups.
    pub rows: [i64; 5],
    pub table_mb: [f64; 5],
    pub index_mb: [f64; 5],
    /// Leaf partitions of card_events (defaults included).
    pub partitions: i64,
}

/// Weight of each UTC hour of the day in the loaded history (business hours in Europe, evenings
/// in the Americas).
pub const HOUR_WEIGHTS: [u32; 24] = [
    1, 1, 1, 1, 1, 1, 2, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 4, 3, 3, 2, 2, 1, 1,
];
/// Regions, weighted by repetition; NULL is unknown.
pub const REGIONS: &str = "ARRAY['DE','DE','DE','DE','DE','DE','DE','DE','AT','AT','CH','CH',
    'US','US','US','US','US','GB','GB','GB','FR','FR','NL','NL','ES','IT','PL','SE','BE','DK',
    'IE','CA','AU','IN','BR','JP','SG',NULL,NULL]::text[]";
pub const LINKS: &str = "ARRAY['linkedin','linkedin','linkedin','website','website','x','github',
    'instagram','calendly']";

/// Sessions of one person on one card: a view (or QR scan), then 0 to 3 further actions a few
/// seconds to minutes apart; 3% are link-preview fetches of one event. $1 the employees, $2 the
/// number of sessions, [$3, $4) the slice of the time distribution (0 is 400 days ago, 1 now;
/// density growing linearly towards now, so position = sqrt(uniform)), $5 the events wanted.
pub const GENERATE: &str = "
INSERT INTO bench_events (occurred_at, id, employee_id, action, link, device, region, visitor)
WITH draws AS MATERIALIZED (
    SELECT $3::float8 + random() * ($4::float8 - $3::float8) AS r_day, random() AS r_hour,
           random() AS r_second, random() AS r_employee, random() AS r_person,
           random() AS r_kind, random() AS r_length
    FROM generate_series(1, $2::bigint)
), sessions AS (
    SELECT CASE WHEN t.started_at > now() THEN t.started_at - interval '1 day'
                ELSE t.started_at END AS started_at,
           ($1::uuid[])[1 + floor(cardinality($1::uuid[]) * power(d.r_employee, 2))::int]
               AS employee_id,
           floor({people} * power(d.r_person, 1.5))::int AS person,
           d.r_kind < 0.03 AS preview,
           CASE WHEN d.r_kind < 0.03 OR d.r_length < 0.65 THEN 0
                WHEN d.r_length < 0.87 THEN 1 WHEN d.r_length < 0.96 THEN 2 ELSE 3 END AS extra
    FROM draws d
    CROSS JOIN LATERAL (
        SELECT date_trunc('day', now(), 'UTC')
               - make_interval(days => floor({days} * (1 - sqrt(d.r_day)))::int)
               + make_interval(hours => ({hours})[1 + floor(d.r_hour * {hour_slots})::int],
                               secs => d.r_second * 3600) AS started_at
    ) t
), events AS (
    SELECT least(s.started_at + make_interval(secs => e.k * (10 + e.r_gap * 110)), now())
               AS occurred_at,
           s.employee_id, s.person, s.preview,
           CASE WHEN s.preview THEN 'preview'
                WHEN e.k = 0 THEN CASE WHEN e.r_action < 0.7 THEN 'view' ELSE 'scan_qr' END
                WHEN e.r_action < 0.15 THEN 'view'
                WHEN e.r_action < 0.37 THEN 'download_vcard'
                WHEN e.r_action < 0.51 THEN 'call'
                WHEN e.r_action < 0.61 THEN 'email'
                WHEN e.r_action < 0.72 THEN 'whatsapp'
                WHEN e.r_action < 0.92 THEN 'link_click'
                ELSE 'share' END AS action,
           e.r_link
    FROM sessions s
    CROSS JOIN LATERAL (
        SELECT k, random() AS r_action, random() AS r_gap, random() AS r_link
        FROM generate_series(0, s.extra) k
    ) e
    LIMIT $5
)
SELECT occurred_at, gen_random_uuid(), employee_id, action,
       CASE WHEN action = 'link_click' THEN ({links})[1 + floor(r_link * 9)::int] END,
       CASE WHEN preview THEN NULL WHEN person % 100 < 76 THEN 'mobile'
            WHEN person % 100 < 93 THEN 'desktop' ELSE 'tablet' END,
       CASE WHEN preview THEN NULL
            ELSE ({regions})[1 + (person * 7919) % cardinality({regions})] END,
       CASE WHEN preview THEN NULL
            ELSE md5(person || ':' || to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')) END
FROM events";

/// From the generated chunk into the events and the hourly and visitor rollups, aggregated as
/// INGEST does (the daily ones: [`store_daily`]).
pub const STORE: [&str; 5] = [
    "INSERT INTO card_events (company_id, retention, occurred_at, id, employee_id, action, link,
                              device, region, visitor)
     SELECT $1,
            coalesce((SELECT p.retention FROM subscriptions s JOIN plans p ON p.plan = s.plan
                      WHERE s.company_id = $1 AND s.active), 'd30'),
            occurred_at, id, employee_id, action, link, device, region, visitor
     FROM bench_events WHERE action <> 'preview' ORDER BY occurred_at",
    "INSERT INTO card_rollup_employee_hourly AS r (company_id, hour, employee_id, action, events)
     SELECT $1, date_trunc('hour', occurred_at, 'UTC') AS hour, employee_id, action, count(*)
     FROM bench_events GROUP BY 2, 3, 4 ORDER BY 2, 3, 4
     ON CONFLICT (company_id, hour, employee_id, action)
     DO UPDATE SET events = r.events + excluded.events",
    "INSERT INTO card_rollup_company_hourly AS r (company_id, hour, action, device, region, events)
     SELECT $1, date_trunc('hour', occurred_at, 'UTC') AS hour, action,
            coalesce(device, '') AS device, coalesce(region, '') AS region, count(*)
     FROM bench_events GROUP BY 2, 3, 4, 5 ORDER BY 2, 3, 4, 5
     ON CONFLICT (company_id, hour, action, device, region)
     DO UPDATE SET events = r.events + excluded.events",
    "INSERT INTO card_rollup_action_hourly AS r (company_id, hour, action, events)
     SELECT $1, date_trunc('hour', occurred_at, 'UTC') AS hour, action, count(*)
     FROM bench_events GROUP BY 2, 3 ORDER BY 2, 3
     ON CONFLICT (company_id, hour, action) DO UPDATE SET events = r.events + excluded.events",
    "WITH first_seen AS (
         INSERT INTO card_visitor_days (company_id, day, card, visitor, first_hour)
         SELECT $1, (occurred_at AT TIME ZONE 'UTC')::date, card, visitor,
                min(date_trunc('hour', occurred_at, 'UTC'))
         FROM bench_events
         CROSS JOIN LATERAL (VALUES (employee_id), ('00000000-0000-0000-0000-000000000000'::uuid)) AS c (card)
         WHERE visitor IS NOT NULL AND action <> 'preview'
         GROUP BY 2, 3, 4 ORDER BY 2, 3, 4
         ON CONFLICT DO NOTHING
         RETURNING card, first_hour
     )
     INSERT INTO card_rollup_visitors_hourly AS r (company_id, card, hour, visitors)
     SELECT $1, card, first_hour, count(*) FROM first_seen GROUP BY 2, 3 ORDER BY 2, 3
     ON CONFLICT (company_id, card, hour) DO UPDATE SET visitors = r.visitors + excluded.visitors",
];

/// The daily rollups from the generated chunk, with INGEST's per-action column lists.
pub fn store_daily() -> [String; 2] {
    [
        format!(
            "INSERT INTO card_rollup_employee_daily AS r (company_id, day, employee_id, {ACTION_COLUMNS})
             SELECT $1, (occurred_at AT TIME ZONE 'UTC')::date, employee_id, {COUNT_PER_ACTION}
             FROM bench_events GROUP BY 2, 3 ORDER BY 2, 3
             ON CONFLICT (company_id, day, employee_id) DO UPDATE SET {ADD_PER_ACTION}"
        ),
        format!(
            "INSERT INTO card_rollup_company_daily AS r (company_id, day, device, region, {ACTION_COLUMNS})
             SELECT $1, (occurred_at AT TIME ZONE 'UTC')::date, coalesce(device, ''),
                    coalesce(region, ''), {COUNT_PER_ACTION}
             FROM bench_events GROUP BY 2, 3, 4 ORDER BY 2, 3, 4
             ON CONFLICT (company_id, day, device, region) DO UPDATE SET {ADD_PER_ACTION}"
        ),
    ]
}

impl Loader {
    pub async fn prepare(db: &tokio_postgres::Client, company: &Company) -> anyhow::Result<Self> {
        db.batch_execute(&format!(
            "SELECT analytics_ensure_partitions(now() - interval '{HISTORY_DAYS} days',
                                                now() + interval '2 days');
             -- What the service does every hour: that made daily `d30` partitions for all of
             -- the history, which retention drops past 30 days (they would only slow planning).
             SELECT analytics_maintain();
             CREATE TEMP TABLE bench_events (
                 occurred_at timestamptz NOT NULL, id uuid NOT NULL, employee_id uuid NOT NULL,
                 action text NOT NULL, link text, device text, region text, visitor text
             ) ON COMMIT DELETE ROWS;
             SELECT setseed(0.42);"
        ))
        .await?;
        let hours: Vec<String> = HOUR_WEIGHTS
            .iter()
            .enumerate()
            .flat_map(|(hour, &weight)| std::iter::repeat_n(hour.to_string(), weight as usize))
            .collect();
        let generate = GENERATE
            .replace("{people}", &PEOPLE.to_string())
            .replace("{days}", &HISTORY_DAYS.to_string())
            .replace("{hours}", &format!("ARRAY[{}]", hours.join(",")))
            .replace("{hour_slots}", &hours.len().to_string())
            .replace("{links}", LINKS)
            .replace("{regions}", REGIONS);
        Ok(Self {
            store: STORE
                .map(str::to_owned)
                .into_iter()
                .chain(store_daily())
                .collect(),
            company_id: company.id,
            employees: company.employees.iter().map(|(id, _)| *id).collect(),
            total: 0,
            generate,
        })
    }

    /// Adds events until there are `target`, spread over the whole history: the step is cut
    /// into chunks, each a slice of time, in order (as history would have arrived).
    pub async fn load_to(
        &mut self,
        db: &tokio_postgres::Client,
        target: u64,
    ) -> anyhow::Result<Load> {
        let added_target = target - self.total;
        let chunks = added_target.div_ceil(CHUNK);
        let started = Instant::now();
        let mut added = 0;
        for i in 0..chunks {
            let wanted = (added_target - added).div_ceil(chunks - i) as i64;
            // Sessions average about 1.5 events; a few more than needed, cut at `wanted`.
            let sessions = wanted * 10 / 14 + 100;
            let (lo, hi) = (i as f64 / chunks as f64, (i + 1) as f64 / chunks as f64);
            db.batch_execute("BEGIN").await?;
            let generated = db
                .execute(
                    &self.generate,
                    &[&self.employees, &sessions, &lo, &hi, &wanted],
                )
                .await?;
            for statement in &self.store {
                db.execute(statement, &[&self.company_id]).await?;
            }
            db.batch_execute("COMMIT").await?;
            added += generated;
            let rate = added as f64 / started.elapsed().as_secs_f64();
            eprint!(
                "\r[bench] loading: {} / {} events ({rate:.0} events/s)   ",
                self.total + added,
                target
            );
            let _ = std::io::stderr().flush();
        }
        eprintln!();
        let seconds = started.elapsed().as_secs_f64();
        self.total += added;
        let vacuum = Instant::now();
        // What hourly maintenance does: visitor ids of past days are no longer needed.
        db.batch_execute(
            "DELETE FROM card_visitor_days WHERE day < (now() AT TIME ZONE 'UTC')::date - 1",
        )
        .await?;
        // The running totals the dashboards read, from the rollups just loaded (ingestion keeps
        // them as it goes; history loaded straight into the rollups has them computed once).
        db.execute("SELECT analytics_rebuild_running($1)", &[&self.company_id])
            .await?;
        db.batch_execute(
            "VACUUM ANALYZE card_running_employee_daily, card_running_employee_latest,
                            card_running_company_daily, card_running_company_latest,
                            card_running_hourly, card_running_hourly_latest, card_events, card_rollup_employee_hourly, card_rollup_company_hourly,
                            card_rollup_action_hourly, card_visitor_days, card_rollup_visitors_hourly,
                            card_rollup_employee_daily, card_rollup_company_daily",
        )
        .await?;
        let vacuum_seconds = vacuum.elapsed().as_secs_f64();
        Ok(Load {
            total: self.total,
            added,
            seconds,
            vacuum_seconds,
            size: data_size(db).await?,
        })
    }
}

pub async fn data_size(db: &tokio_postgres::Client) -> anyhow::Result<DataSize> {
    let row = db
        .query_one(
            "WITH parts AS (SELECT relid FROM pg_partition_tree('card_events') WHERE isleaf)
             SELECT (SELECT count(*) FROM card_events),
                    (SELECT count(*) FROM card_rollup_employee_hourly),
                    (SELECT count(*) FROM card_rollup_company_hourly),
                    (SELECT count(*) FROM card_rollup_action_hourly)
                        + (SELECT count(*) FROM card_rollup_visitors_hourly),
                    (SELECT count(*) FROM card_rollup_employee_daily)
                        + (SELECT count(*) FROM card_rollup_company_daily),
                    (SELECT sum(pg_table_size(relid)) FROM parts)::float8,
                    pg_table_size('card_rollup_employee_hourly')::float8,
                    pg_table_size('card_rollup_company_hourly')::float8,
                    (pg_table_size('card_rollup_action_hourly')
                        + pg_table_size('card_rollup_visitors_hourly'))::float8,
                    (pg_table_size('card_rollup_employee_daily')
                        + pg_table_size('card_rollup_company_daily'))::float8,
                    (SELECT sum(pg_indexes_size(relid)) FROM parts)::float8,
                    pg_indexes_size('card_rollup_employee_hourly')::float8,
                    pg_indexes_size('card_rollup_company_hourly')::float8,
                    (pg_indexes_size('card_rollup_action_hourly')
                        + pg_indexes_size('card_rollup_visitors_hourly'))::float8,
                    (pg_indexes_size('card_rollup_employee_daily')
                        + pg_indexes_size('card_rollup_company_daily'))::float8,
                    (SELECT count(*) FROM parts)",
            &[],
        )
        .await?;
    let mb = |i: usize| row.get::<_, f64>(i) / (1024.0 * 1024.0);
    Ok(DataSize {
        rows: [row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)],
        table_mb: [mb(5), mb(6), mb(7), mb(8), mb(9)],
        index_mb: [mb(10), mb(11), mb(12), mb(13), mb(14)],
        partitions: row.get(15),
    })
}
