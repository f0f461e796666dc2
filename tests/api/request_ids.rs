//! Request ids: made for every request (or taken from a trusted proxy's `X-Request-Id` when it is
//! valid), echoed in the answer's `X-Request-Id`, and carried by every log line of the request
//! (the binary itself, with `LOG_FORMAT=json`).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Instant,
};

use reqwest::header::HeaderValue;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{
    JWT_SECRET, PATIENCE, TestApp, fresh_database, spawn_app, spawn_app_with, superuser_url,
};

const HEADER: &str = "x-request-id";

async fn id_answered(app: &TestApp, path: &str, sent: Option<&[u8]>) -> (u16, String) {
    let mut req = app.client.get(format!("{}{path}", app.address));
    if let Some(sent) = sent {
        req = req.header(HEADER, HeaderValue::from_bytes(sent).unwrap());
    }
    let resp = req.send().await.unwrap();
    let id = resp
        .headers()
        .get(HEADER)
        .unwrap_or_else(|| panic!("no X-Request-Id on {path}"))
        .to_str()
        .unwrap()
        .to_owned();
    (resp.status().as_u16(), id)
}

#[track_caller]
fn assert_generated(id: &str) {
    assert!(Uuid::parse_str(id).is_ok(), "not a generated id: {id:?}");
}

#[tokio::test]
async fn every_answer_names_a_new_request_id_when_no_proxy_is_trusted() {
    let app = spawn_app().await;
    let mut seen = std::collections::HashSet::new();
    for (path, status) in [
        ("/api/health/live", 200),
        ("/api/auth/me", 401),
        ("/nowhere", 404),
        ("/", 200),
    ] {
        let (answered, id) = id_answered(&app, path, None).await;
        assert_eq!(answered, status, "{path}");
        assert_generated(&id);
        assert!(seen.insert(id), "ids are not reused");
    }
    // A client's own id is not taken unless a proxy in front is trusted to set it.
    let (_, id) = id_answered(&app, "/api/health/live", Some(b"chosen-by-client")).await;
    assert_generated(&id);
}

#[tokio::test]
async fn a_trusted_proxys_valid_id_is_kept_and_an_invalid_one_replaced() {
    let app = spawn_app_with(&[("REQUEST_ID_HEADER", "X-Request-Id")]).await;
    for kept in [
        "proxy-4f2a9c".as_bytes(),
        b"Root=1-67891233-abcdef012345678912345678",
        "x".repeat(128).as_bytes(),
    ] {
        let (status, id) = id_answered(&app, "/api/health/live", Some(kept)).await;
        assert_eq!(status, 200);
        assert_eq!(id.as_bytes(), kept);
    }
    // Errors carry it too.
    let (status, id) = id_answered(&app, "/api/auth/me", Some(b"proxy-on-401")).await;
    assert_eq!((status, id.as_str()), (401, "proxy-on-401"));
    for refused in [
        "x".repeat(129).into_bytes(),
        b"two words".to_vec(),
        b"tab\there".to_vec(),
        "caf\u{e9}".as_bytes().to_vec(),
        b"".to_vec(),
    ] {
        let (status, id) = id_answered(&app, "/api/health/live", Some(&refused)).await;
        assert_eq!(status, 200);
        assert_generated(&id);
    }
    let (_, id) = id_answered(&app, "/api/health/live", None).await;
    assert_generated(&id);
}

/// The binary's standard output, a line at a time, read on a thread of its own.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
    base: String,
}

impl Serve {
    fn start(dbname: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_callingcard"))
            .arg("serve")
            .env("DATABASE_URL", superuser_url(dbname))
            .env("JWT_SECRET", JWT_SECRET)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("REQUEST_ID_HEADER", "X-Request-Id")
            .env("LOG_FORMAT", "json")
            // The request lines, and the database client's, whose queries run inside requests.
            .env(
                "RUST_LOG",
                "warn,callingcard::telemetry=debug,tokio_postgres::simple_query=debug",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting callingcard serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Lines until one satisfies `until` (that one included), or the patience runs out.
    fn read_until(&self, until: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        let mut read = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the awaited log line never came; read: {read:#?}"));
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            let done = until(&value);
            read.push(value);
            if done {
                return read;
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The request ids of the spans a JSON log line was written in.
fn request_ids(line: &Value) -> Vec<&str> {
    let spans = line["spans"].as_array().into_iter().flatten();
    spans
        .chain(std::iter::once(&line["span"]))
        .filter_map(|span| span["request_id"].as_str())
        .collect()
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn every_log_line_of_a_request_carries_its_id() {
    let serve = Serve::start(&fresh_database().await);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE;
    // Up: answers without the database, so the only database work is the request below.
    loop {
        if let Ok(resp) = client
            .get(format!("{}/api/health/live", serve.base))
            .send()
            .await
            && resp.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "callingcard serve did not start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let resp = client
        .get(format!("{}/api/health", serve.base))
        .header(HEADER, "trace-me-7f3e")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[HEADER], "trace-me-7f3e");

    let lines = serve.read_until(|line| {
        message(line) == "request finished" && request_ids(line) == ["trace-me-7f3e"; 2]
    });
    let finished = lines.last().unwrap();
    assert_eq!(finished["level"], "DEBUG");
    assert_eq!(finished["span"]["route"], "/api/health");
    assert_eq!(finished["fields"]["status"], 200);
    // The health check's query was logged by the database client, inside the request.
    let query = lines
        .iter()
        .find(|line| message(line).contains("SELECT 1"))
        .unwrap_or_else(|| panic!("no query line: {lines:#?}"));
    assert!(
        request_ids(query).contains(&"trace-me-7f3e"),
        "query line without the request id: {query}"
    );
    // Every line written inside a request names it.
    for line in &lines {
        if line["spans"].as_array().is_some_and(|s| !s.is_empty()) {
            assert!(!request_ids(line).is_empty(), "{line}");
        }
    }
}
