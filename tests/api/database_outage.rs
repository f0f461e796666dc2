//! When PostgreSQL misbehaves, every request answers a 503 `database_unavailable` (never a 500,
//! never a hang) and the service recovers by itself: a frozen server (SIGSTOP), backends
//! terminated mid-request, a server shutting down under requests, an operation past its deadline.
//! A connection that timed out or was lost is closed, never pooled again.
//!
//! The two tests that freeze or stop the server start a cluster of their own (all the others of
//! the run share one, which they would stall or take down); the rest use the shared cluster and
//! look only at their own database's backends.

use std::time::Duration;

use crate::helpers::{
    self, Response, TestApp, connect, fresh_database, spawn_app_at, spawn_app_with, superuser_url,
    wait_for,
};
use callingcard::{
    auth::Role,
    db::{Db, DbError, embedded::LocalCluster},
    error::ApiError,
    startup::create_database_if_missing,
};
use serde_json::json;
use tokio_postgres::Client;
use uuid::Uuid;

/// Far beyond any deadline of the service: only a hung request takes this long.
const HUNG: Duration = Duration::from_secs(90);

/// `request`, or a failure if it hangs.
async fn answered(request: impl Future<Output = Response>) -> Response {
    tokio::time::timeout(HUNG, request)
        .await
        .expect("the request hung instead of answering")
}

/// The service role's pooled backends on `owner`'s database (not its LISTEN connection).
async fn pooled_backends(owner: &Client) -> Vec<i32> {
    owner
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND usename = 'callingcard_app'
               AND query NOT LIKE 'LISTEN%' ORDER BY pid",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Backends of the service on `owner`'s database waiting for a lock, i.e. requests in flight
/// inside PostgreSQL (on the shared cluster, never another test's). (Ask outside a transaction:
/// inside one, pg_stat_activity keeps showing its first look.)
async fn waiting_on_locks(owner: &Client) -> Vec<i32> {
    owner
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND usename = 'callingcard_app'
               AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The server's processes, stopped until this value is dropped (even by a failing test).
struct Frozen(Vec<libc::pid_t>);

impl Frozen {
    fn freeze(pids: Vec<libc::pid_t>) -> Self {
        assert!(!pids.is_empty(), "no PostgreSQL processes found");
        for &pid in &pids {
            // SAFETY: plain kill(2) on processes of our own cluster.
            assert_eq!(
                unsafe { libc::kill(pid, libc::SIGSTOP) },
                0,
                "SIGSTOP {pid}"
            );
        }
        Self(pids)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

/// What an authenticated user does most: their account, a list, a write; and the public plans.
async fn typical_requests(
    app: &TestApp,
    admin: &helpers::Session,
) -> Vec<(&'static str, Response)> {
    let company = format!("/api/company/{}", admin.company_id);
    let employees = format!("{company}/employees");
    let (me, list, update, plans) = tokio::join!(
        answered(app.get("/api/auth/me", Some(&admin.token))),
        answered(app.get(&employees, Some(&admin.token))),
        answered(app.put(&company, Some(&admin.token), json!({"name": "Renamed"}))),
        answered(app.get("/api/subscriptions/plans", None)),
    );
    vec![
        ("me", me),
        ("list", list),
        ("update", update),
        ("plans", plans),
    ]
}

#[tokio::test]
async fn a_frozen_database_answers_503_within_the_deadline_and_the_service_recovers() {
    // A cluster of this test's own: freezing the shared one would stall every other test. One
    // pooled connection: the frozen one must be replaced, never reused.
    let (cluster, app) =
        app_on_own_cluster(&[("DATABASE_TIMEOUT", "1s"), ("DATABASE_POOL_SIZE", "1")]).await;
    let admin = app.signup("Frozen Co").await;
    app.add_employee(&admin, "Jane Frozen").await;
    for (what, resp) in typical_requests(&app, &admin).await {
        assert!(resp.status.is_success(), "{what} before: {}", resp.body);
    }
    let owner = connect(&cluster.url("callingcard")).await;
    let before = pooled_backends(&owner).await;
    assert_eq!(before.len(), 1, "one pooled connection: {before:?}");

    let frozen = Frozen::freeze(cluster.processes());
    // Twice: first on the pooled connection, then on attempts to open new ones.
    for round in ["on the pooled connection", "on new connections"] {
        for (what, resp) in typical_requests(&app, &admin).await {
            assert_eq!(resp.status.as_u16(), 503, "{what} {round}: {}", resp.body);
            assert_eq!(resp.body["code"], "database_unavailable", "{what} {round}");
            assert!(
                resp.headers.contains_key("retry-after"),
                "{what} {round}: no Retry-After"
            );
        }
    }
    let health = answered(app.get("/api/health", None)).await;
    health.assert_error(503, "database_unavailable");
    drop(frozen);

    wait_for("the service answers again", async || {
        app.get("/api/auth/me", Some(&admin.token)).await.status == 200
    })
    .await;
    for (what, resp) in typical_requests(&app, &admin).await {
        assert!(resp.status.is_success(), "{what} after: {}", resp.body);
    }
    app.get("/api/health", None).await.assert_status(200);
    // The connection that timed out was closed, not put back: its backend ends.
    wait_for("the timed-out connection is closed", async || {
        !pooled_backends(&owner)
            .await
            .iter()
            .any(|pid| before.contains(pid))
    })
    .await;
    // The write sent before the freeze was lost with its connection, the one after went in.
    let company = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(company.body["name"], "Renamed");
    cluster.stop().await.unwrap();
}

/// A cluster of the test's own, and the app on it: for a test that freezes or stops the server.
async fn app_on_own_cluster(vars: &[(&str, &str)]) -> (LocalCluster, TestApp) {
    let cluster = LocalCluster::start_temporary().await.unwrap();
    create_database_if_missing(&cluster.url("postgres"), "callingcard")
        .await
        .unwrap();
    let app = spawn_app_at(&cluster.url("callingcard"), "callingcard", vars).await;
    (cluster, app)
}

#[tokio::test]
async fn a_fast_shutdown_under_requests_answers_503_to_them_and_to_every_request_after() {
    // A deadline far away: only the shutdown can end the request in flight.
    let (cluster, app) = app_on_own_cluster(&[("DATABASE_TIMEOUT", "30s")]).await;
    let admin = app.signup("Shutdown Co").await;
    let owner = connect(&cluster.url("callingcard")).await;
    let observer = connect(&cluster.url("callingcard")).await;
    owner
        .batch_execute("BEGIN; LOCK TABLE employees IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let employees = format!("/api/company/{}/employees", admin.company_id);
    let in_flight = async {
        tokio::join!(
            answered(app.get(&employees, Some(&admin.token))),
            answered(app.post(&employees, Some(&admin.token), json!({"full_name": "Jane"}))),
        )
    };
    let shutdown = async {
        wait_for("both requests wait on the lock", async || {
            waiting_on_locks(&observer).await.len() == 2
        })
        .await;
        // SIGINT to the postmaster: 57P01 to every backend, then 57P03 to new connections
        // while it shuts down, then nothing listening.
        cluster.stop().await.unwrap();
    };
    let ((list, create), ()) = tokio::join!(in_flight, shutdown);
    // A fast shutdown signals every backend at once: the lock holder's may exit first, and a
    // waiting backend granted the lock can finish its short statement before it sees its own
    // signal (seen once on a loaded machine). So a request in flight either completes or gets
    // 503, never a hang, a 500 or a broken answer; every request after gets 503.
    for (resp, done) in [(&list, 200), (&create, 201)] {
        if resp.status.as_u16() != done {
            resp.assert_error(503, "database_unavailable");
        }
    }
    for (what, resp) in typical_requests(&app, &admin).await {
        assert_eq!(
            resp.status.as_u16(),
            503,
            "{what} once stopped: {}",
            resp.body
        );
        assert_eq!(resp.body["code"], "database_unavailable", "{what}");
    }
}

#[tokio::test]
async fn requests_whose_backend_is_terminated_answer_503_and_the_next_ones_work() {
    // A deadline far away: only the termination can end the requests.
    let app = spawn_app_with(&[("DATABASE_TIMEOUT", "30s")]).await;
    let admin = app.signup("Terminated Co").await;
    let employee = helpers::uuid_of(&app.add_employee(&admin, "Jane Terminated").await);
    let owner = connect(&superuser_url(&app.dbname)).await;
    let observer = connect(&superuser_url(&app.dbname)).await;
    // Holding this lock keeps the requests below inside PostgreSQL until their backend is gone.
    owner
        .batch_execute("BEGIN; LOCK TABLE employees IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let path = format!("/api/employees/{employee}");
    let list = format!("/api/company/{}/employees", admin.company_id);
    let requests = async {
        tokio::join!(
            answered(app.get(&path, Some(&admin.token))),
            answered(app.get(&list, Some(&admin.token))),
            answered(app.put(&path, Some(&admin.token), json!({"job_title": "Lost"}))),
        )
    };
    let terminate = async {
        wait_for("three requests wait on the lock", async || {
            waiting_on_locks(&observer).await.len() == 3
        })
        .await;
        // What an administrator (or a failover) does: 57P01 admin_shutdown on each backend.
        for pid in waiting_on_locks(&observer).await {
            observer
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .unwrap();
        }
    };
    let ((get, list_resp, put), ()) = tokio::join!(requests, terminate);
    for (what, resp) in [("get", get), ("list", list_resp), ("put", put)] {
        assert_eq!(resp.status.as_u16(), 503, "{what}: {}", resp.body);
        assert_eq!(resp.body["code"], "database_unavailable", "{what}");
    }
    owner.batch_execute("ROLLBACK").await.unwrap();

    // The terminated connections were not pooled again: the next requests work.
    let after = app.get(&path, Some(&admin.token)).await;
    after.assert_status(200);
    assert_eq!(
        after.body["job_title"], "Engineer",
        "the terminated write was not applied"
    );
    app.get(&list, Some(&admin.token)).await.assert_status(200);
    app.put(&path, Some(&admin.token), json!({"job_title": "Kept"}))
        .await
        .assert_status(200);
}

/// The backend serving the pool's next read.
async fn next_backend(db: &Db) -> i32 {
    db.read_public(async |tx| tx.query_one("SELECT pg_backend_pid()", []).await)
        .await
        .expect("the next read works")
        .get(0)
}

#[tokio::test]
async fn an_operation_past_its_deadline_answers_503_and_its_connection_is_discarded() {
    let dbname = fresh_database().await;
    let owner = connect(&superuser_url(&dbname)).await;
    let company = Uuid::new_v4();
    owner
        .execute(
            "INSERT INTO companies (id, name, slug) VALUES ($1, 'Slow', 'slow')",
            &[&company],
        )
        .await
        .unwrap();
    // One connection, so that a reused one would serve the next read.
    let db = Db::connect_as_app(&superuser_url(&dbname).parse().unwrap(), None, 1)
        .unwrap()
        .with_deadline(Duration::from_millis(200));
    let tenant = helpers::member_tenant(&owner, company, Role::Admin).await;
    let sleep = "SELECT pg_sleep($1::float8)";
    // Prepared first, so that the slow read is one pipeline that does not answer in time.
    db.read(&tenant, async |tx| tx.query_one(sleep, [&0.0f64]).await)
        .await
        .unwrap();
    let first = next_backend(&db).await;
    let result = db
        .read(&tenant, async |tx| tx.query_one(sleep, [&2.0f64]).await)
        .await;
    assert!(matches!(result, Err(DbError::Timeout(_))), "{result:?}");
    let err = ApiError::from(result.unwrap_err());
    assert_eq!(
        (err.status().as_u16(), err.code()),
        (503, "database_unavailable")
    );
    let second = next_backend(&db).await;
    assert_ne!(
        second, first,
        "a timed-out connection went back to the pool"
    );

    // A write too: its connection is not reused and nothing of it is committed.
    let result = db
        .write(&tenant, async |tx| {
            tx.execute(
                "UPDATE companies SET name = 'Renamed' WHERE id = $1",
                [&company],
            )
            .await?;
            tx.query_one("SELECT pg_sleep(2)", []).await?;
            Ok::<_, DbError>(())
        })
        .await;
    assert!(matches!(result, Err(DbError::Timeout(_))), "{result:?}");
    assert_ne!(
        next_backend(&db).await,
        second,
        "a timed-out connection went back to the pool"
    );
    let backends_gone = async || {
        let alive: Vec<i32> = owner
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        !alive.contains(&first) && !alive.contains(&second)
    };
    wait_for("the timed-out connections are closed", backends_gone).await;
    let name: String = owner
        .query_one("SELECT name FROM companies WHERE id = $1", &[&company])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "Slow");
}
