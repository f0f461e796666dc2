//! Measures lead capture: lead submissions per second through the public JSON door, and how
//! long a lead takes to reach the company's CRM as a signed `lead.created` webhook, from the
//! submission's 201 to the receiver.
//!
//!     cargo bench --bench leads
//!     BENCH_LEADS=5000 BENCH_CLIENTS=32 cargo bench --bench leads
//!
//! Variables: `BENCH_LEADS` (leads sent by the concurrent clients, default 2 000),
//! `BENCH_CLIENTS` (concurrent clients, default 16), `BENCH_CARDS` (employees the leads are
//! spread over, default 20), `BENCH_SEQUENTIAL` (leads sent one at a time first, each waited for
//! at the receiver, default 100), and `WEBHOOK_CONCURRENCY` and `LEAD_MIN_FILL_SECONDS`, passed
//! to the service as they are.
//!
//! Everything runs on this machine: a throwaway PostgreSQL cluster, the service on a loopback
//! port, the clients, and the webhook receiver (a poem server in this process, which checks
//! every signature and notes when each delivery arrived). The lead limits are raised through the
//! service's own settings (`LEADS_PER_ADDRESS_PER_HOUR`, `LEADS_PER_CARD_PER_HOUR`), each client
//! comes from an address of its own (`CLIENT_IP_HEADER`), and the start tokens of the forms are
//! taken from the card pages and used once the minimum fill time has passed, as a person would.
//! Results go to stdout as markdown tables, progress to stderr.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

mod history;
mod support;

use callingcard::db::embedded::LocalCluster;
use history::{Company, Service};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::{env_or, load_average, percentile};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// How long the deliveries may take to arrive once the last lead was taken.
const DELIVERY_PATIENCE: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let leads: usize = env_or("BENCH_LEADS", 2_000);
    let clients: usize = env_or::<usize>("BENCH_CLIENTS", 16).max(1);
    let cards: usize = env_or::<usize>("BENCH_CARDS", 20).max(1);
    let sequential: usize = env_or("BENCH_SEQUENTIAL", 100);
    let min_fill: u64 = env_or("LEAD_MIN_FILL_SECONDS", 3);
    let concurrency: usize = env_or(
        "WEBHOOK_CONCURRENCY",
        callingcard::webhook::config::WebhookConfig::default().concurrency,
    );
    // Every lead of the run could come from one address, or go to one card: none is refused.
    let limit = (leads + sequential).max(1).to_string();

    progress("starting a temporary PostgreSQL cluster and the service");
    let cluster = LocalCluster::start_temporary().await?;
    callingcard::startup::create_database_if_missing(&cluster.url("postgres"), "bench").await?;
    // The employees' lead emails go to .eml files here, not into the checkout.
    let data_dir = std::env::temp_dir().join(format!("callingcard-leads-bench-{}", Uuid::new_v4()));
    let service = Service::spawn_with(
        &cluster.url("bench"),
        &[
            ("DATA_DIR", data_dir.display().to_string()),
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true".to_owned()),
            ("WEBHOOK_CONCURRENCY", concurrency.to_string()),
            ("LEAD_MIN_FILL_SECONDS", min_fill.to_string()),
            ("LEADS_PER_ADDRESS_PER_HOUR", limit.clone()),
            ("LEADS_PER_CARD_PER_HOUR", limit),
        ],
    )
    .await?;
    let base = service.base.clone();
    let (db, connection) = tokio_postgres::connect(&cluster.url("bench"), NoTls).await?;
    tokio::spawn(connection);
    let http = reqwest::Client::new();

    progress(&format!("creating a company of {cards} employees"));
    let company = Company::create(&http, &base, &db, "Leads Co", cards).await?;
    let receiver = Receiver::start().await?;
    let created: Value = http
        .post(format!("{base}/api/company/{}/webhooks", company.id))
        .bearer_auth(&company.token)
        .json(&json!({"url": receiver.url(), "events": ["lead.created"], "description": "CRM"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let secret = created["secret"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no secret in {created}"))?;
    receiver.set_secret(secret);

    // The forms' start tokens, as the card pages serve them; good once the minimum fill time
    // has passed (and for two days).
    let mut forms = Vec::with_capacity(cards);
    for (_, slug) in &company.employees {
        let html = http
            .get(format!("{base}/card/{}/{slug}", company.slug))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let marker = "name=\"started\" value=\"";
        let start = html
            .find(marker)
            .ok_or_else(|| anyhow::anyhow!("the card page of {slug} has no lead form"))?
            + marker.len();
        let token = html[start..].split('"').next().unwrap_or_default();
        forms.push(Form {
            path: format!("{base}/api/card/{}/{slug}/leads", company.slug),
            started: token.to_owned(),
        });
    }
    let forms = Arc::new(forms);
    progress(&format!(
        "waiting {min_fill} s, the minimum time to fill a form"
    ));
    tokio::time::sleep(Duration::from_secs(min_fill + 1)).await;

    println!("\n# Lead capture benchmark\n");
    println!(
        "One company, {cards} cards, one webhook endpoint for `lead.created` on loopback (a poem \
         server in the benchmark's process that checks every signature). JSON leads from \
         keep-alive clients (reqwest), each from an address of its own, spread over the cards in \
         turn. `WEBHOOK_CONCURRENCY={concurrency}`, at most 4 deliveries to one endpoint on \
         their way at once. Delivery latency: from the client's 201 to the receiver's \
         arrival, matched by the lead id in the payload. Load average at start: {}.\n",
        load_average()
    );

    let mut phases = Vec::new();
    if sequential > 0 {
        progress(&format!(
            "{sequential} leads one at a time, each waited for at the receiver"
        ));
        let started = Instant::now();
        let mut sent = Sent::default();
        for i in 0..sequential {
            let lead = submit(&http, &forms[i % forms.len()], "10.0.0.1", i).await;
            let id = lead.id;
            sent.add(lead);
            if let Some(id) = id {
                receiver.wait_for_lead(id, Duration::from_secs(60)).await;
            }
        }
        phases.push((
            "1 client, one lead at a time".to_owned(),
            sent,
            started.elapsed(),
        ));
    }
    progress(&format!("{leads} leads from {clients} concurrent clients"));
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (http, forms, next) = (http.clone(), forms.clone(), next.clone());
            tokio::spawn(async move {
                let address = format!("10.1.{}.{}", client / 250, client % 250 + 1);
                let mut sent = Sent::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= leads {
                        break sent;
                    }
                    sent.add(
                        submit(&http, &forms[i % forms.len()], &address, sequential + i).await,
                    );
                }
            })
        })
        .collect();
    let mut load = Sent::default();
    for task in tasks {
        load.merge(task.await?);
    }
    let elapsed = started.elapsed();
    phases.push((format!("{clients} concurrent clients"), load, elapsed));

    let expected: usize = phases.iter().map(|(_, sent, _)| sent.taken.len()).sum();
    progress(&format!("waiting for {expected} deliveries"));
    let waited = Instant::now();
    receiver.wait_for_count(expected, DELIVERY_PATIENCE).await;
    // A moment more, for a delivery sent twice to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let drained = waited.elapsed();
    let arrivals = receiver.arrivals();

    println!(
        "| phase | leads taken | refused | seconds | leads/s | submit p50 ms | submit p99 ms | \
         delivery p50 ms | delivery p99 ms | delivery max ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, sent, elapsed) in &phases {
        let mut submits = sent.taken.iter().map(|t| t.latency).collect::<Vec<_>>();
        submits.sort();
        let mut deliveries = sent
            .taken
            .iter()
            .filter_map(|t| {
                let arrived = arrivals.first_arrival.get(&t.id)?;
                Some(arrived.saturating_duration_since(t.answered))
            })
            .collect::<Vec<_>>();
        deliveries.sort();
        println!(
            "| {name} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} |",
            sent.taken.len(),
            sent.refused,
            elapsed.as_secs_f64(),
            sent.taken.len() as f64 / elapsed.as_secs_f64(),
            percentile(&submits, 0.5),
            percentile(&submits, 0.99),
            percentile(&deliveries, 0.5),
            percentile(&deliveries, 0.99),
            deliveries.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        );
    }

    let taken: HashSet<Uuid> = phases
        .iter()
        .flat_map(|(_, sent, _)| sent.taken.iter().map(|t| t.id))
        .collect();
    let stored: i64 = db
        .query_one(
            "SELECT count(*) FROM leads WHERE company_id = $1",
            &[&company.id],
        )
        .await?
        .get(0);
    let states = db
        .query(
            "SELECT state, count(*) FROM webhook_deliveries WHERE company_id = $1 GROUP BY state
             ORDER BY state",
            &[&company.id],
        )
        .await?
        .iter()
        .map(|row| format!("{} {}", row.get::<_, String>(0), row.get::<_, i64>(1)))
        .collect::<Vec<_>>()
        .join(", ");
    let attempts: i64 = db
        .query_one(
            "SELECT count(*) FROM webhook_attempts WHERE company_id = $1",
            &[&company.id],
        )
        .await?
        .get(0);
    let missing = taken
        .iter()
        .filter(|id| !arrivals.first_arrival.contains_key(id))
        .count();
    let unmatched = arrivals
        .first_arrival
        .keys()
        .filter(|id| !taken.contains(id))
        .count();
    let before = phases
        .iter()
        .flat_map(|(_, sent, _)| &sent.taken)
        .filter(|t| {
            arrivals
                .first_arrival
                .get(&t.id)
                .is_some_and(|arrived| *arrived < t.answered)
        })
        .count();
    println!();
    println!("| count | value | expected |");
    println!("|---|---|---|");
    let rows: [(&str, String, String); 10] = [
        (
            "leads answered 201",
            taken.len().to_string(),
            "all sent".into(),
        ),
        ("leads stored", stored.to_string(), taken.len().to_string()),
        (
            "requests at the receiver",
            arrivals.requests.to_string(),
            taken.len().to_string(),
        ),
        (
            "distinct delivery ids",
            arrivals.deliveries.to_string(),
            taken.len().to_string(),
        ),
        (
            "duplicates (a delivery id again)",
            arrivals.duplicates.to_string(),
            "0".into(),
        ),
        (
            "signature failures",
            arrivals.bad_signatures.to_string(),
            "0".into(),
        ),
        ("leads never delivered", missing.to_string(), "0".into()),
        (
            "deliveries of no lead sent",
            unmatched.to_string(),
            "0".into(),
        ),
        (
            "deliveries in the database",
            states,
            format!("delivered {}", taken.len()),
        ),
        (
            "attempts recorded",
            attempts.to_string(),
            taken.len().to_string(),
        ),
    ];
    for (name, value, expected) in rows {
        println!("| {name} | {value} | {expected} |");
    }
    println!(
        "\n{before} deliveries arrived before their lead's 201 reached the client (counted as 0 \
         ms). The last delivery arrived {:.1} s after the last lead was taken. Load average at \
         the end: {}.\n",
        drained.as_secs_f64() - 1.0,
        load_average()
    );
    println!(
        "Command: `BENCH_LEADS={leads} BENCH_CLIENTS={clients} BENCH_CARDS={cards} \
         BENCH_SEQUENTIAL={sequential} cargo bench --bench leads`\n"
    );
    drop(receiver);
    cluster.stop().await?;
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}

/// A card's lead form: where it is sent, and the start token its page served.
struct Form {
    path: String,
    started: String,
}

/// A lead the service took.
struct Taken {
    id: Uuid,
    latency: Duration,
    answered: Instant,
}

/// What one client sent.
#[derive(Default)]
struct Sent {
    taken: Vec<Taken>,
    refused: u64,
}

struct Submitted {
    id: Option<Uuid>,
    latency: Duration,
    answered: Instant,
}

impl Sent {
    fn add(&mut self, submitted: Submitted) {
        match submitted.id {
            Some(id) => self.taken.push(Taken {
                id,
                latency: submitted.latency,
                answered: submitted.answered,
            }),
            None => self.refused += 1,
        }
    }

    fn merge(&mut self, other: Sent) {
        self.taken.extend(other.taken);
        self.refused += other.refused;
    }
}

/// Leaves lead number `i` on `form` from `address`: its id when answered 201.
async fn submit(http: &reqwest::Client, form: &Form, address: &str, i: usize) -> Submitted {
    let body = json!({
        "name": format!("Visitor {i}"), "email": format!("visitor{i}@leads.example"),
        "phone": "+49 30 9876543", "company": "Prospect GmbH", "job_title": "Head of Sales",
        "note": "Met at the fair, please send the price list.", "consent": true,
        "website": "", "started": form.started,
    });
    let t = Instant::now();
    let answer = http
        .post(&form.path)
        .header("X-Forwarded-For", address)
        .json(&body)
        .send()
        .await;
    let id = match answer {
        Ok(resp) if resp.status() == reqwest::StatusCode::CREATED => resp
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["id"].as_str()?.parse().ok()),
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            progress(&format!("lead {i} refused: {status} {text}"));
            None
        }
        Err(e) => {
            progress(&format!("lead {i} failed: {e}"));
            None
        }
    };
    Submitted {
        id,
        latency: t.elapsed(),
        answered: Instant::now(),
    }
}

/// What the receiver saw.
#[derive(Clone, Default)]
struct Arrivals {
    /// When the first delivery of each lead arrived.
    first_arrival: HashMap<Uuid, Instant>,
    seen_deliveries: HashSet<String>,
    requests: usize,
    deliveries: usize,
    duplicates: usize,
    bad_signatures: usize,
}

/// A webhook receiver on loopback: checks each request's signature, independently of the
/// service's code, and notes when it arrived; answers 200.
struct Receiver {
    port: u16,
    secret: Arc<Mutex<String>>,
    arrivals: Arc<Mutex<Arrivals>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let secret = Arc::new(Mutex::new(String::new()));
        let arrivals: Arc<Mutex<Arrivals>> = Arc::default();
        let endpoint = {
            let (secret, arrivals) = (secret.clone(), arrivals.clone());
            poem::endpoint::make(move |mut req: poem::Request| {
                let (secret, arrivals) = (secret.clone(), arrivals.clone());
                async move {
                    let arrived = Instant::now();
                    let delivery = req
                        .header("x-callingcard-delivery")
                        .unwrap_or_default()
                        .to_owned();
                    let signature = req
                        .header("x-callingcard-signature")
                        .unwrap_or_default()
                        .to_owned();
                    let body = req.take_body().into_vec().await.unwrap_or_default();
                    let signed = verify(&secret.lock().unwrap(), &signature, &body);
                    let lead = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v["data"]["id"].as_str()?.parse::<Uuid>().ok());
                    let mut seen = arrivals.lock().unwrap();
                    seen.requests += 1;
                    if !signed {
                        seen.bad_signatures += 1;
                    }
                    if seen.seen_deliveries.insert(delivery) {
                        seen.deliveries += 1;
                    } else {
                        seen.duplicates += 1;
                    }
                    if let Some(lead) = lead {
                        seen.first_arrival.entry(lead).or_insert(arrived);
                    }
                    poem::http::StatusCode::OK
                }
            })
        };
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener)?;
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run(endpoint)
                .await;
        });
        Ok(Self {
            port,
            secret,
            arrivals,
            task,
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/crm/leads", self.port)
    }

    fn set_secret(&self, secret: &str) {
        *self.secret.lock().unwrap() = secret.to_owned();
    }

    fn arrivals(&self) -> Arrivals {
        self.arrivals.lock().unwrap().clone()
    }

    async fn wait_for_lead(&self, lead: Uuid, patience: Duration) {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline
            && !self
                .arrivals
                .lock()
                .unwrap()
                .first_arrival
                .contains_key(&lead)
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn wait_for_count(&self, n: usize, patience: Duration) {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline && self.arrivals.lock().unwrap().first_arrival.len() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `X-CallingCard-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under `secret`.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    callingcard::hex::lower(&mac.finalize().into_bytes()) == v1
}

fn progress(message: &str) {
    eprintln!("[leads bench] {message}");
}
