//! A pooled connection is always clean for the next request: whatever happened to the previous
//! transaction on it (an error on the server or in the client, a rollback, a future dropped
//! half-way, a misused read), the next one starts with no tenant, outside any transaction.
//!
//! Most tests use a pool of ONE connection, so the next operation runs on the very same
//! connection, or on a fresh replacement when the previous one had to be discarded.

use std::{
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::Duration,
};

use crate::helpers::{self, connect, fresh_database, member_tenant, spawn_app_with, superuser_url};
use callingcard::{
    auth::Role,
    db::{Db, DbError, SessionRefusal, Tenant},
    error::ApiError,
};
use serde_json::json;
use tokio_postgres::{Client, error::SqlState};
use uuid::Uuid;

struct Fixture {
    dbname: String,
    /// Superuser: bypasses row-level security.
    owner: Client,
    /// The service role's pool, of one connection.
    db: Db,
    a: Uuid,
    b: Uuid,
    /// An admin of A and an employee login of B, each with a live session, as the bearer guard
    /// would make their tenants.
    admin_a: Tenant,
    employee_b: Tenant,
}

impl Fixture {
    fn tenant_a(&self) -> Tenant {
        self.admin_a
    }

    /// The next tenant on the pool, B, works as itself and sees its own employee only.
    async fn assert_b_reads_its_own(&self, context: &str) {
        let tenant = self.employee_b;
        let row = self
            .db
            .read(&tenant, async |tx| {
                tx.query_one(
                    "SELECT current_setting('app.company_id'), current_setting('app.role'),
                            count(*), count(*) FILTER (WHERE company_id <> $1)
                     FROM employees",
                    [&self.b],
                )
                .await
            })
            .await
            .unwrap_or_else(|e| panic!("{context}: B's read failed: {e}"));
        let seen: (String, String, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!(
            seen,
            (self.b.to_string(), "employee".to_owned(), 1, 0),
            "{context}"
        );
    }

    /// Employees of `company` named `name`, counted by the superuser.
    async fn employees_named(&self, company: Uuid, name: &str) -> i64 {
        self.owner
            .query_one(
                "SELECT count(*) FROM employees WHERE company_id = $1 AND full_name = $2",
                &[&company, &name],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// The service role's backends on this database: (pid, state, backend_xid is set).
    async fn app_backends(&self) -> Vec<(i32, String, bool)> {
        self.owner
            .query(
                "SELECT pid, coalesce(state, ''), backend_xid IS NOT NULL FROM pg_stat_activity
                 WHERE datname = $1 AND usename = 'callingcard_app' ORDER BY pid",
                &[&self.dbname],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    /// The pool's only connection is `pid`, idle: not inside a transaction.
    async fn assert_idle(&self, pid: i32, context: &str) {
        assert_eq!(
            self.app_backends().await,
            [(pid, "idle".to_owned(), false)],
            "{context}"
        );
    }

    /// Runs `operation` until one of the pool's backends runs `pg_sleep`, then drops it; its
    /// result if it ended first.
    async fn until_sleeping<T>(&self, operation: impl Future<Output = T>) -> Option<T> {
        let sleeping = helpers::wait_for("the operation's pg_sleep runs", async || {
            self.owner
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = $1 AND usename = 'callingcard_app'
                       AND state = 'active' AND query LIKE '%pg_sleep%'",
                    &[&self.dbname],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
                > 0
        });
        tokio::select! {
            result = operation => Some(result),
            () = sleeping => None,
        }
    }

    /// Waits until backend `pid` has ended (a discarded connection closes once the server has
    /// answered what was already sent on it).
    async fn wait_until_gone(&self, pid: i32, context: &str) {
        for _ in 0..300 {
            if !self.app_backends().await.iter().any(|(p, _, _)| *p == pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{context}: backend {pid} is still there: {:?}",
            self.app_backends().await
        );
    }
}

async fn seed_company(owner: &Client, slug: &str, employees: usize) -> Uuid {
    let id = Uuid::new_v4();
    owner
        .execute(
            "INSERT INTO companies (id, name, slug) VALUES ($1, $2, $2)",
            &[&id, &slug],
        )
        .await
        .unwrap();
    owner
        .execute(
            "INSERT INTO subscriptions (company_id, plan) VALUES ($1, 'free')",
            &[&id],
        )
        .await
        .unwrap();
    for i in 0..employees {
        owner
            .execute(
                "INSERT INTO employees (company_id, id, full_name, public_slug) VALUES ($1, $2, $3, $4)",
                &[&id, &Uuid::new_v4(), &format!("Employee {i} of {slug}"), &format!("employee-{i}")],
            )
            .await
            .unwrap();
    }
    id
}

async fn fixture_with_pool(size: usize) -> Fixture {
    let dbname = fresh_database().await;
    let owner = connect(&superuser_url(&dbname)).await;
    let a = seed_company(&owner, "alpha", 2).await;
    let b = seed_company(&owner, "beta", 1).await;
    let db = Db::connect_as_app(&superuser_url(&dbname).parse().unwrap(), None, size).unwrap();
    let admin_a = member_tenant(&owner, a, Role::Admin).await;
    let employee_b = member_tenant(&owner, b, Role::Employee).await;
    Fixture {
        dbname,
        owner,
        db,
        a,
        b,
        admin_a,
        employee_b,
    }
}

async fn fixture() -> Fixture {
    fixture_with_pool(1).await
}

/// What the next transaction on the pool finds.
#[derive(Debug)]
struct Probe {
    pid: i32,
    company: Option<String>,
    role: Option<String>,
    /// Employees visible (0 without a tenant).
    employees: i64,
    /// A transaction id: set only if the transaction has written something.
    xid: Option<String>,
    /// `on` in a fresh `BEGIN READ ONLY`.
    read_only: String,
    /// Set by some bodies below, to show whether their statements outlived them.
    marker: Option<String>,
}

const PROBE: &str = "SELECT pg_backend_pid(), current_setting('app.company_id', true),
        current_setting('app.role', true), (SELECT count(*) FROM employees),
        pg_current_xact_id_if_assigned()::text, current_setting('transaction_read_only'),
        current_setting('test.marker', true)";

/// Sets a transaction-local marker: visible to the next transaction only if this one never ended.
const MARK_TRANSACTION: &str = "SELECT set_config('test.marker', 'left over', true)";

async fn probe(db: &Db) -> Probe {
    let row = db
        .read_public(async |tx| tx.query_one(PROBE, []).await)
        .await
        .expect("the next read works");
    Probe {
        pid: row.get(0),
        company: row.get(1),
        role: row.get(2),
        employees: row.get(3),
        xid: row.get(4),
        read_only: row.get(5),
        marker: row.get(6),
    }
}

/// The next read on the pool starts clean; its backend's pid.
async fn assert_next_read_clean(db: &Db, context: &str) -> i32 {
    let p = probe(db).await;
    let unset = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
    assert!(unset(&p.company), "{context}: a tenant survived: {p:?}");
    assert!(unset(&p.role), "{context}: a role survived: {p:?}");
    assert!(
        unset(&p.marker),
        "{context}: a statement of the previous transaction survived: {p:?}"
    );
    assert_eq!(
        p.employees, 0,
        "{context}: rows visible without a tenant: {p:?}"
    );
    assert_eq!(
        p.xid, None,
        "{context}: inside a transaction that wrote: {p:?}"
    );
    assert_eq!(
        p.read_only, "on",
        "{context}: not in a fresh read-only transaction: {p:?}"
    );
    p.pid
}

/// A new employee of company `$1` named `$2`.
const INSERT_EMPLOYEE: &str = "INSERT INTO employees (company_id, id, full_name, public_slug)
     VALUES ($1, gen_random_uuid(), $2, 'x-' || left(md5(random()::text), 12))";

#[tokio::test]
async fn read_failing_on_the_server_leaves_the_connection_clean() {
    let f = fixture().await;
    let pid = assert_next_read_clean(&f.db, "before").await;
    let result =
        f.db.read(&f.tenant_a(), async |tx| {
            let (marked, divided) = tokio::join!(
                tx.query_one(MARK_TRANSACTION, []),
                tx.query_one("SELECT 1/0", [])
            );
            marked?;
            divided
        })
        .await;
    let err = result.expect_err("1/0 must fail");
    assert_eq!(
        err.as_db_error().map(|e| e.code()),
        Some(&SqlState::DIVISION_BY_ZERO),
        "{err:?}"
    );
    f.assert_idle(pid, "after a read failing on the server")
        .await;
    let next = assert_next_read_clean(&f.db, "after a read failing on the server").await;
    f.assert_b_reads_its_own("after a read failing on the server")
        .await;
    assert_eq!(
        next, pid,
        "a cleanly ended transaction keeps its connection"
    );
}

#[tokio::test]
async fn read_failing_in_the_client_leaves_the_connection_clean() {
    let f = fixture().await;
    let pid = assert_next_read_clean(&f.db, "before").await;
    let result: Result<i32, DbError> =
        f.db.read(&f.tenant_a(), async |tx| {
            let (marked, row) = tokio::join!(
                tx.query_one(MARK_TRANSACTION, []),
                tx.query_one(
                    "SELECT full_name FROM employees ORDER BY full_name LIMIT 1",
                    []
                ),
            );
            marked?;
            // A text column decoded as an integer.
            Ok(row?.try_get::<_, i32>("full_name")?)
        })
        .await;
    let err = result.expect_err("decoding text as i32 must fail");
    assert!(
        matches!(err, DbError::Postgres(_)) && err.as_db_error().is_none(),
        "not a client-side error: {err:?}"
    );
    f.assert_idle(pid, "after a read failing in the client")
        .await;
    let next = assert_next_read_clean(&f.db, "after a read failing in the client").await;
    f.assert_b_reads_its_own("after a read failing in the client")
        .await;
    assert_eq!(next, pid);
}

#[tokio::test]
async fn write_whose_body_fails_after_an_insert_rolls_back() {
    let f = fixture().await;
    let pid = assert_next_read_clean(&f.db, "before").await;
    let inserted = AtomicU64::new(0);
    let result: Result<(), ApiError> =
        f.db.write(&f.tenant_a(), async |tx| {
            inserted.store(
                tx.execute(INSERT_EMPLOYEE, [&f.a, &"Rolled Back"]).await?,
                Ordering::SeqCst,
            );
            tx.query_one(MARK_TRANSACTION, []).await?;
            Err(ApiError::conflict(
                "test_failure",
                "the body gives up after its insert",
            ))
        })
        .await;
    let err = result.expect_err("the body's error comes back");
    assert_eq!(err.code(), "test_failure");
    assert_eq!(
        inserted.load(Ordering::SeqCst),
        1,
        "the insert itself succeeded"
    );
    assert_eq!(
        f.employees_named(f.a, "Rolled Back").await,
        0,
        "the insert was committed"
    );
    f.assert_idle(pid, "after a write whose body failed").await;
    let next = assert_next_read_clean(&f.db, "after a write whose body failed").await;
    f.assert_b_reads_its_own("after a write whose body failed")
        .await;
    assert_eq!(next, pid);
}

#[tokio::test]
async fn write_whose_statement_fails_on_the_server_rolls_back() {
    let f = fixture().await;
    let pid = assert_next_read_clean(&f.db, "before").await;
    let result: Result<(), DbError> =
        f.db.write(&f.tenant_a(), async |tx| {
            tx.execute(INSERT_EMPLOYEE, [&f.a, &"First Of Two"]).await?;
            tx.query_one(MARK_TRANSACTION, []).await?;
            // Violates employees_full_name_length.
            tx.execute(INSERT_EMPLOYEE, [&f.a, &""]).await?;
            Ok(())
        })
        .await;
    let err = result.expect_err("the check constraint must fail");
    let db_err = err
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {err:?}"));
    assert_eq!(db_err.code(), &SqlState::CHECK_VIOLATION);
    assert_eq!(db_err.constraint(), Some("employees_full_name_length"));
    assert_eq!(
        f.employees_named(f.a, "First Of Two").await,
        0,
        "half a transaction was committed"
    );
    f.assert_idle(pid, "after a write failing on the server")
        .await;
    let next = assert_next_read_clean(&f.db, "after a write failing on the server").await;
    f.assert_b_reads_its_own("after a write failing on the server")
        .await;
    assert_eq!(next, pid);
}

/// PostgreSQL answers COMMIT in a failed transaction with a successful ROLLBACK. A write whose
/// body handled a failed statement and returned Ok must not report its rolled-back work as done.
#[tokio::test]
async fn write_that_ignores_a_failed_statement_does_not_report_success() {
    let f = fixture().await;
    let result: Result<(), DbError> =
        f.db.write(&f.tenant_a(), async |tx| {
            tx.execute(INSERT_EMPLOYEE, [&f.a, &"Kept Or Reported"])
                .await?;
            // E.g. an "optional" statement whose failure the handler chooses to tolerate.
            let refused = tx.execute(INSERT_EMPLOYEE, [&f.a, &""]).await;
            assert!(
                refused.is_err(),
                "the second insert violates a check constraint"
            );
            Ok(())
        })
        .await;
    let persisted = f.employees_named(f.a, "Kept Or Reported").await;
    assert!(
        result.is_err() || persisted == 1,
        "Db::write returned {result:?} but its first insert was rolled back (persisted: {persisted})"
    );
    assert_next_read_clean(&f.db, "after a write that ignored a failed statement").await;
}

#[tokio::test]
async fn read_dropped_half_way_discards_its_connection() {
    let f = fixture().await;
    let pid = assert_next_read_clean(&f.db, "before").await;
    let sleep = "SELECT pg_sleep($1::float8)";
    // Prepare the statements first, so that the dropped read does not stop between its run that
    // prepares them and its run that uses them (the connection is idle in the pool then).
    f.db.read(&f.tenant_a(), async |tx| {
        let (marked, slept) = tokio::join!(
            tx.query_one(MARK_TRANSACTION, []),
            tx.query_one(sleep, [&0.0f64])
        );
        marked?;
        slept
    })
    .await
    .unwrap();
    // Dropped once PostgreSQL runs its sleep: half-way, whatever the machine's speed.
    let dropped = f
        .until_sleeping(f.db.read(&f.tenant_a(), async |tx| {
            let (marked, slept) = tokio::join!(
                tx.query_one(MARK_TRANSACTION, []),
                tx.query_one(sleep, [&3.0f64])
            );
            marked?;
            slept
        }))
        .await;
    assert!(
        dropped.is_none(),
        "the read should still be sleeping: {dropped:?}"
    );
    let next = assert_next_read_clean(&f.db, "after a dropped read").await;
    f.assert_b_reads_its_own("after a dropped read").await;
    assert_ne!(
        next, pid,
        "a connection dropped inside a transaction went back to the pool"
    );
    assert_eq!(
        f.db.pool_status().size,
        1,
        "the pool replaced the connection"
    );
    f.wait_until_gone(pid, "the dropped read's connection")
        .await;
    f.assert_idle(next, "after the dropped read").await;
}

#[tokio::test]
async fn write_dropped_half_way_discards_its_connection_and_persists_nothing() {
    let f = fixture().await;
    let pid = assert_next_read_clean(&f.db, "before").await;
    let dropped = f
        .until_sleeping(f.db.write(&f.tenant_a(), async |tx| {
            tx.execute(INSERT_EMPLOYEE, [&f.a, &"Half Written"]).await?;
            tx.query_one(MARK_TRANSACTION, []).await?;
            tx.query_one("SELECT pg_sleep(3)", []).await?;
            Ok::<_, DbError>(())
        }))
        .await;
    assert!(
        dropped.is_none(),
        "the write should still be sleeping: {dropped:?}"
    );
    let next = assert_next_read_clean(&f.db, "after a dropped write").await;
    f.assert_b_reads_its_own("after a dropped write").await;
    assert_ne!(
        next, pid,
        "a connection dropped inside a transaction went back to the pool"
    );
    f.wait_until_gone(pid, "the dropped write's connection")
        .await;
    assert_eq!(
        f.employees_named(f.a, "Half Written").await,
        0,
        "a dropped write was committed"
    );
    f.assert_idle(next, "after the dropped write").await;
    // The replacement connection writes normally.
    let written =
        f.db.write(&f.tenant_a(), async |tx| {
            tx.execute(INSERT_EMPLOYEE, [&f.a, &"Written Later"]).await
        })
        .await
        .unwrap();
    assert_eq!(written, 1);
    assert_eq!(f.employees_named(f.a, "Written Later").await, 1);
}

#[tokio::test]
async fn read_awaiting_between_queries_is_refused_and_sends_nothing_more() {
    let f = fixture().await;
    let pid = assert_next_read_clean(&f.db, "before").await;
    // A session-level setting: if this ran at all, it would outlive the transaction.
    let leak = "SELECT set_config('test.marker', 'ran outside the transaction', false)";
    let result =
        f.db.read(&f.tenant_a(), async |tx| {
            let first = tx.query_one("SELECT count(*) FROM employees", []).await?;
            assert_eq!(first.get::<_, i64>(0), 2, "the first query ran as tenant A");
            tx.query_one(leak, []).await
        })
        .await;
    assert!(matches!(result, Err(DbError::Misuse(_))), "{result:?}");
    f.assert_idle(pid, "after a misused read").await;
    assert_eq!(
        assert_next_read_clean(&f.db, "after a misused read").await,
        pid
    );

    // The same with some other await before the first query.
    let result =
        f.db.read(&f.tenant_a(), async |tx| {
            tokio::task::yield_now().await;
            tx.query_one(leak, []).await
        })
        .await;
    assert!(matches!(result, Err(DbError::Misuse(_))), "{result:?}");
    assert_eq!(
        assert_next_read_clean(&f.db, "after a read that awaited first").await,
        pid
    );
    f.assert_b_reads_its_own("after a read that awaited first")
        .await;
}

#[tokio::test]
async fn read_is_read_only() {
    let f = fixture().await;
    let pid = assert_next_read_clean(&f.db, "before").await;
    let result =
        f.db.read(&f.tenant_a(), async |tx| {
            tx.execute(INSERT_EMPLOYEE, [&f.a, &"Read Writer"]).await
        })
        .await;
    let err = result.expect_err("an INSERT inside a read must fail");
    assert_eq!(
        err.as_db_error().map(|e| e.code()),
        Some(&SqlState::READ_ONLY_SQL_TRANSACTION),
        "{err:?}"
    );
    assert_eq!(f.employees_named(f.a, "Read Writer").await, 0);
    f.assert_idle(pid, "after a read that tried to write").await;
    assert_eq!(
        assert_next_read_clean(&f.db, "after a read that tried to write").await,
        pid
    );
    f.assert_b_reads_its_own("after a read that tried to write")
        .await;
}

#[tokio::test]
async fn first_read_of_new_statements_on_a_new_connection_returns_the_right_data() {
    let f = fixture().await;
    let expected: Vec<String> = f
        .owner
        .query(
            "SELECT full_name FROM employees WHERE company_id = $1 ORDER BY full_name",
            &[&f.a],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(expected.len(), 2);
    let runs = AtomicUsize::new(0);
    let read = async || {
        f.db.read(&f.tenant_a(), async |tx| {
            runs.fetch_add(1, Ordering::SeqCst);
            let (names, tenant) = tokio::join!(
                tx.query(
                    "SELECT full_name FROM employees ORDER BY full_name /* never prepared */",
                    []
                ),
                tx.query_one(
                    "SELECT current_setting('app.company_id') /* never prepared either */",
                    []
                ),
            );
            let names: Vec<String> = names?.iter().map(|r| r.get(0)).collect();
            Ok::<_, DbError>((names, tenant?.get::<_, String>(0)))
        })
        .await
        .unwrap()
    };
    let (names, tenant) = read().await;
    assert_eq!(
        names, expected,
        "the first read must return tenant A's employees"
    );
    assert_eq!(
        tenant,
        f.a.to_string(),
        "the first read must run as tenant A"
    );
    assert_eq!(
        runs.swap(0, Ordering::SeqCst),
        2,
        "one run to prepare, one to read"
    );
    let (names, tenant) = read().await;
    assert_eq!((names, tenant), (expected, f.a.to_string()));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "prepared statements are reused"
    );
    assert_next_read_clean(&f.db, "after the first reads").await;
}

/// The pool hands out its least recently used connection first: a read retried after preparing
/// its statement must stay on that connection, or with three idle connections none of which has
/// prepared it, every run misses its prepare and the read fails as a "misuse".
#[tokio::test]
async fn first_read_of_a_new_statement_on_a_warm_pool_succeeds() {
    let f = fixture_with_pool(3).await;
    // Three reads at once: the pool opens three connections, each ending with PROBE prepared.
    tokio::join!(probe(&f.db), probe(&f.db), probe(&f.db));
    let status = f.db.pool_status();
    assert_eq!((status.size, status.available), (3, 3));

    let result =
        f.db.read(&f.tenant_a(), async |tx| {
            tx.query_one(
                "SELECT count(*) FROM employees /* new statement on a warm pool */",
                [],
            )
            .await
        })
        .await;
    let row = result.expect("a read of a statement new to every pooled connection");
    assert_eq!(row.get::<_, i64>(0), 2, "tenant A has two employees");
}

#[tokio::test]
async fn failed_requests_leave_the_pool_clean_for_the_next_tenant() {
    let app = spawn_app_with(&[("DATABASE_POOL_SIZE", "1")]).await;
    let a = app.signup("Alpha Failing").await;
    let b = app.signup("Beta Watching").await;
    let b_employee = helpers::uuid_of(&app.add_employee(&b, "Bea Beta").await);
    let mut a_employees = vec![
        helpers::uuid_of(&app.add_employee(&a, "Al One").await),
        helpers::uuid_of(&app.add_employee(&a, "Al Two").await),
    ];
    a_employees.sort();

    let b_sees_only_its_own = async |context: &str| {
        let list = app
            .get(
                &format!("/api/company/{}/employees", b.company_id),
                Some(&b.token),
            )
            .await;
        list.assert_status(200);
        let employees = list
            .body
            .as_array()
            .unwrap_or_else(|| panic!("{context}: {}", list.body));
        assert_eq!(employees.len(), 1, "{context}: {}", list.body);
        assert_eq!(helpers::uuid_of(&employees[0]), b_employee, "{context}");
        assert_eq!(employees[0]["company_id"], json!(b.company_id), "{context}");
        assert_eq!(employees[0]["full_name"], "Bea Beta", "{context}");
        assert_eq!(list.headers["x-total-count"], "1", "{context}");
        let me = app.get("/api/auth/me", Some(&b.token)).await;
        me.assert_status(200);
        assert_eq!(me.body["company_id"], json!(b.company_id), "{context}");
        let plans = app.get("/api/subscriptions/plans", None).await;
        plans.assert_status(200);
        assert_eq!(
            plans.body.as_array().map(Vec::len),
            Some(3),
            "{context}: {}",
            plans.body
        );
    };
    b_sees_only_its_own("before").await;

    let employees_of_a = format!("/api/company/{}/employees", a.company_id);
    let users_of_a = format!("/api/company/{}/users", a.company_id);
    let b_path = format!("/api/employees/{b_employee}");
    let login = |email: &str, employee_id: Option<Uuid>| {
        json!({"email": email, "password": "sturdy-pelican-ferns-31", "full_name": "New Login",
               "role": "employee", "employee_id": employee_id})
    };

    // The free plan is full: the plan row is locked inside the transaction, then it gives up.
    app.post(
        &employees_of_a,
        Some(&a.token),
        json!({"full_name": "Al Three"}),
    )
    .await
    .assert_error(402, "plan_limit_reached");
    b_sees_only_its_own("after a 402 from inside a write").await;
    // A foreign key refused by the server: another company's employee is not ours to link.
    app.post(
        &users_of_a,
        Some(&a.token),
        login("linked@example.com", Some(b_employee)),
    )
    .await
    .assert_error(422, "employee_not_found");
    b_sees_only_its_own("after a foreign-key violation").await;
    // A unique index refused by the server.
    app.post(&users_of_a, Some(&a.token), login(&b.email, None))
        .await
        .assert_error(409, "email_taken");
    b_sees_only_its_own("after a unique violation").await;
    // Bad UUIDs, in the path and in the body.
    app.get("/api/employees/not-a-uuid", Some(&a.token))
        .await
        .assert_error(422, "invalid_parameter");
    let mut bad_body = login("bad-uuid@example.com", None);
    bad_body["employee_id"] = json!("not-a-uuid");
    app.post(&users_of_a, Some(&a.token), bad_body)
        .await
        .assert_error(422, "validation_error");
    b_sees_only_its_own("after bad UUIDs").await;
    // B's employee, addressed by A: invisible, so not found, and untouched.
    app.get(&b_path, Some(&a.token))
        .await
        .assert_error(404, "not_found");
    app.put(&b_path, Some(&a.token), json!({"full_name": "Mallory"}))
        .await
        .assert_error(404, "not_found");
    app.delete(&b_path, Some(&a.token))
        .await
        .assert_error(404, "not_found");
    app.get(
        &format!("/api/company/{}/employees", b.company_id),
        Some(&a.token),
    )
    .await
    .assert_error(404, "not_found");
    b_sees_only_its_own("after A addressed B's employee").await;
    // Refused after parsing, before the database.
    app.put(
        &format!("/api/company/{}", a.company_id),
        Some(&a.token),
        json!({"brand_color": "red"}),
    )
    .await
    .assert_error(422, "validation_error");
    b_sees_only_its_own("after a validation error").await;

    // A still sees exactly its two employees; nothing of the failed requests was persisted.
    let list = app.get(&employees_of_a, Some(&a.token)).await;
    list.assert_status(200);
    let mut ids: Vec<Uuid> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(helpers::uuid_of)
        .collect();
    ids.sort();
    assert_eq!(ids, a_employees);
    let owner = connect(&superuser_url(&app.dbname)).await;
    let counts = owner
        .query_one(
            "SELECT (SELECT count(*) FROM employees WHERE company_id = $1),
                    (SELECT count(*) FROM cards WHERE company_id = $1),
                    (SELECT count(*) FROM users WHERE company_id = $1),
                    (SELECT count(*) FROM employees WHERE company_id = $2 AND full_name = 'Bea Beta')",
            &[&a.company_id, &b.company_id],
        )
        .await
        .unwrap();
    let counts: (i64, i64, i64, i64) = (counts.get(0), counts.get(1), counts.get(2), counts.get(3));
    assert_eq!(
        counts,
        (2, 2, 1, 1),
        "(A's employees, A's cards, A's logins, B's untouched employee)"
    );
}

#[tokio::test]
async fn a_session_refusing_a_transaction_leaves_its_connection_pooled_and_clean() {
    let f = fixture().await;
    let pid = assert_next_read_clean(&f.db, "before").await;
    // A's admin is disabled, then its role changed: both refuse before any statement runs.
    for (change, refusal, code) in [
        (
            "UPDATE users SET is_active = false WHERE company_id = $1",
            SessionRefusal::Ended,
            "session_ended",
        ),
        (
            "UPDATE users SET is_active = true, role = 'employee' WHERE company_id = $1",
            SessionRefusal::RoleChanged,
            "token_outdated",
        ),
    ] {
        f.owner.execute(change, &[&f.a]).await.unwrap();
        let read =
            f.db.read(&f.tenant_a(), async |tx| {
                tx.query_one("SELECT count(*) FROM employees", []).await
            })
            .await;
        assert!(
            matches!(read, Err(DbError::SessionEnded(r)) if r == refusal),
            "{read:?}"
        );
        let written =
            f.db.write(&f.tenant_a(), async |tx| {
                tx.execute(INSERT_EMPLOYEE, [&f.a, &"Refused Writer"]).await
            })
            .await;
        let err = written.unwrap_err();
        assert!(
            matches!(err, DbError::SessionEnded(r) if r == refusal),
            "{err:?}"
        );
        let answer = ApiError::from(err);
        assert_eq!((answer.status().as_u16(), answer.code()), (401, code));
        assert_eq!(f.employees_named(f.a, "Refused Writer").await, 0);
        // The same connection, idle and clean: refusals cost no connection.
        assert_eq!(
            assert_next_read_clean(&f.db, code).await,
            pid,
            "{code}: the connection was replaced"
        );
        f.assert_b_reads_its_own(code).await;
    }
}
