//! Builds the application: database (external or a local cluster), migrations, pool, routes,
//! listener; then serves until a shutdown signal, letting in-flight requests finish.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server,
    endpoint::BoxEndpoint,
    get,
    listener::{Acceptor, TcpAcceptor},
    middleware::Cors,
};
use tokio_postgres::NoTls;

use tokio::task::JoinHandle;

use crate::{
    analytics::{
        self,
        collector::Collector,
        ingest::{EventSink, IngestStats},
        live::LiveHub,
    },
    api::{self, AppState},
    auth::{JwtKeys, password::HashingPool, throttle::LoginThrottle},
    card::budget::WorkBudget,
    config::{Config, Environment, ImageDecodeLimits},
    console,
    db::{
        Db,
        embedded::{self, LocalCluster},
        migrations,
    },
    error,
    mail::{
        account::{AccountMail, PasswordResets},
        transport::Mailer,
        worker::{EmailDispatch, OutboxWorker, Pacing},
    },
    model,
    telemetry::{
        metrics::{self as telemetry_metrics, IngestCounts, Metrics, OutboxBacklog, Sources},
        request::{self as request_telemetry, RequestIds},
        routes::RouteTemplates,
    },
    webhook::worker::WebhookWorker,
};

/// How often partitions are made ahead and retention is applied.
const ANALYTICS_MAINTENANCE: Duration = Duration::from_secs(3600);
/// Maintenance is no request: it may take longer than `DATABASE_TIMEOUT` (each statement still
/// ends at the server's `statement_timeout`).
const ANALYTICS_MAINTENANCE_DEADLINE: Duration = Duration::from_secs(60);

/// How long an upload waits for room to be decoded before it is told to come back.
const IMAGE_DECODE_WAIT: Duration = Duration::from_secs(2);

/// How often failed logins that left their hour, and expired trust, are forgotten.
const LOGIN_THROTTLE_SWEEP: Duration = Duration::from_secs(600);

/// How often audit events past their retention are deleted.
const AUDIT_RETENTION_SWEEP: Duration = Duration::from_secs(3600);
/// How often leads past their company's retention are erased.
const LEAD_RETENTION_SWEEP: Duration = Duration::from_secs(3600);

/// Largest request body accepted anywhere (the JSON API needs far less).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The database the service will use, and the local cluster behind it if we started one.
pub struct Database {
    pub owner: tokio_postgres::Config,
    pub local_cluster: Option<LocalCluster>,
}

impl Database {
    /// `DATABASE_URL` when given; otherwise a private cluster under the data directory.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        if let Some(url) = &config.database_url {
            let owner = url
                .expose()
                .parse()
                .context("DATABASE_URL is not a valid PostgreSQL URL")?;
            return Ok(Self {
                owner,
                local_cluster: None,
            });
        }
        if config.environment == Environment::Production {
            anyhow::bail!("DATABASE_URL is required when APP_ENV=production");
        }
        let dir = config.data_dir.join("postgres");
        tracing::info!(dir = %dir.display(), "no DATABASE_URL: starting a local PostgreSQL cluster");
        let cluster = LocalCluster::start(&dir).await?;
        create_database_if_missing(&cluster.url("postgres"), "callingcard").await?;
        let owner = cluster.url("callingcard").parse()?;
        Ok(Self {
            owner,
            local_cluster: Some(cluster),
        })
    }

    /// For commands that run beside the service (migrate, create-superadmin): the local cluster
    /// the service is running when there is one, else what [`open`](Self::open) gives.
    pub async fn open_beside_service(config: &Config) -> anyhow::Result<Self> {
        if config.database_url.is_none() && config.environment == Environment::Development {
            let dir = config.data_dir.join("postgres");
            if let Some(port) = LocalCluster::running_port(&dir).await? {
                tracing::info!(port, "using the local PostgreSQL cluster the service runs");
                let url = |db: &str| embedded::superuser_url(port, db);
                create_database_if_missing(&url("postgres"), "callingcard").await?;
                return Ok(Self {
                    owner: url("callingcard").parse()?,
                    local_cluster: None,
                });
            }
        }
        Self::open(config).await
    }

    pub async fn close(self) {
        if let Some(cluster) = self.local_cluster
            && let Err(e) = cluster.stop().await
        {
            tracing::warn!(error = %e, "stopping the local PostgreSQL cluster");
        }
    }
}

pub async fn create_database_if_missing(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(admin_url, NoTls).await?;
    let connection = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await?;
    }
    drop(client);
    let _ = connection.await;
    Ok(())
}

/// Every route of the service, with its middleware.
pub fn routes(state: AppState, cors_origins: &[String]) -> BoxEndpoint<'static> {
    let api = api::service();
    let operations = std::sync::Arc::new(api::spec::Operations::of(&api::spec_value()));
    // Swagger UI and `/openapi.json` show the completed spec, not poem-openapi's own.
    let spec = api::spec_json();
    let docs_html = api.swagger_ui_html().replace(&api.spec(), &spec);
    let docs = Route::new().at(
        "/",
        get(poem::endpoint::make_sync(move |_| {
            poem::web::Html(docs_html.clone())
        })),
    );
    let spec = poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(spec.clone())
    });
    let jwt = state.jwt.clone();
    let public_base_url = state.public_base_url.clone();
    let app = Route::new()
        .nest("/api", api)
        .at("/", get(console::landing::page))
        .at(
            "/card/:company_slug/:employee_slug",
            get(api::cards::card_page),
        )
        .at("/media/:kind/:company_id/:file", get(api::media::serve))
        .nest("/app", console::routes())
        .at("/assets/:file", get(console::assets::serve))
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        // Inside `limit_body`, which bounds the bodies it reads.
        .around(api::nul::refuse_nul)
        .around(limit_body)
        .around(api::lead_intake::form_refusals_as_pages)
        .around(move |next, req| contract_headers(next, req, operations.clone()))
        .data(state)
        .data(jwt)
        .catch_all_error(error::render)
        .around(error::retry_after_on_503);
    let app = if cors_origins.is_empty() {
        app.boxed()
    } else {
        cross_origin(app, cors_origins, &public_base_url)
    };
    app.boxed()
}

/// Methods the service answers; what a preflight may ask for (never CONNECT or TRACE).
const METHODS: [poem::http::Method; 5] = [
    poem::http::Method::GET,
    poem::http::Method::HEAD,
    poem::http::Method::POST,
    poem::http::Method::PUT,
    poem::http::Method::DELETE,
];

/// The CORS policy of `CORS_ORIGINS`: those origins, and always the service's own public origin
/// (the card page's beacons carry an `Origin` in Chromium even on the same origin). A refused
/// origin answers in the error shape, and every answer says `Vary: Origin`, since what it says
/// depends on the caller's origin.
fn cross_origin<E>(app: E, cors_origins: &[String], public_base_url: &str) -> BoxEndpoint<'static>
where
    E: Endpoint + 'static,
{
    let mut cors = Cors::new()
        .allow_credentials(false)
        .allow_methods(METHODS)
        .expose_header("X-Total-Count")
        .expose_header("X-Total-Count-Exact")
        .expose_header("X-Next-Cursor")
        .expose_header("X-Request-Id");
    // `*` alone allows every origin (an empty list, to poem's `Cors`).
    if !cors_origins.iter().any(|origin| origin == "*") {
        for origin in cors_origins {
            cors = cors.allow_origin(origin.as_str());
        }
        cors = cors.allow_origin(origin_of(public_base_url));
    }
    app.with(cors)
        .catch_all_error(error::render)
        .around(|next, req| async move {
            use poem::http::{HeaderValue, header};
            let mut response = next.call(req).await?;
            let varies = response
                .headers()
                .get_all(header::VARY)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|v| v.trim().eq_ignore_ascii_case("origin"));
            if !varies {
                response
                    .headers_mut()
                    .append(header::VARY, HeaderValue::from_static("Origin"));
            }
            Ok(response)
        })
        .boxed()
}

/// `https://Cards.example.com:443/some/path` → `https://cards.example.com`, as a browser sends it.
fn origin_of(base_url: &str) -> String {
    let base_url = base_url.to_ascii_lowercase();
    let (scheme, rest) = base_url.split_once("://").unwrap_or(("http", &base_url));
    let authority = rest.split('/').next().unwrap_or(rest);
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    format!("{scheme}://{authority}")
}

/// Refuses bodies over [`MAX_BODY_BYTES`]: by their declared length when they have one, by
/// reading at most that much when they are chunked.
async fn limit_body<E: Endpoint>(
    next: std::sync::Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    // Image uploads and employee imports are where a body may be larger; a tracking beacon is
    // tiny.
    let limit = if api::media::is_upload_route(req.method(), req.uri().path()) {
        api::media::MAX_UPLOAD_REQUEST_BYTES
    } else if api::employee_import::is_import_route(req.method(), req.uri().path()) {
        api::employee_import::MAX_IMPORT_REQUEST_BYTES
    } else if req.uri().path() == "/api/analytics/track" {
        api::tracking::MAX_TRACK_BODY_BYTES
    } else if api::lead_intake::is_lead_route(req.method(), req.uri().path()) {
        api::lead_intake::MAX_LEAD_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    };
    let too_large = || {
        error::ApiError::new(
            poem::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Request bodies are limited to {} bytes", limit),
        )
    };
    match req.header("content-length").map(str::parse::<usize>) {
        Some(Ok(length)) if length > limit => return Err(too_large().into()),
        Some(Ok(_)) => {}
        Some(Err(_)) => {
            return Err(error::ApiError::new(
                poem::http::StatusCode::BAD_REQUEST,
                "bad_request",
                "Invalid Content-Length",
            )
            .into());
        }
        None if req.header("transfer-encoding").is_some() => {
            let body = req
                .take_body()
                .into_bytes_limit(limit)
                .await
                .map_err(|_| too_large())?;
            req.set_body(body);
        }
        None => {}
    }
    Ok(next.call(req).await?.into_response())
}

/// How long a refusal asks to wait when the part that refused did not say (a database outage).
const DEFAULT_RETRY_AFTER_SECS: u64 = 2;

/// Headers the spec promises on refusals: a 405 says which methods the path takes (`Allow`), a
/// 401 how to authenticate (`WWW-Authenticate`, RFC 9110 §11.6.1), and every 429 and 503 when to
/// come back (`Retry-After`).
async fn contract_headers<E: Endpoint>(
    next: std::sync::Arc<E>,
    req: Request,
    operations: std::sync::Arc<api::spec::Operations>,
) -> poem::Result<Response> {
    use poem::http::{HeaderValue, StatusCode, header};
    let path = req.uri().path();
    let (methods, parameters) = match path.strip_prefix("/api") {
        Some(path) => (
            operations.allow(path).map(str::to_owned),
            operations.parameters(req.method().as_str(), path),
        ),
        // The pages and files beside the API are read-only.
        None => (Some("GET, HEAD".to_owned()), Default::default()),
    };
    let sent_token = req
        .headers()
        .contains_key(poem::http::header::AUTHORIZATION);
    // At hand for naming a parameter that does not parse.
    let mut response = error::with_parameters(parameters, async move {
        match next.call(req).await {
            Ok(response) => response.into_response(),
            Err(err) => error::render(err).await,
        }
    })
    .await;
    let status = response.status();
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(value) = methods.and_then(|m| m.parse().ok())
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    if status == StatusCode::UNAUTHORIZED
        && !response.headers().contains_key(header::WWW_AUTHENTICATE)
    {
        // RFC 6750 §3: no error code when no token came, `invalid_token` when one did.
        let challenge = if sent_token {
            r#"Bearer error="invalid_token""#
        } else {
            "Bearer"
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    if (status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE)
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(DEFAULT_RETRY_AFTER_SECS),
        );
    }
    Ok(response)
}

/// A built application, bound to its port, not yet serving.
pub struct Application {
    acceptor: TcpAcceptor,
    port: u16,
    /// Where the service answers on this machine, for the start-up line.
    local_url: String,
    public_base_url: String,
    endpoint: BoxEndpoint<'static>,
    database: Database,
    db: Db,
    /// Stores tracked events; finishes once the server (and so every queue sender) is gone.
    event_writer: JoinHandle<()>,
    maintenance: JoinHandle<()>,
    cards: Arc<api::cards::PublicCards>,
    image_decodes: Arc<WorkBudget>,
    ingest_stats: Arc<IngestStats>,
    throttle_sweep: JoinHandle<()>,
    metrics: Arc<Metrics>,
    /// The metrics listener, apart from the public one; `None` when `METRICS_ADDR=off`.
    metrics_acceptor: Option<TcpAcceptor>,
    metrics_port: Option<u16>,
    audit_retention: JoinHandle<()>,
    lead_retention: JoinHandle<()>,
    outbox: OutboxWorker,
    webhooks: WebhookWorker,
    password_resets: JoinHandle<()>,
    live: Arc<LiveHub>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let database = Database::open(&config).await?;
        let app_password = config
            .database_app_password
            .as_ref()
            .map(|s| s.expose().to_owned());
        migrations::run(&database.owner, app_password.as_deref()).await?;
        let db = Db::connect_as_app(
            &database.owner,
            app_password.as_deref(),
            config.database_pool_size,
        )?
        .with_deadline(config.database_timeout);
        let cards = Arc::new(api::cards::PublicCards::new(&config.public_limits));
        cards.listen(&db);
        let (sink, event_writer) = EventSink::start(db.clone());
        let ingest_stats = sink.stats.clone();
        // Visitor ids are keyed by a secret derived from the token secret: one secret to manage,
        // and rotating it also unlinks visitor ids.
        let analytics = std::sync::Arc::new(Collector::new(
            sink,
            format!("visitor-ids:{}", config.jwt_secret.expose()).as_bytes(),
            config.client_ip_header.clone(),
            config.region_header.clone(),
        ));
        let maintenance = tokio::spawn(analytics::maintain_every(
            db.clone().with_deadline(ANALYTICS_MAINTENANCE_DEADLINE),
            ANALYTICS_MAINTENANCE,
        ));
        let image_decodes = Arc::new(image_decode_budget(&config.image_decode));
        let limits = &config.auth;
        let passwords = std::sync::Arc::new(HashingPool::new(
            limits.hash_threads,
            limits.hash_queue,
            limits.hash_max_wait,
        )?);
        // Client addresses are keyed like visitor ids: one secret, the same on every instance.
        let throttle = std::sync::Arc::new(LoginThrottle::new(
            limits,
            format!("login-throttle:{}", config.jwt_secret.expose()).as_bytes(),
        ));
        let throttle_sweep = tokio::spawn(
            throttle
                .clone()
                .forget_every(db.clone(), LOGIN_THROTTLE_SWEEP),
        );
        let audit_retention = tokio::spawn(purge_audit_every(
            db.clone().with_deadline(ANALYTICS_MAINTENANCE_DEADLINE),
            config.audit_retention_days,
            AUDIT_RETENTION_SWEEP,
        ));
        let lead_retention = tokio::spawn(purge_leads_every(
            db.clone().with_deadline(ANALYTICS_MAINTENANCE_DEADLINE),
            LEAD_RETENTION_SWEEP,
        ));
        let outbox = start_outbox(&config, &db)?;
        if config.webhooks.allow_private_networks && config.environment == Environment::Production {
            tracing::warn!(
                "WEBHOOK_ALLOW_PRIVATE_NETWORKS=true: webhooks may reach this network, over http too"
            );
        }
        let webhooks = WebhookWorker::start(db.clone(), config.webhooks.clone());
        let account_mail = Arc::new(AccountMail::new(
            &config.public_base_url,
            config.mail.account_emails_per_hour,
            config.mail.address_requests_per_hour,
            format!("account-mail:{}", config.jwt_secret.expose()).as_bytes(),
        ));
        let (password_resets, password_reset_task) =
            PasswordResets::start(db.clone(), account_mail.clone());
        let leads = Arc::new(api::lead_intake::LeadIntake::new(
            &config.public_limits,
            format!("lead-forms:{}", config.jwt_secret.expose()).as_bytes(),
        ));
        let live = LiveHub::new(config.live_feed);
        live.listen(&db);
        let state = AppState {
            db: db.clone(),
            jwt: JwtKeys::new(config.jwt_secret.expose(), config.jwt_ttl)
                .with_sessions(config.sessions),
            public_base_url: config.public_base_url.clone(),
            cards: cards.clone(),
            analytics,
            image_decodes: image_decodes.clone(),
            passwords,
            throttle,
            login_attempts: Default::default(),
            account_mail,
            password_resets: Arc::new(password_resets),
            leads,
            live: live.clone(),
            webhook_private_networks: config.webhooks.allow_private_networks,
        };
        let listener = tokio::net::TcpListener::bind(config.bind_addr)
            .await
            .with_context(|| format!("binding {}", config.bind_addr))?;
        let acceptor = TcpAcceptor::from_tokio(listener)?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().map(|a| a.port()))
            .unwrap_or_default();
        let endpoint = routes(state, &config.cors_origins);
        // Telemetry: the outermost middleware (request id, span, metrics) and the metrics listener.
        let metrics = Arc::new(Metrics::new(
            RouteTemplates::of_spec("/api", &api::spec_value()),
            Sources {
                db: db.clone(),
                ingest: Box::new({
                    let stats = ingest_stats.clone();
                    move || {
                        use std::sync::atomic::Ordering::Relaxed;
                        IngestCounts {
                            queued: stats.queued.load(Relaxed),
                            stored: stats.events.load(Relaxed),
                            failed: stats.failed.load(Relaxed),
                            dropped: stats.dropped.load(Relaxed),
                        }
                    }
                }),
                outbox: Box::new({
                    let db = db.clone();
                    move || {
                        let db = db.clone();
                        Box::pin(async move {
                            let (pending, failed) = db
                                .read_public(async |tx| model::outbox_stats::backlog(&tx).await)
                                .await?;
                            Ok(OutboxBacklog { pending, failed })
                        })
                    }
                }),
            },
        ));
        let request_ids = Arc::new(RequestIds::new(config.request_id_header.as_deref())?);
        let endpoint = {
            let metrics = metrics.clone();
            endpoint
                .around(move |next, req| {
                    request_telemetry::observe(next, req, request_ids.clone(), metrics.clone())
                })
                .boxed()
        };
        let (metrics_acceptor, metrics_port) = match config.metrics_addr {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding METRICS_ADDR {addr}"))?;
                let port = listener.local_addr()?.port();
                (Some(TcpAcceptor::from_tokio(listener)?), Some(port))
            }
            None => (None, None),
        };
        let host = match config.bind_addr.ip() {
            ip if ip.is_unspecified() || ip.is_loopback() => "localhost".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        Ok(Self {
            acceptor,
            port,
            local_url: format!("http://{host}:{port}"),
            public_base_url: config.public_base_url.clone(),
            endpoint,
            database,
            db,
            event_writer,
            maintenance,
            cards,
            image_decodes,
            ingest_stats,
            throttle_sweep,
            metrics,
            metrics_acceptor,
            metrics_port,
            audit_retention,
            lead_retention,
            outbox,
            webhooks,
            password_resets: password_reset_task,
            live,
        })
    }

    /// The port of the metrics listener (`GET /metrics`), unless `METRICS_ADDR=off`.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// The public path's caches and counters (tests look at what a request cost).
    pub fn public_cards(&self) -> Arc<api::cards::PublicCards> {
        self.cards.clone()
    }

    /// The budget of image decodes (tests fill it to see uploads refused).
    pub fn image_decodes(&self) -> Arc<WorkBudget> {
        self.image_decodes.clone()
    }

    /// The analytics writer's counters (tests see when events were handed over).
    pub fn ingest_stats(&self) -> Arc<IngestStats> {
        self.ingest_stats.clone()
    }

    /// The live-feed hub (tests see when a console's stream has subscribed).
    pub fn live_hub(&self) -> Arc<LiveHub> {
        self.live.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Serves until `shutdown` resolves; requests in flight then get up to 30 s to finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        tracing::info!(
            public_base_url = %self.public_base_url,
            "listening on {url}, API docs at {url}/docs",
            url = self.local_url
        );
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_server = self.metrics_acceptor.map(|acceptor| {
            tracing::info!(port = self.metrics_port, "metrics served at /metrics");
            tokio::spawn(
                Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                    telemetry_metrics::endpoint(self.metrics.clone()),
                    async move {
                        let _ = metrics_stopped.await;
                    },
                    Some(Duration::from_secs(1)),
                ),
            )
        });
        // Live feeds never end by themselves: closing them as the shutdown starts lets the
        // graceful shutdown wait only for ordinary requests.
        let live = self.live.clone();
        let shutdown = async move {
            shutdown.await;
            live.close();
        };
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.endpoint, shutdown, Some(Duration::from_secs(30)))
            .await;
        // Scraped until the service stops answering, then no more.
        let _ = stop_metrics.send(());
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
        served?;
        self.maintenance.abort();
        self.cards.stop_listening();
        self.live.close();
        self.throttle_sweep.abort();
        self.audit_retention.abort();
        self.lead_retention.abort();
        self.password_resets.abort();
        // Messages being sent get to finish; the rest wait in the outbox for the next start. The
        // webhook worker stops first: its last attempts may queue an email.
        self.webhooks.stop(Duration::from_secs(15)).await;
        self.outbox.stop(Duration::from_secs(45)).await;
        // Every acknowledged event is committed already; this stores the page views still queued.
        if tokio::time::timeout(Duration::from_secs(10), self.event_writer)
            .await
            .is_err()
        {
            tracing::warn!("analytics events still queued at shutdown were not stored");
        }
        drop(self.db);
        self.database.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Deletes audit events older than `retention_days`, now and then every `period`, through the
/// `SECURITY DEFINER` `audit_purge`, the only way anything leaves the trail.
async fn purge_audit_every(db: Db, retention_days: u32, period: Duration) {
    use crate::{db::Tenant, model::audit};
    let days = i32::try_from(retention_days).unwrap_or(i32::MAX);
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        let purged = purge_in_batches("audit retention", audit::PURGE_BATCH, || async {
            db.write(&Tenant::maintenance(), async |tx| {
                audit::purge_expired(&tx, days).await
            })
            .await
        })
        .await;
        if purged > 0 {
            tracing::info!(purged, retention_days, "audit retention applied");
        }
    }
}

/// Erases leads older than their company's `lead_retention_days`, now and then every `period`,
/// through the `SECURITY DEFINER` `leads_purge`, which erases their queued messages and webhook
/// deliveries too, as an erasure by an admin does.
async fn purge_leads_every(db: Db, period: Duration) {
    use crate::{db::Tenant, model::lead};
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        let purged = purge_in_batches("lead retention", lead::PURGE_BATCH, || async {
            db.write(&Tenant::maintenance(), async |tx| {
                lead::purge_expired(&tx).await
            })
            .await
        })
        .await;
        if purged > 0 {
            tracing::info!(purged, "lead retention applied");
        }
    }
}

/// Runs `batch` (one short transaction deleting at most `batch_size` rows) until a batch comes
/// back short, and answers how many rows went. A failure is logged and ends the round; the next
/// round tries again.
async fn purge_in_batches<F, Fut>(what: &str, batch_size: i32, mut batch: F) -> i64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<i64, crate::db::DbError>>,
{
    let mut purged = 0;
    loop {
        match batch().await {
            Ok(deleted) => {
                purged += deleted;
                if deleted < i64::from(batch_size) {
                    return purged;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed");
                return purged;
            }
        }
    }
}

/// The outbox worker, sending over SMTP, or without `SMTP_URL` into `DATA_DIR/outbox/`.
fn start_outbox(config: &Config, db: &Db) -> anyhow::Result<OutboxWorker> {
    let mail = &config.mail;
    let files = config.data_dir.join("outbox");
    let mailer = Mailer::new(
        mail.smtp_url.as_ref().map(|url| url.expose()),
        mail.smtp_ca_file.as_deref(),
        &mail.from,
        files.clone(),
    )?;
    if mail.smtp_url.is_none() {
        if config.environment == Environment::Production {
            tracing::warn!(
                "no SMTP_URL: emails are only written to {}",
                files.display()
            );
        } else {
            tracing::info!(dir = %files.display(), "no SMTP_URL: emails are written to files");
        }
    }
    let pacing = Pacing {
        poll_interval: mail.poll_interval,
        retry_base: mail.retry_base,
        max_attempts: mail.max_attempts,
    };
    Ok(OutboxWorker::start(
        db.clone(),
        vec![Box::new(EmailDispatch(Arc::new(mailer)))],
        pacing,
    ))
}

/// Decodes in flight are bounded by estimated memory (in KiB units) and by count; a few more
/// may wait briefly for room, the rest are refused at once.
fn image_decode_budget(limits: &ImageDecodeLimits) -> WorkBudget {
    let units = api::media::decode_units(limits.memory_bytes);
    WorkBudget::new(
        u32::try_from(units).unwrap_or(u32::MAX),
        limits.max_decodes,
        limits.max_decodes * 8,
        IMAGE_DECODE_WAIT,
    )
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutdown signal received, finishing requests in flight");
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn the_public_origin_is_spelled_as_browsers_send_it() {
        assert_eq!(
            origin_of("https://Cards.example.com:443/c"),
            "https://cards.example.com"
        );
        assert_eq!(origin_of("http://localhost:8000"), "http://localhost:8000");
        assert_eq!(origin_of("http://example.com:80"), "http://example.com");
    }
}
