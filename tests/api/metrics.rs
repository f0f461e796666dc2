//! Prometheus metrics: served on a listener of their own (never on the public port), in the
//! Prometheus text format, with the families operators alert on, and labels that name route
//! templates, never a tenant's id or a slug.

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{self, DESKTOP, company_with_card, spawn_app, spawn_app_with, track_ok};

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("Prometheus text format")
}

/// The samples of `family` (histograms: one sample per label set, its buckets inside).
fn samples<'a>(scrape: &'a Scrape, family: &str) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == family)
        .collect()
}

fn value(sample: &Sample) -> f64 {
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
        Value::Summary(_) => panic!("no summaries here"),
    }
}

/// The one sample of `family` whose labels include `labels`.
#[track_caller]
fn sample<'a>(scrape: &'a Scrape, family: &str, labels: &[(&str, &str)]) -> &'a Sample {
    let found: Vec<&Sample> = samples(scrape, family)
        .into_iter()
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{family} {labels:?}: {found:?}\nall: {:?}",
        samples(scrape, family)
    );
    found[0]
}

#[track_caller]
fn assert_kind(scrape: &Scrape, family: &str, kind: &str) {
    let all = samples(scrape, family);
    assert!(!all.is_empty(), "no {family} in the scrape");
    for s in all {
        let matches = match kind {
            "counter" => matches!(s.value, Value::Counter(_)),
            "gauge" => matches!(s.value, Value::Gauge(_)),
            "histogram" => matches!(s.value, Value::Histogram(_)),
            _ => unreachable!(),
        };
        assert!(matches, "{family} is not a {kind}: {s:?}");
    }
}

/// Whether `text` holds a UUID anywhere (hyphenated or as 32 hex digits).
fn holds_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    [36, 32].iter().any(|&len| {
        bytes.len() >= len
            && (0..=bytes.len() - len).any(|i| {
                std::str::from_utf8(&bytes[i..i + len]).is_ok_and(|s| Uuid::parse_str(s).is_ok())
            })
    })
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let app = spawn_app().await;
    let public = app.get("/metrics", None).await;
    public.assert_status(404);
    let url = app.metrics_url.clone().expect("a metrics listener");
    assert!(!url.contains(&format!(":{}/", app.port)), "{url}");
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("# TYPE http_requests_total counter"),
        "{text}"
    );
    // Nothing else lives on the metrics listener.
    let base = url.trim_end_matches("/metrics");
    for path in ["/", "/api/health", "/metrics/extra"] {
        let resp = app
            .client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path} on the metrics listener");
    }

    let off = spawn_app_with(&[("METRICS_ADDR", "off")]).await;
    assert!(off.metrics_url.is_none());
    off.get("/metrics", None).await.assert_status(404);
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_no_label_names_a_tenant() {
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Metric Labels Inc").await;
    let employees = format!("/api/company/{}/employees", admin.company_id);
    for _ in 0..3 {
        app.get(&employees, Some(&admin.token))
            .await
            .assert_status(200);
    }
    // Another tenant's list: 404, counted under the same template.
    let stranger = format!("/api/company/{}/employees", Uuid::new_v4());
    app.get(&stranger, Some(&admin.token))
        .await
        .assert_status(404);
    app.get(&card.page(), None).await.assert_status(200);
    app.get(&card.api(), None).await.assert_status(200);
    app.get(&format!("{}/qr.png", card.api()), None)
        .await
        .assert_status(200);
    app.get(&format!("/nowhere/{}", Uuid::new_v4()), None)
        .await
        .assert_status(404);
    app.request(
        reqwest::Method::from_bytes(b"BREW").unwrap(),
        "/api/health/live",
        None,
        None,
    )
    .await;

    let text = app.scrape_metrics().await;
    let scrape = parse(&text);
    assert_kind(&scrape, "http_requests_total", "counter");
    assert_kind(&scrape, "http_request_duration_seconds", "histogram");
    let template = "/api/company/:company_id/employees";
    let listed = sample(
        &scrape,
        "http_requests_total",
        &[("route", template), ("method", "GET"), ("status", "2xx")],
    );
    assert_eq!(value(listed), 3.0);
    let refused = sample(
        &scrape,
        "http_requests_total",
        &[("route", template), ("method", "GET"), ("status", "4xx")],
    );
    assert_eq!(value(refused), 1.0);
    let timed = sample(
        &scrape,
        "http_request_duration_seconds",
        &[("route", template), ("method", "GET"), ("status", "2xx")],
    );
    assert_eq!(value(timed), 3.0, "every request in the +Inf bucket");
    for (route, method) in [
        ("/card/:company_slug/:employee_slug", "GET"),
        ("/api/card/:company_slug/:employee_slug", "GET"),
        ("/api/card/:company_slug/:employee_slug/qr.png", "GET"),
        ("/api/auth/signup", "POST"),
        ("unmatched", "GET"),
        ("/api/health/live", "other"),
    ] {
        sample(
            &scrape,
            "http_requests_total",
            &[("route", route), ("method", method)],
        );
    }

    // No label value anywhere holds a concrete id or slug.
    let concrete = [
        admin.company_id.to_string(),
        card.employee_id.to_string(),
        card.company_slug.clone(),
        card.slug.clone(),
        "nowhere".to_owned(),
    ];
    for s in &scrape.samples {
        for (name, label) in s.labels.iter() {
            assert!(!holds_uuid(label), "{}{{{name}={label:?}}}", s.metric);
            for value in &concrete {
                assert!(
                    !label.contains(value.as_str()),
                    "{}: {name}={label:?}",
                    s.metric
                );
            }
        }
    }
    assert!(!holds_uuid(&text), "a UUID in the scrape:\n{text}");
}

#[tokio::test]
async fn the_service_families_are_there_with_their_types_and_labels() {
    let app = spawn_app_with(&[("AUTH_ADDRESS_FAILURES_PER_MINUTE", "1")]).await;
    let (admin, card) = company_with_card(&app, "Metric Families Inc").await;
    // Two messages waiting (not due for a day, whoever sends them) and one given up on.
    let db = helpers::superuser(&app).await;
    for failed in [false, false, true] {
        db.execute(
            "INSERT INTO outbox (company_id, id, kind, payload, next_attempt_at, failed_at)
             VALUES ($1, $2, 'email', '{}', now() + interval '1 day',
                     CASE WHEN $3 THEN now() END)",
            &[&admin.company_id, &Uuid::new_v4(), &failed],
        )
        .await
        .unwrap();
    }
    let before = parse(&app.scrape_metrics().await);
    // Tracked: stored in a batch of the analytics writer.
    track_ok(&app, &card, DESKTOP, json!({"action": "view"})).await;
    // The card, twice: a miss, then (while the cache hears of changes) a hit.
    for _ in 0..2 {
        app.get(&card.api(), None).await.assert_status(200);
    }
    // A wrong password, then a refusal by the throttle (one failure a minute per address).
    let wrong = json!({"email": admin.email, "password": "not-the-password-at-all"});
    app.post("/api/auth/login", None, wrong.clone())
        .await
        .assert_status(401);
    app.post("/api/auth/login", None, wrong)
        .await
        .assert_error(429, "too_many_attempts");

    let after = parse(&app.scrape_metrics().await);
    for (family, kind) in [
        ("db_pool_connections_in_use", "gauge"),
        ("db_pool_connections_idle", "gauge"),
        ("db_pool_connections_max", "gauge"),
        ("db_pool_waiting_requests", "gauge"),
        ("analytics_ingest_queue_events", "gauge"),
        ("analytics_ingest_batch_size_events", "histogram"),
        ("analytics_ingest_failures_total", "counter"),
        ("card_cache_lookups_total", "counter"),
        ("outbox_pending_messages", "gauge"),
        ("outbox_failed_messages", "gauge"),
        ("auth_logins_throttled_total", "counter"),
    ] {
        assert_kind(&after, family, kind);
    }
    // Per application: this app's pool (DATABASE_POOL_SIZE=8 in the harness) and outbox.
    assert_eq!(value(sample(&after, "db_pool_connections_max", &[])), 8.0);
    assert_eq!(value(sample(&after, "outbox_pending_messages", &[])), 2.0);
    assert_eq!(value(sample(&after, "outbox_failed_messages", &[])), 1.0);
    for reason in ["database", "queue_full"] {
        let failures = sample(
            &after,
            "analytics_ingest_failures_total",
            &[("reason", reason)],
        );
        assert_eq!(value(failures), 0.0, "{reason}");
    }
    // Process-wide counters (other tests add to them too): at least what this test did.
    let grew = |family: &str, labels: &[(&str, &str)]| {
        value(sample(&after, family, labels)) - value(sample(&before, family, labels))
    };
    assert!(grew("auth_logins_throttled_total", &[]) >= 1.0);
    assert!(grew("analytics_ingest_batch_size_events_count", &[]) >= 1.0);
    let lookups = grew("card_cache_lookups_total", &[("result", "hit")])
        + grew("card_cache_lookups_total", &[("result", "miss")]);
    assert!(lookups >= 2.0, "card cache lookups counted: {lookups}");
}
