//! Builds the application: database (external or a local cluster), migrations, pool, routes,
//! listener; then serves until a shutdown signal, letting in-flight requests finish.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server,
    endpoint::BoxEndpoint,
    get,
    listener::{Acceptor, TcpAcceptor},
    middleware::{Cors, Tracing},
};
use tokio_postgres::NoTls;

use tokio::task::JoinHandle;

use crate::{
    analytics::{self, collector::Collector, ingest::EventSink},
    api::{self, AppState},
    auth::{JwtKeys, password::HashingPool, throttle::LoginThrottle},
    card::budget::WorkBudget,
    config::{Config, Environment, ImageDecodeLimits},
    db::{Db, embedded::LocalCluster, migrations},
    error,
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
    let allowed = std::sync::Arc::new(api::spec::AllowedMethods::of(&api::spec_value()));
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
    let app = Route::new()
        .nest("/api", api)
        .at(
            "/card/:company_slug/:employee_slug",
            get(api::cards::card_page),
        )
        .at("/media/:kind/:company_id/:file", get(api::media::serve))
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        // Inside `limit_body`, which bounds the bodies it reads.
        .around(api::nul::refuse_nul)
        .around(limit_body)
        .around(move |next, req| contract_headers(next, req, allowed.clone()))
        .data(state)
        .data(jwt)
        .catch_all_error(error::render)
        .around(error::retry_after_on_503);
    let app = if cors_origins.is_empty() {
        app.boxed()
    } else {
        let mut cors = Cors::new()
            .allow_credentials(false)
            .expose_header("X-Total-Count")
            .expose_header("X-Next-Cursor");
        for origin in cors_origins {
            cors = if origin == "*" {
                cors
            } else {
                cors.allow_origin(origin.as_str())
            };
        }
        app.with(cors).boxed()
    };
    app.with(Tracing).boxed()
}

/// Refuses bodies over [`MAX_BODY_BYTES`]: by their declared length when they have one, by
/// reading at most that much when they are chunked.
async fn limit_body<E: Endpoint>(
    next: std::sync::Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    // Image uploads are the one place where a body may be larger; a tracking beacon is tiny.
    let limit = if api::media::is_upload_route(req.method(), req.uri().path()) {
        api::media::MAX_UPLOAD_REQUEST_BYTES
    } else if req.uri().path() == "/api/analytics/track" {
        api::tracking::MAX_TRACK_BODY_BYTES
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

/// Headers the spec promises on refusals: a 405 of the API says which methods the path takes
/// (`Allow`), and every 429 and 503 says when to come back (`Retry-After`).
async fn contract_headers<E: Endpoint>(
    next: std::sync::Arc<E>,
    req: Request,
    allowed: std::sync::Arc<api::spec::AllowedMethods>,
) -> poem::Result<Response> {
    use poem::http::{HeaderValue, StatusCode, header};
    let methods = req
        .uri()
        .path()
        .strip_prefix("/api")
        .and_then(|path| allowed.for_path(path))
        .map(str::to_owned);
    let mut response = match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(err) => error::render(err).await,
    };
    let status = response.status();
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(value) = methods.and_then(|m| m.parse().ok())
    {
        response.headers_mut().insert(header::ALLOW, value);
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
    endpoint: BoxEndpoint<'static>,
    database: Database,
    db: Db,
    /// Stores tracked events; finishes once the server (and so every queue sender) is gone.
    event_writer: JoinHandle<()>,
    maintenance: JoinHandle<()>,
    cards: Arc<api::cards::PublicCards>,
    image_decodes: Arc<WorkBudget>,
    throttle_sweep: JoinHandle<()>,
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
        let state = AppState {
            db: db.clone(),
            jwt: JwtKeys::new(config.jwt_secret.expose(), config.jwt_ttl),
            public_base_url: config.public_base_url.clone(),
            cards: cards.clone(),
            analytics,
            image_decodes: image_decodes.clone(),
            passwords,
            throttle,
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
        Ok(Self {
            acceptor,
            port,
            endpoint,
            database,
            db,
            event_writer,
            maintenance,
            cards,
            image_decodes,
            throttle_sweep,
        })
    }

    /// The public path's caches and counters (tests look at what a request cost).
    pub fn public_cards(&self) -> Arc<api::cards::PublicCards> {
        self.cards.clone()
    }

    /// The budget of image decodes (tests fill it to see uploads refused).
    pub fn image_decodes(&self) -> Arc<WorkBudget> {
        self.image_decodes.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Serves until `shutdown` resolves; requests in flight then get up to 30 s to finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "listening");
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.endpoint, shutdown, Some(Duration::from_secs(30)))
            .await?;
        self.maintenance.abort();
        self.cards.stop_listening();
        self.throttle_sweep.abort();
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
