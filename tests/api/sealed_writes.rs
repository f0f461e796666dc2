//! A transaction is over once its body returned: a clone of its `TenantTx` that outlived the
//! body (moved into a spawned task, say) cannot send anything after COMMIT, where it would run
//! outside the transaction and its tenant, on a connection about to serve someone else.

use crate::helpers::{connect, fresh_database, member_tenant, superuser_url};
use callingcard::{
    auth::Role,
    db::{Db, DbError},
};
use uuid::Uuid;

/// A session-level setting: one sent after COMMIT would outlive the transaction.
const MARK: &str = "SELECT set_config('test.mark', $1, false), pg_backend_pid()";
const READ_MARK: &str = "SELECT coalesce(current_setting('test.mark', true), ''), pg_backend_pid()";

// A current-thread runtime (the default): the task runs exactly when the write awaits its
// COMMIT, the moment a statement would slip in behind it.
#[tokio::test]
async fn a_clone_used_after_the_write_body_returned_is_refused_and_runs_nothing() {
    let dbname = fresh_database().await;
    let owner = connect(&superuser_url(&dbname)).await;
    let company = Uuid::new_v4();
    owner
        .execute(
            "INSERT INTO companies (id, name, slug) VALUES ($1, 'Sealed', 'sealed')",
            &[&company],
        )
        .await
        .unwrap();
    // One connection: the reads below run on the very connection the write used.
    let db = Db::connect_as_app(&superuser_url(&dbname).parse().unwrap(), None, 1).unwrap();
    let tenant = member_tenant(&owner, company, Role::Admin).await;

    // Every statement prepared on the connection first, so nothing below waits for a PREPARE.
    let warm_up: i32 = db
        .write(&tenant, async |tx| {
            Ok::<_, DbError>(tx.query_one(MARK, [&"inside"]).await?.get(1))
        })
        .await
        .unwrap();

    let (body_over, body_returned) = tokio::sync::oneshot::channel::<()>();
    let late = db
        .write(&tenant, async move |tx| {
            tx.query_one(MARK, [&"inside"]).await?;
            let clone = tx.clone();
            let late = tokio::spawn(async move {
                // Woken when the body's future is dropped, i.e. once the body returned.
                let _ = body_returned.await;
                clone.query_one(MARK, [&"after the body"]).await
            });
            let _running = body_over;
            Ok::<_, DbError>(late)
        })
        .await
        .unwrap();
    let late = late.await.unwrap();
    assert!(matches!(late, Err(DbError::Misuse(_))), "{late:?}");

    let (mark, backend): (String, i32) = db
        .read(&tenant, async |tx| {
            let row = tx.query_one(READ_MARK, []).await?;
            Ok::<_, DbError>((row.get(0), row.get(1)))
        })
        .await
        .unwrap();
    assert_eq!(backend, warm_up, "the connection went back to the pool");
    assert_eq!(mark, "inside", "nothing ran after the transaction");
}
