//! Retention of raw analytics events: partitions by retention class and time, what
//! `analytics_maintain()` drops and purges (run by the service role), who may manage partitions,
//! events moving between classes when a company's plan changes, and the class ingestion picks.
//!
//! Events are seeded with the superuser straight into `card_events`, in the class of the
//! company's plan (free: `d30`, professional: `d365`, enterprise: `forever`).

use std::collections::BTreeSet;

use crate::helpers::{
    self, Card, HOLD_MAINTENANCE, IPHONE, Session, TestApp, app_role_url, connect, fresh_database,
    spawn_app, superuser_url, track, tracked_id,
};
use serde_json::{Value, json};
use tokio_postgres::{Client, error::SqlState};
use uuid::Uuid;

const DAY: i32 = 24;

/// Partitions for the last 400 days and the next two, the way the benchmark loads history.
const HISTORY: &str =
    "SELECT analytics_ensure_partitions(now() - interval '400 days', now() + interval '2 days')";

const MAINTAIN: &str = "SELECT dropped_partitions, purged_events FROM analytics_maintain()";

/// Lets go of `HOLD_MAINTENANCE`, the key `analytics_maintain()` serializes on: a test that holds
/// it keeps the service's own maintenance (run at start, then hourly) from applying retention
/// behind its back.
const RELEASE_MAINTENANCE: &str =
    "SELECT pg_advisory_unlock(hashtext('callingcard.analytics_maintain'))";

/// A company on `plan`, inserted directly (for the tests without the app).
async fn add_company(owner: &Client, plan: &str) -> Uuid {
    let id = Uuid::new_v4();
    owner
        .execute(
            "INSERT INTO companies (id, name, slug) VALUES ($1, 'Company', 'company-' || left(md5($1::uuid::text), 12))",
            &[&id],
        )
        .await
        .unwrap();
    owner
        .execute(
            "INSERT INTO subscriptions (company_id, plan) VALUES ($1, $2)",
            &[&id, &plan],
        )
        .await
        .unwrap();
    id
}

/// One event of `company`, `age_hours` ago (negative: in the future), in class `retention`.
async fn seed_event(
    owner: &Client,
    company: Uuid,
    employee: Uuid,
    retention: &str,
    age_hours: i32,
) -> Uuid {
    owner
        .query_one(
            "INSERT INTO card_events (company_id, retention, occurred_at, id, employee_id, action,
                                      device, region, visitor)
             VALUES ($1, $2, now() - make_interval(hours => $3), gen_random_uuid(), $4, 'view',
                     'mobile', 'DE', md5(random()::text))
             RETURNING id",
            &[&company, &retention, &age_hours, &employee],
        )
        .await
        .unwrap()
        .get(0)
}

/// Where an event is: its class and the partition holding it; `None` once deleted.
async fn locate(owner: &Client, event: Uuid) -> Option<(String, String)> {
    owner
        .query_opt(
            "SELECT retention, tableoid::regclass::text FROM card_events WHERE id = $1",
            &[&event],
        )
        .await
        .unwrap()
        .map(|row| (row.get(0), row.get(1)))
}

#[track_caller]
fn assert_in(location: &Option<(String, String)>, retention: &str, partition_prefix: &str) {
    let (class, partition) = location
        .as_ref()
        .unwrap_or_else(|| panic!("expected an event in {retention}, it is gone"));
    assert_eq!(class, retention, "{partition}");
    assert!(
        partition.starts_with(partition_prefix),
        "{partition} is not a {partition_prefix}… partition"
    );
}

async fn exists(owner: &Client, relation: &str) -> bool {
    owner
        .query_one(
            "SELECT to_regclass(format('public.%I', $1::text)) IS NOT NULL",
            &[&relation],
        )
        .await
        .unwrap()
        .get(0)
}

/// The names of the partitions of `parent`, default partition excluded, in order.
async fn partitions_of(owner: &Client, parent: &str) -> Vec<String> {
    owner
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = $1::text::regclass AND c.relname::text <> $1 || '_default'
             ORDER BY 1",
            &[&parent],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A SQL expression's value as text, e.g. a partition name computed from `now()`.
async fn text_of(owner: &Client, expression: &str) -> String {
    owner
        .query_one(&format!("SELECT ({expression})::text"), &[])
        .await
        .unwrap()
        .get(0)
}

/// The daily partition of the UTC day `age_hours` ago.
async fn d30_partition(owner: &Client, age_hours: i32) -> String {
    text_of(
        owner,
        &format!(
            "'card_events_d30_p' || to_char((now() - make_interval(hours => {age_hours})) AT TIME ZONE 'UTC', 'YYYYMMDD')"
        ),
    )
    .await
}

/// The monthly partition of class `retention` of the UTC month `age_hours` ago.
async fn monthly_partition(owner: &Client, retention: &str, age_hours: i32) -> String {
    text_of(
        owner,
        &format!(
            "'card_events_{retention}_p' || to_char((now() - make_interval(hours => {age_hours})) AT TIME ZONE 'UTC', 'YYYYMM')"
        ),
    )
    .await
}

/// Every row of the company's rollups, as the superuser sees them.
async fn rollups(owner: &Client, company: Uuid) -> String {
    let mut all = String::new();
    for table in [
        "card_rollup_employee_hourly",
        "card_rollup_company_hourly",
        "card_rollup_action_hourly",
        "card_rollup_visitors_hourly",
        "card_rollup_employee_daily",
        "card_rollup_company_daily",
    ] {
        let rows: String = owner
            .query_one(
                &format!(
                    "SELECT coalesce(json_agg(t ORDER BY t::text), '[]')::text FROM {table} t WHERE company_id = $1"
                ),
                &[&company],
            )
            .await
            .unwrap()
            .get(0);
        assert_ne!(rows, "[]", "{table}: seed rows to compare");
        all.push_str(&rows);
    }
    all
}

/// Rollup rows of `company` for the hour (and UTC day) `age_hours` ago (rollups are not
/// partitioned).
async fn seed_rollups(owner: &Client, company: Uuid, employee: Uuid, age_hours: i32) {
    let hour = "date_trunc('hour', now() - make_interval(hours => $3), 'UTC')";
    let day = "((now() - make_interval(hours => $3)) AT TIME ZONE 'UTC')::date";
    for sql in [
        format!(
            "INSERT INTO card_rollup_employee_hourly (company_id, hour, employee_id, action, events)
             VALUES ($1, {hour}, $2, 'view', 3)"
        ),
        format!(
            "INSERT INTO card_rollup_company_hourly (company_id, hour, action, device, region, events)
             SELECT $1, {hour}, 'view', 'mobile', 'DE', 3 WHERE $2::uuid IS NOT NULL"
        ),
        format!(
            "INSERT INTO card_rollup_action_hourly (company_id, hour, action, events)
             SELECT $1, {hour}, 'view', 3 WHERE $2::uuid IS NOT NULL"
        ),
        format!(
            "INSERT INTO card_rollup_visitors_hourly (company_id, card, hour, visitors)
             VALUES ($1, $2, {hour}, 2)"
        ),
        format!(
            "INSERT INTO card_rollup_employee_daily (company_id, day, employee_id, view)
             VALUES ($1, {day}, $2, 3)"
        ),
        format!(
            "INSERT INTO card_rollup_company_daily (company_id, day, device, region, view)
             SELECT $1, {day}, 'mobile', 'DE', 3 WHERE $2::uuid IS NOT NULL"
        ),
    ] {
        owner
            .execute(&sql, &[&company, &employee, &age_hours])
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn maintenance_drops_expired_partitions_purges_defaults_and_prepares_the_week() {
    let dbname = fresh_database().await;
    let owner = connect(&superuser_url(&dbname)).await;
    let company = add_company(&owner, "free").await;
    let employee = Uuid::new_v4();
    owner.batch_execute(HISTORY).await.unwrap();

    // Detail past retention, detail within it, and rows that found no partition (older or newer
    // than any) in the default partitions. One company may hold several classes here: these
    // rows only exercise the partitions.
    let seed = async |retention: &str, age_hours: i32| {
        seed_event(&owner, company, employee, retention, age_hours).await
    };
    let d30_expired = seed("d30", 40 * DAY).await;
    let d30_last_day_kept = seed("d30", 29 * DAY).await;
    let d30_recent = seed("d30", 1).await;
    let d30_default_expired = seed("d30", 500 * DAY).await;
    let d30_default_future = seed("d30", -20 * DAY).await;
    let d365_expired = seed("d365", 399 * DAY).await;
    let d365_kept = seed("d365", 300 * DAY).await;
    let d365_default_expired = seed("d365", 500 * DAY).await;
    let forever_old = seed("forever", 399 * DAY).await;
    let forever_default = seed("forever", 500 * DAY).await;

    let mut before = Vec::new();
    for event in [
        d30_expired,
        d30_last_day_kept,
        d30_recent,
        d30_default_expired,
        d30_default_future,
        d365_expired,
        d365_kept,
        d365_default_expired,
        forever_old,
        forever_default,
    ] {
        before.push(locate(&owner, event).await);
    }
    assert_in(&before[0], "d30", "card_events_d30_p");
    for i in [3, 4] {
        assert_in(&before[i], "d30", "card_events_d30_default");
    }
    assert_in(&before[5], "d365", "card_events_d365_p");
    assert_in(&before[7], "d365", "card_events_d365_default");
    assert_in(&before[8], "forever", "card_events_forever_p");
    assert_in(&before[9], "forever", "card_events_forever_default");
    let d30_expired_partition = before[0].clone().unwrap().1;
    let d365_expired_partition = before[5].clone().unwrap().1;

    // What must go, computed from dates rather than from the partition bounds: a daily partition
    // is entirely older than 30 days when its day is before the day 30 days ago; a monthly one
    // older than 365 days when its month is before the month 365 days ago.
    let expected_dropped: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE (i.inhparent = 'card_events_d30'::regclass AND c.relname LIKE 'card\\_events\\_d30\\_p%'
                    AND c.relname < 'card_events_d30_p' || to_char((now() - interval '30 days') AT TIME ZONE 'UTC', 'YYYYMMDD'))
                OR (i.inhparent = 'card_events_d365'::regclass AND c.relname LIKE 'card\\_events\\_d365\\_p%'
                    AND c.relname < 'card_events_d365_p' || to_char((now() - interval '365 days') AT TIME ZONE 'UTC', 'YYYYMM'))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        expected_dropped >= 370,
        "370 days of daily partitions and at least a month are past retention: {expected_dropped}"
    );
    let forever_before = partitions_of(&owner, "card_events_forever").await;
    // Aggregates outlive detail: rollups as old as the purged events stay.
    for age in [40 * DAY, 500 * DAY] {
        seed_rollups(&owner, company, employee, age).await;
    }
    let rollups_before = rollups(&owner, company).await;

    // The service role runs it.
    let app = connect(&app_role_url(&dbname)).await;
    let row = app.query_one(MAINTAIN, &[]).await.unwrap();
    let (dropped, purged): (i32, i64) = (row.get(0), row.get(1));
    assert_eq!(rollups(&owner, company).await, rollups_before);
    assert_eq!(i64::from(dropped), expected_dropped, "dropped partitions");
    assert_eq!(
        purged, 2,
        "purged events: the d30 and d365 defaults' expired rows"
    );

    // Whole partitions went, with their events; the newer ones stayed.
    assert!(!exists(&owner, &d30_expired_partition).await);
    assert!(!exists(&owner, &d365_expired_partition).await);
    let d30_left = partitions_of(&owner, "card_events_d30").await;
    let d30_expected: Vec<String> = owner
        .query_one(
            "SELECT array_agg('card_events_d30_p' || to_char(d, 'YYYYMMDD') ORDER BY d)
             FROM generate_series(((now() - interval '30 days') AT TIME ZONE 'UTC')::date,
                                  ((now() + interval '7 days') AT TIME ZONE 'UTC')::date,
                                  interval '1 day') d",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        d30_left, d30_expected,
        "daily partitions: from 30 days ago through the coming week, nothing else"
    );
    let d365_left = partitions_of(&owner, "card_events_d365").await;
    let d365_expected: Vec<String> = owner
        .query_one(
            "SELECT array_agg('card_events_d365_p' || to_char(m, 'YYYYMM') ORDER BY m)
             FROM generate_series(date_trunc('month', (now() - interval '365 days') AT TIME ZONE 'UTC'),
                                  (now() + interval '7 days') AT TIME ZONE 'UTC',
                                  interval '1 month') m",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        d365_left, d365_expected,
        "monthly d365 partitions: from the month 365 days ago through the coming week"
    );
    // `forever` is never touched; it only gains the coming week's month.
    let forever_after = partitions_of(&owner, "card_events_forever").await;
    assert!(
        forever_before.iter().all(|p| forever_after.contains(p)),
        "a forever partition was dropped: {forever_before:?} → {forever_after:?}"
    );
    assert!(
        forever_after.contains(&monthly_partition(&owner, "forever", -7 * DAY).await),
        "{forever_after:?}"
    );
    // The coming week, day by day.
    for days_ahead in 0..=7 {
        let daily = d30_partition(&owner, -days_ahead * DAY).await;
        assert!(exists(&owner, &daily).await, "{daily} was not created");
        for class in ["d365", "forever"] {
            let monthly = monthly_partition(&owner, class, -days_ahead * DAY).await;
            assert!(exists(&owner, &monthly).await, "{monthly} was not created");
        }
    }

    // Events: gone exactly when past their class's retention.
    let gone = [
        d30_expired,
        d30_default_expired,
        d365_expired,
        d365_default_expired,
    ];
    for event in gone {
        assert_eq!(
            locate(&owner, event).await,
            None,
            "{event} outlived retention"
        );
    }
    for (event, was) in [
        (d30_last_day_kept, &before[1]),
        (d30_recent, &before[2]),
        (d30_default_future, &before[4]),
        (d365_kept, &before[6]),
        (forever_old, &before[8]),
        (forever_default, &before[9]),
    ] {
        assert_eq!(&locate(&owner, event).await, was, "{event}");
    }
    let left: i64 = owner
        .query_one("SELECT count(*) FROM card_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 6);

    // Once done, there is nothing left to do.
    let row = app.query_one(MAINTAIN, &[]).await.unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i64>(1)), (0, 0));
    assert_eq!(partitions_of(&owner, "card_events_d30").await, d30_expected);
}

#[tokio::test]
async fn the_service_role_reaches_events_through_the_parent_only() {
    let dbname = fresh_database().await;
    let owner = connect(&superuser_url(&dbname)).await;
    let (a, b) = (
        add_company(&owner, "free").await,
        add_company(&owner, "free").await,
    );
    for (company, events) in [(a, 2), (b, 1)] {
        for _ in 0..events {
            seed_event(&owner, company, Uuid::new_v4(), "d30", 1).await;
        }
    }
    let mut app = connect(&app_role_url(&dbname)).await;

    // Managing partitions is the owner's: the service role has analytics_maintain() alone.
    for sql in [
        "SELECT analytics_ensure_partitions(now() - interval '400 days', now())",
        "SELECT analytics_create_partition('card_events_d30', 'card_events_d30_p20000101',
                                           '2000-01-01 00:00+00', '2000-01-02 00:00+00')",
    ] {
        let err = app.query_one(sql, &[]).await.unwrap_err();
        let db = err.as_db_error().expect("a server error");
        assert_eq!(db.code(), &SqlState::INSUFFICIENT_PRIVILEGE, "{sql}");
        assert!(
            db.message().contains("permission denied for function"),
            "{}",
            db.message()
        );
    }
    assert!(!exists(&owner, "card_events_d30_p20000101").await);

    // No privilege at all on any partition, intermediate or leaf: row-level security is on the
    // parent, and reading a partition directly would skip it.
    let today = d30_partition(&owner, 0).await;
    let partitions = owner
        .query(
            "SELECT relid::text,
                    has_table_privilege('callingcard_app', relid, 'SELECT') AS can_select,
                    has_table_privilege('callingcard_app', relid,
                        'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS can_anything
             FROM pg_partition_tree('card_events') WHERE parentrelid IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    let names: BTreeSet<String> = partitions.iter().map(|r| r.get(0)).collect();
    assert!(
        names.contains(&today) && names.contains("card_events_d30_default"),
        "{names:?}"
    );
    for row in &partitions {
        let name: String = row.get(0);
        assert!(!row.get::<_, bool>("can_select"), "{name}: SELECT granted");
        assert!(!row.get::<_, bool>("can_anything"), "{name}: a privilege");
    }
    for sql in [
        format!("SELECT count(*) FROM {today}"),
        "SELECT count(*) FROM card_events_d30".to_owned(),
        "SELECT count(*) FROM card_events_d30_default".to_owned(),
        format!("DELETE FROM {today}"),
        format!(
            "INSERT INTO {today} (company_id, retention, occurred_at, id, employee_id, action)
             VALUES ('{b}', 'd30', now(), gen_random_uuid(), gen_random_uuid(), 'view')"
        ),
    ] {
        let err = app.batch_execute(&sql).await.unwrap_err();
        let db = err.as_db_error().expect("a server error");
        assert_eq!(db.code(), &SqlState::INSUFFICIENT_PRIVILEGE, "{sql}");
        assert!(
            db.message().contains("permission denied for table"),
            "{sql}: {}",
            db.message()
        );
    }

    // Through the parent, the wall: each company its own events, nobody's without a tenant.
    for (company, expected) in [(Some(a), 2), (Some(b), 1), (None, 0)] {
        let tx = app.transaction().await.unwrap();
        if let Some(company) = company {
            tx.query_one(
                "SELECT set_config('app.company_id', $1, true)",
                &[&company.to_string()],
            )
            .await
            .unwrap();
        }
        let seen: i64 = tx
            .query_one("SELECT count(*) FROM card_events", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(seen, expected, "company {company:?}");
        tx.rollback().await.unwrap();
    }
}

/// `analytics_maintain()` is SECURITY DEFINER, and the service role's temporary tables are on
/// its search_path: lookalikes there must not steer what it creates or drops.
#[tokio::test]
async fn maintenance_cannot_be_steered_by_the_callers_temporary_tables() {
    let dbname = fresh_database().await;
    let owner = connect(&superuser_url(&dbname)).await;
    let company = add_company(&owner, "free").await;
    let employee = Uuid::new_v4();
    let event = seed_event(&owner, company, employee, "d30", 0).await;
    seed_rollups(&owner, company, employee, 1).await;
    let today = d30_partition(&owner, 0).await;
    // The last day of the coming week, not created yet: maintenance must create it.
    let next_week = d30_partition(&owner, -7 * DAY).await;
    owner
        .batch_execute(&format!("DROP TABLE IF EXISTS {next_week}"))
        .await
        .unwrap();

    let mut app = connect(&app_role_url(&dbname)).await;
    let tx = app.transaction().await.unwrap();
    // A temporary "card_events_d30" whose expired "partitions" are named like a tenant table
    // that nothing references and like today's partition; and a table named like the partition
    // maintenance is about to create.
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE card_events_d30 (occurred_at timestamptz) PARTITION BY RANGE (occurred_at);
         CREATE TEMP TABLE card_rollup_visitors_hourly PARTITION OF pg_temp.card_events_d30
             FOR VALUES FROM ('2000-01-01 00:00+00') TO ('2000-01-02 00:00+00');
         CREATE TEMP TABLE {today} PARTITION OF pg_temp.card_events_d30
             FOR VALUES FROM ('2000-01-02 00:00+00') TO ('2000-01-03 00:00+00');
         CREATE TEMP TABLE {next_week} (occurred_at timestamptz);"
    ))
    .await
    .unwrap();
    let row = tx.query_one(MAINTAIN, &[]).await.unwrap();
    assert_eq!(
        row.get::<_, i32>(0),
        0,
        "nothing was past retention, yet something was dropped"
    );
    tx.commit().await.unwrap();

    assert!(exists(&owner, "card_rollup_visitors_hourly").await);
    let visitors: i64 = owner
        .query_one("SELECT count(*) FROM card_rollup_visitors_hourly", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(visitors, 1);
    assert!(exists(&owner, &today).await);
    assert_in(&locate(&owner, event).await, "d30", &today);
    assert!(
        exists(&owner, &next_week).await,
        "{next_week}: a temporary table passed for the partition"
    );
}

#[tokio::test]
async fn a_new_partition_adopts_the_events_waiting_in_the_default_partition() {
    let dbname = fresh_database().await;
    let owner = connect(&superuser_url(&dbname)).await;
    let company = add_company(&owner, "free").await;
    let employee = Uuid::new_v4();
    // Dates without partitions (only the days around the migration have some).
    let d30_waiting = seed_event(&owner, company, employee, "d30", 100 * DAY).await;
    let d30_day_before = seed_event(&owner, company, employee, "d30", 101 * DAY).await;
    let d365_waiting = seed_event(&owner, company, employee, "d365", 100 * DAY).await;
    let forever_waiting = seed_event(&owner, company, employee, "forever", 100 * DAY).await;
    for (event, class) in [
        (d30_waiting, "d30"),
        (d30_day_before, "d30"),
        (d365_waiting, "d365"),
        (forever_waiting, "forever"),
    ] {
        assert_in(
            &locate(&owner, event).await,
            class,
            &format!("card_events_{class}_default"),
        );
    }
    let snapshot = "SELECT json_agg(e ORDER BY e.id)::text FROM card_events e";
    let before: String = owner.query_one(snapshot, &[]).await.unwrap().get(0);

    owner
        .batch_execute(
            "SELECT analytics_ensure_partitions(now() - interval '100 days', now() - interval '100 days')",
        )
        .await
        .unwrap();
    let day = d30_partition(&owner, 100 * DAY).await;
    assert_in(&locate(&owner, d30_waiting).await, "d30", &day);
    assert_in(
        &locate(&owner, d30_day_before).await,
        "d30",
        "card_events_d30_default",
    );
    assert_in(
        &locate(&owner, d365_waiting).await,
        "d365",
        &monthly_partition(&owner, "d365", 100 * DAY).await,
    );
    assert_in(
        &locate(&owner, forever_waiting).await,
        "forever",
        &monthly_partition(&owner, "forever", 100 * DAY).await,
    );

    // One partition directly, the way ensure does it: the last waiting event moves too.
    let day_before = d30_partition(&owner, 101 * DAY).await;
    let create =
        "SELECT analytics_create_partition('card_events_d30', $1, d::timestamp AT TIME ZONE 'UTC',
                                                    (d + 1)::timestamp AT TIME ZONE 'UTC')
                  FROM (SELECT ((now() - interval '101 days') AT TIME ZONE 'UTC')::date AS d) day";
    owner.execute(create, &[&day_before]).await.unwrap();
    assert_in(&locate(&owner, d30_day_before).await, "d30", &day_before);
    // Again: it exists, nothing happens.
    owner.execute(create, &[&day_before]).await.unwrap();

    // Nothing lost, nothing changed, and the defaults are empty.
    let after: String = owner.query_one(snapshot, &[]).await.unwrap().get(0);
    assert_eq!(after, before);
    for class in ["d30", "d365", "forever"] {
        let waiting: i64 = owner
            .query_one(
                &format!("SELECT count(*) FROM card_events_{class}_default"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(waiting, 0, "card_events_{class}_default");
    }
}

/// The app, a company with an employee, a bystander company, and a superadmin; maintenance held
/// off while the test holds `owner`.
struct PlanWorld {
    app: TestApp,
    owner: Client,
    admin: Session,
    employee: Value,
    bystander: Session,
    root: Session,
}

impl PlanWorld {
    async fn new() -> Self {
        let app = spawn_app().await;
        let owner = connect(&superuser_url(&app.dbname)).await;
        owner.query_one(HOLD_MAINTENANCE, &[]).await.unwrap();
        let admin = app.signup("Retention Co").await;
        let employee = app.add_employee(&admin, "Rita Retained").await;
        let bystander = app.signup("Bystander Co").await;
        let root = app.superadmin().await;
        Self {
            app,
            owner,
            admin,
            employee,
            bystander,
            root,
        }
    }

    fn employee_id(&self) -> Uuid {
        helpers::uuid_of(&self.employee)
    }

    async fn seed(&self, company: Uuid, retention: &str, age_hours: i32) -> Uuid {
        seed_event(
            &self.owner,
            company,
            self.employee_id(),
            retention,
            age_hours,
        )
        .await
    }
}

#[tokio::test]
async fn a_plan_change_moves_events_to_the_new_retention_and_keeps_rollups() {
    let w = PlanWorld::new().await;
    let owner = &w.owner;
    let (a, b) = (w.admin.company_id, w.bystander.company_id);
    owner.batch_execute(HISTORY).await.unwrap();

    // Free: 30 days of detail. The 31-day-old event is past retention but still there (its
    // partition goes at the next maintenance, which is held off).
    let hour_old = w.seed(a, "d30", 1).await;
    let days_5 = w.seed(a, "d30", 5 * DAY).await;
    let days_29 = w.seed(a, "d30", 29 * DAY).await;
    let days_31 = w.seed(a, "d30", 31 * DAY).await;
    let bystander_recent = w.seed(b, "d30", 1).await;
    let bystander_old = w.seed(b, "d30", 31 * DAY).await;
    for age in [1, 40 * DAY, 400 * DAY] {
        seed_rollups(owner, a, w.employee_id(), age).await;
    }
    let rollups_before = rollups(owner, a).await;
    let bystander_before = (
        locate(owner, bystander_recent).await,
        locate(owner, bystander_old).await,
    );

    // Free → professional: the last 30 days move to d365; nothing expired comes back.
    w.app.set_plan(&w.root, a, "professional").await;
    for event in [hour_old, days_5, days_29] {
        assert_in(&locate(owner, event).await, "d365", "card_events_d365_p");
    }
    assert_eq!(
        locate(owner, days_31).await,
        None,
        "an event past the free plan's retention came back with the upgrade"
    );

    // A year of professional detail, then professional → free: only the last 30 days stay.
    let days_40 = w.seed(a, "d365", 40 * DAY).await;
    let days_200 = w.seed(a, "d365", 200 * DAY).await;
    let days_364 = w.seed(a, "d365", 364 * DAY).await;
    w.app.set_plan(&w.root, a, "free").await;
    for (event, age) in [(hour_old, 1), (days_5, 5 * DAY), (days_29, 29 * DAY)] {
        assert_in(
            &locate(owner, event).await,
            "d30",
            &d30_partition(owner, age).await,
        );
    }
    for event in [days_40, days_200, days_364] {
        assert_eq!(
            locate(owner, event).await,
            None,
            "kept past the free plan's 30 days"
        );
    }
    let classes: Vec<String> = owner
        .query(
            "SELECT DISTINCT retention FROM card_events WHERE company_id = $1",
            &[&a],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(classes, ["d30"]);

    // Rollups outlive detail, whatever the plan; and the other company was not touched.
    assert_eq!(rollups(owner, a).await, rollups_before);
    assert_eq!(
        (
            locate(owner, bystander_recent).await,
            locate(owner, bystander_old).await
        ),
        bystander_before
    );
    let current = w
        .app
        .get("/api/subscriptions/current", Some(&w.admin.token))
        .await;
    current.assert_status(200);
    assert_eq!(current.body["plan"], "free");
}

#[tokio::test]
async fn moved_events_without_a_partition_wait_in_the_default_partition() {
    let w = PlanWorld::new().await;
    let owner = &w.owner;
    let a = w.admin.company_id;
    // Only the partitions around the migration exist (no history loaded).
    w.app.set_plan(&w.root, a, "enterprise").await;
    let recent = w.seed(a, "forever", 1).await;
    let days_100 = w.seed(a, "forever", 100 * DAY).await;
    let days_400 = w.seed(a, "forever", 400 * DAY).await;
    let years_5 = w.seed(a, "forever", 5 * 365 * DAY).await;
    assert_in(
        &locate(owner, days_100).await,
        "forever",
        "card_events_forever_default",
    );

    // Enterprise → professional: a year stays, in d365; the 100-day-old event has no monthly
    // partition there and waits in the default one.
    w.app.set_plan(&w.root, a, "professional").await;
    assert_in(&locate(owner, recent).await, "d365", "card_events_d365_p");
    assert_in(
        &locate(owner, days_100).await,
        "d365",
        "card_events_d365_default",
    );
    assert_eq!(locate(owner, days_400).await, None);
    assert_eq!(locate(owner, years_5).await, None);

    // Maintenance leaves it there: it is within the year.
    owner.query_one(RELEASE_MAINTENANCE, &[]).await.unwrap();
    let app = connect(&app_role_url(&w.app.dbname)).await;
    let row = app.query_one(MAINTAIN, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(1), 0, "purged events");
    assert_in(
        &locate(owner, days_100).await,
        "d365",
        "card_events_d365_default",
    );
    owner.query_one(HOLD_MAINTENANCE, &[]).await.unwrap();

    // Professional → free → enterprise: 30 days stay, and go back to forever.
    w.app.set_plan(&w.root, a, "free").await;
    assert_eq!(locate(owner, days_100).await, None);
    assert_in(&locate(owner, recent).await, "d30", "card_events_d30_p");
    w.app.set_plan(&w.root, a, "enterprise").await;
    assert_in(
        &locate(owner, recent).await,
        "forever",
        "card_events_forever_p",
    );
    let left: i64 = owner
        .query_one(
            "SELECT count(*) FROM card_events WHERE company_id = $1",
            &[&a],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 1);
}

/// Tracks one `call` on the employee's card from an iPhone; the stored event's id.
async fn track_call(app: &TestApp, employee: &Value) -> Uuid {
    tracked_id(
        &track(
            app,
            &Card::of(employee),
            IPHONE,
            &[],
            json!({"action": "call"}),
        )
        .await,
    )
}

#[tokio::test]
async fn ingestion_stores_events_in_the_current_plans_class() {
    let w = PlanWorld::new().await;
    let owner = &w.owner;
    let a = w.admin.company_id;

    let on_free = track_call(&w.app, &w.employee).await;
    assert_in(&locate(owner, on_free).await, "d30", "card_events_d30_p");
    let row = owner
        .query_one(
            "SELECT company_id, employee_id, action, device FROM card_events WHERE id = $1",
            &[&on_free],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Uuid>(0), a);
    assert_eq!(row.get::<_, Uuid>(1), w.employee_id());
    assert_eq!(row.get::<_, &str>(2), "call");
    assert_eq!(row.get::<_, Option<&str>>(3), Some("mobile"));

    w.app.set_plan(&w.root, a, "enterprise").await;
    assert_in(
        &locate(owner, on_free).await,
        "forever",
        "card_events_forever_p",
    );
    let on_enterprise = track_call(&w.app, &w.employee).await;
    assert_in(
        &locate(owner, on_enterprise).await,
        "forever",
        "card_events_forever_p",
    );

    w.app.set_plan(&w.root, a, "professional").await;
    let on_professional = track_call(&w.app, &w.employee).await;
    for event in [on_free, on_enterprise, on_professional] {
        assert_in(&locate(owner, event).await, "d365", "card_events_d365_p");
    }
}
