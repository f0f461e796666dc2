//! Measures the bulk import of employees through the API: a CSV file of generated rows into a
//! company on the unlimited plan, first creating them all, then the same file again (every row
//! unchanged), then a file changing each row's job title (every row updated).
//!
//!     cargo bench --bench import                    # 10,000 rows
//!     BENCH_ROWS=2000 cargo bench --bench import
//!
//! Everything runs on this machine: a throwaway PostgreSQL cluster, the service on a loopback
//! port, and the client in this process.

use std::time::Instant;

mod support;

use callingcard::{config::Config, db::embedded::LocalCluster, startup::Application};
use serde_json::{Value, json};
use support::env_or;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; anything else (e.g. `cargo test --all-targets`) only builds it.
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let rows: usize = env_or("BENCH_ROWS", 10_000);
    let cluster = LocalCluster::start_temporary().await?;
    callingcard::startup::create_database_if_missing(&cluster.url("postgres"), "bench").await?;
    let base = spawn(&cluster.url("bench")).await?;
    let client = reqwest::Client::new();
    let signup: Value = client
        .post(format!("{base}/api/auth/signup"))
        .json(
            &json!({"company_name": "Import Bench", "email": "bench@import.test",
                      "password": "violet-anchor-drizzle-58", "full_name": "Bench Admin"}),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = signup["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let company_id = signup["company_id"].as_str().unwrap_or_default().to_owned();
    // Past the free plan's limit, as the database owner.
    let (owner, connection) =
        tokio_postgres::connect(&cluster.url("bench"), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    owner
        .execute(
            "UPDATE subscriptions SET plan = 'enterprise' WHERE company_id = $1::text::uuid AND active",
            &[&company_id],
        )
        .await?;

    println!("\nEmployee import, {rows} rows of CSV in one request\n");
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>12}",
        "scenario", "seconds", "created", "updated", "rows/s"
    );
    let first = csv(rows, "Engineer");
    let changed = csv(rows, "Senior Engineer");
    for (name, file) in [
        ("create", &first),
        ("re-import (unchanged)", &first),
        ("re-import (updated)", &changed),
    ] {
        let started = Instant::now();
        let report: Value = client
            .post(format!("{base}/api/company/{company_id}/employees/import"))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(file.clone())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let totals = &report["totals"];
        anyhow::ensure!(totals["errors"] == 0, "rows in error: {totals}");
        println!(
            "{name:<28} {seconds:>10.2} {:>10} {:>10} {:>12.0}",
            totals["created"].as_u64().unwrap_or_default(),
            totals["updated"].as_u64().unwrap_or_default(),
            rows as f64 / seconds
        );
    }
    cluster.stop().await?;
    Ok(())
}

/// `rows` employees, each with an email of its own (so a re-import matches them), a phone, a
/// bio and a link.
fn csv(rows: usize, job_title: &str) -> String {
    let mut file = String::from("full_name,email,job_title,phone,bio,social_links.linkedin\n");
    for i in 0..rows {
        file.push_str(&format!(
            "Person {i},person{i}@import.test,{job_title},+1 555 {i:07},\"Works here, since {i}.\",https://www.linkedin.com/in/person{i}\n"
        ));
    }
    file
}

async fn spawn(database_url: &str) -> anyhow::Result<String> {
    let vars = [
        ("DATABASE_URL", database_url.to_owned()),
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("METRICS_ADDR", "127.0.0.1:0".to_owned()),
        (
            "JWT_SECRET",
            "bench-secret-bench-secret-bench-secret".to_owned(),
        ),
    ];
    let config =
        Config::from_lookup(|key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))?;
    let app = Application::build(config).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    Ok(address)
}
