//! Schema migrations from `sql/`, applied with the owner's connection.

use anyhow::Context;
use tokio_postgres::NoTls;

use super::APP_ROLE;

refinery::embed_migrations!("sql");

/// Applies pending migrations, one instance at a time, and sets the service role's password
/// when one is configured (passwords never live in migrations).
pub async fn run(owner: &tokio_postgres::Config, app_password: Option<&str>) -> anyhow::Result<()> {
    let (mut client, connection) = owner
        .connect(NoTls)
        .await
        .context("connecting as the database owner")?;
    let connection = tokio::spawn(connection);
    // Instances starting together must not apply the same migration twice.
    client
        .batch_execute("SELECT pg_advisory_lock(7245190318)")
        .await
        .context("taking the migration lock")?;
    let report = migrations::runner().run_async(&mut client).await;
    let unlock = client
        .batch_execute("SELECT pg_advisory_unlock(7245190318)")
        .await;
    let report = report.context("applying migrations")?;
    unlock?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    if let Some(password) = app_password {
        let sql = format!("ALTER ROLE {APP_ROLE} PASSWORD {}", quote_literal(password));
        client
            .batch_execute(&sql)
            .await
            .context("setting the service role's password")?;
    }
    drop(client);
    let _ = connection.await;
    Ok(())
}

/// A SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1).
fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes() {
        assert_eq!(super::quote_literal("it's"), "'it''s'");
    }
}
