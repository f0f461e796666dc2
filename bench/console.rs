//! Measures the admin console: server time of every page for a company of 1,000 employees and
//! 1M card events, and what a page weighs on the wire with everything it loads.
//!
//!     cargo bench --bench console
//!     BENCH_EMPLOYEES=200 BENCH_EVENTS=100000 cargo bench --bench console
//!
//! Variables: `BENCH_EMPLOYEES` (default 1 000), `BENCH_EVENTS` (default 1 000 000),
//! `BENCH_REQUESTS` (measured requests per page, default 50), `BENCH_HOLD` (set: once loaded,
//! print the database's URL and wait for Ctrl-C before measuring, to look at plans).
//!
//! The time is the client's, on loopback: the server's time plus a loopback round trip. The
//! pages are asked for one after another, gzip accepted, signed in as the company's admin
//! through the console's session cookie. Results go to stdout as markdown tables, progress to
//! stderr.

use std::time::{Duration, Instant};

mod history;
mod support;

use callingcard::db::embedded::LocalCluster;
use history::{Company, Loader, Service};
use support::{env_or, load_average, percentile};
use tokio_postgres::NoTls;

/// Pages under `/app` shown to someone not signed in (a signed-in browser is sent on).
const SIGNED_OUT: &[&str] = &["/app/login", "/app/signup"];
/// Requests before measuring a page.
const WARM_UPS: usize = 5;
/// What a console page may weigh on the wire, with everything it loads.
const BUDGET_KB: f64 = 150.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let employees: usize = env_or("BENCH_EMPLOYEES", 1_000);
    let events: u64 = env_or("BENCH_EVENTS", 1_000_000);
    let requests: usize = env_or("BENCH_REQUESTS", 50);

    progress("starting a temporary PostgreSQL cluster and the service");
    let cluster = LocalCluster::start_temporary().await?;
    callingcard::startup::create_database_if_missing(&cluster.url("postgres"), "bench").await?;
    let service = Service::spawn(&cluster.url("bench")).await?;
    let (db, connection) = tokio_postgres::connect(&cluster.url("bench"), NoTls).await?;
    tokio::spawn(connection);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    progress(&format!("creating a company of {employees} employees"));
    let company = Company::create(&http, &service.base, &db, "Console Co", employees).await?;
    progress(&format!("loading {events} events"));
    let mut loader = Loader::prepare(&db, &company).await?;
    loader.load_to(&db, events).await?;
    if std::env::var_os("BENCH_HOLD").is_some() {
        // For EXPLAIN against the loaded data: the owner's URL, and the company to set.
        progress(&format!(
            "holding: {} company {} at {} cookie cc_session={} (Ctrl-C ends)",
            cluster.url("bench"),
            company.id,
            service.base,
            company.token
        ));
        tokio::signal::ctrl_c().await?;
    }

    let employee = company.employees[0].0;
    let pages = [
        ("landing", "/".to_owned()),
        ("log in", "/app/login".to_owned()),
        ("sign up", "/app/signup".to_owned()),
        ("home", "/app".to_owned()),
        ("people", "/app/people".to_owned()),
        ("people, search", "/app/people?q=employee%2000".to_owned()),
        ("people, Z to A", "/app/people?sort=-name".to_owned()),
        ("person", format!("/app/people/{employee}")),
        ("new person", "/app/people/new".to_owned()),
        ("branding", "/app/branding".to_owned()),
        ("import", "/app/import".to_owned()),
        ("analytics (30 days)", "/app/analytics".to_owned()),
        ("analytics (7 days)", analytics_range(7, "UTC")),
        (
            "analytics (365 days, Berlin)",
            analytics_range(365, "Europe/Berlin"),
        ),
        (
            "analytics of a person (30 days)",
            format!("/app/analytics/employees/{employee}"),
        ),
        (
            "analytics of a person (365 days)",
            format!(
                "/app/analytics/employees/{employee}{}",
                analytics_range(365, "UTC").trim_start_matches("/app/analytics")
            ),
        ),
        ("teammates", "/app/teammates".to_owned()),
        ("audit log", "/app/audit".to_owned()),
        ("sessions", "/app/sessions".to_owned()),
        (
            "download: people (CSV)",
            "/app/people/export.csv".to_owned(),
        ),
        (
            "download: a day's events (CSV)",
            format!(
                "/app/analytics/export.csv{}",
                analytics_range(0, "UTC").trim_start_matches("/app/analytics")
            ),
        ),
    ];
    let cookie = format!("cc_session={}", company.token);
    println!("\n# Console benchmark\n");
    println!(
        "One company on the enterprise plan: {employees} employees, {events} card events over \
         400 days (loaded as in the analytics benchmark). {requests} sequential requests per \
         page after {WARM_UPS} warm-ups, signed in as the admin, `Accept-Encoding: gzip`. \
         Weight: the page's compressed HTML plus every stylesheet and script it links \
         (compressed, as served; cached `immutable` after the first page). Budget \
         {BUDGET_KB:.0} KB. Load average at start: {}.\n",
        load_average()
    );
    println!("| page | status | p50 ms | p99 ms | HTML KB | with assets KB |");
    println!("|---|---|---|---|---|---|");
    // The signed-out pages are measured as a visitor meets them: without the session.
    let cookie_for = |path: &str| {
        if !path.starts_with("/app") || SIGNED_OUT.contains(&path) {
            ""
        } else {
            cookie.as_str()
        }
    };
    for (name, path) in &pages {
        progress(name);
        let url = format!("{}{path}", service.base);
        let get = async || {
            let t = Instant::now();
            let resp = http
                .get(&url)
                .header("Cookie", cookie_for(path))
                .header("Accept-Encoding", "gzip")
                .send()
                .await
                .ok()?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.ok()?;
            Some((t.elapsed(), status, body))
        };
        for _ in 0..WARM_UPS {
            get().await;
        }
        let mut latencies: Vec<Duration> = Vec::with_capacity(requests);
        let mut last = None;
        for _ in 0..requests {
            if let Some((elapsed, status, body)) = get().await {
                latencies.push(elapsed);
                last = Some((status, body));
            }
        }
        latencies.sort();
        let Some((status, body)) = last else {
            println!("| {name} | failed | | | | |");
            continue;
        };
        let html_kb = body.len() as f64 / 1024.0;
        let assets_kb = assets_weight(&http, &service.base, path, cookie_for(path)).await / 1024.0;
        println!(
            "| {name} | {status} | {:.2} | {:.2} | {html_kb:.1} | {:.1} |",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            html_kb + assets_kb,
        );
    }
    println!("\nLoad average at the end: {}.\n", load_average());
    cluster.stop().await?;
    Ok(())
}

/// `/app/analytics` over the last `days`, in `tz`.
fn analytics_range(days: i64, tz: &str) -> String {
    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Duration::days(days);
    format!("/app/analytics?from={from}&to={to}&tz={tz}")
}

/// The compressed bytes of the stylesheets and scripts the page at `path` links.
async fn assets_weight(http: &reqwest::Client, base: &str, path: &str, cookie: &str) -> f64 {
    let Ok(resp) = http
        .get(format!("{base}{path}"))
        .header("Cookie", cookie)
        .send()
        .await
    else {
        return 0.0;
    };
    let html = resp.text().await.unwrap_or_default();
    let mut total = 0.0;
    for asset in html.split('"').filter(|s| s.starts_with("/assets/")) {
        if let Ok(resp) = http
            .get(format!("{base}{asset}"))
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            && let Ok(body) = resp.bytes().await
        {
            total += body.len() as f64;
        }
    }
    total
}

fn progress(message: &str) {
    eprintln!("[console bench] {message}");
}
