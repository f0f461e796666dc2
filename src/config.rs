//! Configuration from environment variables, with development defaults.
//!
//! `DATABASE_TIMEOUT` (default 5s; e.g. `3`, `2500ms`, `10s`) bounds every database operation of
//! a request, waiting for a pooled connection included (the pool itself waits at most 5 s for one);
//! past it the request answers 503 `database_unavailable` and the connection is closed.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail, ensure};
use rand::RngCore;

/// Every variable [`Config::from_env`] reads, with what it sets: the `--help` of each command
/// lists them (a unit test checks that none is missing).
pub const ENV_VARS: &[(&str, &str)] = &[
    ("APP_ENV", "`development` (default) or `production`"),
    ("BIND_ADDR", "address to listen on [default: 0.0.0.0:8000]"),
    (
        "PUBLIC_BASE_URL",
        "absolute base of public links [default: http://localhost:PORT]",
    ),
    (
        "CORS_ORIGINS",
        "comma-separated origins of browser apps allowed to call the API",
    ),
    (
        "DATABASE_URL",
        "PostgreSQL URL of the schema owner; unset: a local cluster under DATA_DIR",
    ),
    (
        "DATABASE_APP_PASSWORD",
        "password set on the `callingcard_app` role",
    ),
    (
        "DATABASE_POOL_SIZE",
        "pooled connections [default: 4 per core, 8 to 32]",
    ),
    (
        "DATABASE_TIMEOUT",
        "how long one request's database work may take [default: 5s]",
    ),
    (
        "DATA_DIR",
        "local cluster and development JWT secret [default: .data]",
    ),
    (
        "JWT_SECRET",
        "token signing secret, 32+ characters (required in production)",
    ),
    (
        "JWT_TTL",
        "access token lifetime, e.g. 900, 15m or 1h [default: 15m]",
    ),
    (
        "SESSION_TTL",
        "a session's absolute lifetime, refreshed or not [default: 30d]",
    ),
    (
        "SESSION_IDLE_TTL",
        "a session ends when not refreshed for this long [default: 7d]",
    ),
    (
        "CLIENT_IP_HEADER",
        "header of a trusted proxy holding the client address",
    ),
    (
        "REGION_HEADER",
        "header of a trusted CDN holding the visitor's country",
    ),
    (
        "PUBLIC_MISS_BURST",
        "public cache misses a client may cause at once [default: 100]",
    ),
    ("PUBLIC_MISS_PER_SECOND", "and then per second [default: 1]"),
    (
        "UNKNOWN_SLUG_TTL",
        "how long an unknown card slug is remembered [default: 60s]",
    ),
    ("QR_RENDERS", "QR codes rendered at once [default: cores]"),
    (
        "LEADS_PER_ADDRESS_PER_HOUR",
        "leads a client address may leave in an hour [default: 10]",
    ),
    (
        "LEADS_PER_CARD_PER_HOUR",
        "leads one card takes in an hour [default: 60]",
    ),
    (
        "LEAD_MIN_FILL_SECONDS",
        "shortest time between serving a card's form and taking its lead [default: 3]",
    ),
    (
        "IMAGE_DECODE_MEMORY_MB",
        "memory of image decodes in flight [default: 320]",
    ),
    ("IMAGE_DECODES", "image decodes at once [default: cores]"),
    (
        "PASSWORD_HASH_THREADS",
        "threads hashing passwords [default: cores - 1, at least 1]",
    ),
    (
        "PASSWORD_HASH_QUEUE",
        "password checks waiting for a thread [default: 8 per thread]",
    ),
    (
        "PASSWORD_HASH_MAX_WAIT",
        "longest wait for a hashing thread [default: 2s]",
    ),
    (
        "AUTH_ACCOUNT_FAILURES_PER_HOUR",
        "failed logins per account an hour [default: 100]",
    ),
    (
        "AUTH_ADDRESS_FAILURES_PER_MINUTE",
        "failed logins per address a minute [default: 5]",
    ),
    (
        "AUTH_ADDRESS_SIGNUPS_PER_HOUR",
        "sign-ups per address an hour [default: 10]",
    ),
    (
        "AUTH_ADDRESS_TOKEN_BURST",
        "refresh and invitation tokens per address at once [default: 30]",
    ),
    (
        "AUTH_ADDRESS_TOKENS_PER_HOUR",
        "and then per hour [default: 3600]",
    ),
    (
        "AUTH_TRUSTED_ADDRESS_TTL",
        "how long a login's address stays trusted [default: 30d]",
    ),
    (
        "METRICS_ADDR",
        "address of the Prometheus metrics listener, or `off` [default: 127.0.0.1:9898]",
    ),
    (
        "REQUEST_ID_HEADER",
        "header of a trusted proxy holding the request id, e.g. X-Request-Id",
    ),
    (
        "AUDIT_RETENTION_DAYS",
        "days audit events are kept, 30 or more [default: 365]",
    ),
    (
        "LIVE_FEED_PER_COMPANY",
        "live activity streams open at once per company [default: 20]",
    ),
    (
        "LIVE_FEED_TOTAL",
        "live activity streams open at once on this instance [default: 1000]",
    ),
    (
        "LIVE_FEED_RECHECK",
        "how often an open live stream checks its caller's session [default: 60s]",
    ),
    (
        "SMTP_URL",
        "smtp://[user:pass@]host[:port] (?tls=required for STARTTLS) or smtps://…; unset: .eml files under DATA_DIR/outbox",
    ),
    (
        "SMTP_CA_FILE",
        "PEM certificate of a private CA the SMTP server's TLS certificate is signed by (trusted besides the public roots)",
    ),
    (
        "MAIL_FROM",
        "sender address of emails [default: CallingCard <no-reply@localhost>]",
    ),
    (
        "OUTBOX_POLL_INTERVAL",
        "longest the outbox worker sleeps without looking [default: 30s]",
    ),
    (
        "OUTBOX_RETRY_BASE",
        "wait after a first failed send, doubled each time [default: 5s]",
    ),
    (
        "OUTBOX_MAX_ATTEMPTS",
        "sends tried before a message is given up [default: 12]",
    ),
    (
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS",
        "`true`: webhooks may reach loopback and private addresses, and over http (development, tests) [default: false]",
    ),
    (
        "WEBHOOK_RETRY_BASE",
        "wait after a first failed webhook delivery, doubled each time [default: 20s]",
    ),
    (
        "WEBHOOK_RETRY_WINDOW",
        "how long after its first attempt a webhook delivery is retried [default: 24h]",
    ),
    (
        "WEBHOOK_CONCURRENCY",
        "webhook deliveries in flight at once on this instance [default: 16]",
    ),
    (
        "AUTH_ACCOUNT_EMAILS_PER_HOUR",
        "reset or verification emails per account an hour [default: 5]",
    ),
    (
        "AUTH_ADDRESS_EMAIL_REQUESTS_PER_HOUR",
        "forgotten-password and verification requests per address an hour [default: 20]",
    ),
];

/// Variables read outside [`Config`]: by the logger and by the local cluster.
pub const PROCESS_ENV_VARS: &[(&str, &str)] = &[
    (
        "RUST_LOG",
        "log filter, e.g. debug or info,callingcard=debug [default: info,poem=warn]",
    ),
    (
        "LOG_FORMAT",
        "`text` (default) or `json`, one object a line",
    ),
    (
        "POSTGRES_BIN_DIR",
        "where initdb and postgres are, for the local cluster",
    ),
];

/// The `Environment:` section of `--help`.
pub fn env_help() -> String {
    let width = ENV_VARS
        .iter()
        .chain(PROCESS_ENV_VARS)
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    let mut help = String::from("Environment:\n");
    for (name, what) in ENV_VARS.iter().chain(PROCESS_ENV_VARS) {
        help.push_str(&format!("  {name:<width$}  {what}\n"));
    }
    help
}

/// A value that must never reach a log line or a Debug print.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub environment: Environment,
    /// Connection of the schema owner: migrations run with it. The service itself logs in as
    /// `callingcard_app` on the same server and database. `None`: run a local cluster.
    pub database_url: Option<Secret>,
    /// Password of `callingcard_app`, set on the role at start-up when given.
    pub database_app_password: Option<Secret>,
    pub database_pool_size: usize,
    /// `DATABASE_TIMEOUT`: how long one database operation may take in all.
    pub database_timeout: Duration,
    pub bind_addr: SocketAddr,
    pub jwt_secret: Secret,
    /// `JWT_TTL`: how long an access token lives (default 15 minutes). Revocation does not wait
    /// for it (every request checks its session), but a short life bounds a stolen token.
    pub jwt_ttl: Duration,
    /// `SESSION_TTL` (default 30 days) and `SESSION_IDLE_TTL` (default 7 days).
    pub sessions: crate::auth::SessionLifetimes,
    pub public_base_url: String,
    pub cors_origins: Vec<String>,
    /// Where the local cluster and the development JWT secret live.
    pub data_dir: PathBuf,
    /// A header set by a trusted proxy holding the client's address (e.g. `X-Forwarded-For`,
    /// whose last entry is used); `None`: the connection's peer address.
    pub client_ip_header: Option<String>,
    /// A header set by a trusted CDN holding the visitor's country or region (e.g.
    /// `CF-IPCountry`); it takes precedence over a region sent by the page.
    pub region_header: Option<String>,
    /// Bounds on what anonymous visitors of public cards can make the server do.
    pub public_limits: PublicLimits,
    /// Bounds on decoding uploaded images.
    pub image_decode: ImageDecodeLimits,
    /// Bounds on password hashing and on guessing passwords.
    pub auth: AuthLimits,
    /// `METRICS_ADDR`: where Prometheus metrics are served (`GET /metrics`), apart from the
    /// public port; `None` (`off`): not at all.
    pub metrics_addr: Option<SocketAddr>,
    /// `REQUEST_ID_HEADER`: a header set by a trusted proxy holding the request's id (e.g.
    /// `X-Request-Id`); `None`: every request id is made here.
    pub request_id_header: Option<String>,
    /// `AUDIT_RETENTION_DAYS`: how long audit events are kept (default 365; at least 30, which
    /// the database enforces too).
    pub audit_retention_days: u32,
    /// How email is sent, and how often.
    pub mail: MailConfig,
    /// How many live activity streams may be open at once.
    pub live_feed: LiveFeedLimits,
    /// Where webhooks may point, and how their deliveries are retried (`WEBHOOK_*`).
    pub webhooks: crate::webhook::config::WebhookConfig,
}

/// Every open live activity stream holds a connection and a subscription: bounded per company
/// (so one company's open tabs cannot take everyone's room) and on the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveFeedLimits {
    /// `LIVE_FEED_PER_COMPANY` (default 20).
    pub per_company: usize,
    /// `LIVE_FEED_TOTAL` (default 1000).
    pub total: usize,
    /// `LIVE_FEED_RECHECK`: how often an open stream checks that its caller's session and
    /// access still hold (default 60 s).
    pub recheck: Duration,
}

/// Email: the transport, the sender, the outbox worker's pace, and what a client may ask for.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// `SMTP_URL`; `None`: messages are written to `DATA_DIR/outbox/` as `.eml` files.
    pub smtp_url: Option<Secret>,
    /// `SMTP_CA_FILE`: a PEM certificate trusted, besides the public roots, for the mail
    /// server's TLS (`smtps://`, `?tls=required|opportunistic`).
    pub smtp_ca_file: Option<PathBuf>,
    /// `MAIL_FROM`: the address (and, for messages of no company, the name) emails come from.
    pub from: String,
    /// `OUTBOX_POLL_INTERVAL`: the longest the worker sleeps without looking (a notification
    /// wakes it sooner).
    pub poll_interval: Duration,
    /// `OUTBOX_RETRY_BASE`: the wait after a first failure, doubled after each (at most 1 h).
    pub retry_base: Duration,
    /// `OUTBOX_MAX_ATTEMPTS`: attempts before a message is given up.
    pub max_attempts: u32,
    /// `AUTH_ACCOUNT_EMAILS_PER_HOUR`: password reset (or verification) emails one account may
    /// be sent in an hour; further requests send nothing (and answer the same).
    pub account_emails_per_hour: u32,
    /// `AUTH_ADDRESS_EMAIL_REQUESTS_PER_HOUR`: forgotten-password and new-verification-link
    /// requests per client address (then 429).
    pub address_requests_per_hour: u32,
}

impl MailConfig {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let duration = |key: &str, default: u64| -> anyhow::Result<Duration> {
            match lookup(key) {
                Some(raw) => parse_duration(&raw).with_context(|| format!("{key}, e.g. 30s")),
                None => Ok(Duration::from_secs(default)),
            }
        };
        let smtp_url = lookup("SMTP_URL").map(|url| url.trim().to_owned());
        if let Some(url) = &smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            bail!("SMTP_URL must start with smtp:// or smtps://");
        }
        Ok(Self {
            smtp_url: smtp_url.map(Secret::new),
            smtp_ca_file: lookup("SMTP_CA_FILE")
                .map(|path| path.trim().to_owned())
                .filter(|path| !path.is_empty())
                .map(PathBuf::from),
            from: lookup("MAIL_FROM")
                .map(|from| from.trim().to_owned())
                .unwrap_or_else(|| "CallingCard <no-reply@localhost>".into()),
            poll_interval: duration("OUTBOX_POLL_INTERVAL", 30)?,
            retry_base: duration("OUTBOX_RETRY_BASE", 5)?,
            max_attempts: number(lookup, "OUTBOX_MAX_ATTEMPTS", 12, 1..=100)?,
            account_emails_per_hour: number(lookup, "AUTH_ACCOUNT_EMAILS_PER_HOUR", 5, 1..=1000)?,
            address_requests_per_hour: number(
                lookup,
                "AUTH_ADDRESS_EMAIL_REQUESTS_PER_HOUR",
                20,
                1..=100_000,
            )?,
        })
    }
}

/// What a visitor's requests may cost: cache hits are free, misses (a database lookup, a QR
/// code or vCard rendered) are counted per client address.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicLimits {
    /// `PUBLIC_MISS_BURST`: cache misses a client address may cause at once (default 100).
    pub miss_burst: u32,
    /// `PUBLIC_MISS_PER_SECOND`: and then per second (default 1).
    pub miss_per_second: f64,
    /// `UNKNOWN_SLUG_TTL`: how long a slug that names no card is remembered (default 60 s;
    /// forgotten at once when a card with it appears).
    pub unknown_slug_ttl: Duration,
    /// `QR_RENDERS`: QR codes rendered at once (default: the number of cores).
    pub qr_renders: usize,
    /// `LEADS_PER_ADDRESS_PER_HOUR`: leads a client address may leave in an hour, on any cards
    /// (default 10, all at once at most).
    pub leads_per_address_per_hour: u32,
    /// `LEADS_PER_CARD_PER_HOUR`: leads one card takes in an hour, from anyone (default 60).
    pub leads_per_card_per_hour: u32,
    /// `LEAD_MIN_FILL_SECONDS`: a lead sent back sooner after its form was served is refused as
    /// a script's (default 3 s).
    pub lead_min_fill: Duration,
}

/// Decoding an upload takes memory in proportion to its pixels, not its bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageDecodeLimits {
    /// `IMAGE_DECODE_MEMORY_MB`: estimated memory of all decodes in flight (default 320 MiB: two
    /// 40-megapixel photos at once, the process staying under 512 MB).
    pub memory_bytes: u64,
    /// `IMAGE_DECODES`: decodes at once (default: the number of cores).
    pub max_decodes: usize,
}

/// How much password work the service accepts, in total and per client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthLimits {
    /// Threads hashing passwords (`PASSWORD_HASH_THREADS`, default: one fewer than the cores, at
    /// least one: a login storm always leaves a core to the cards and the API).
    pub hash_threads: usize,
    /// Password checks waiting for a thread beyond those running (`PASSWORD_HASH_QUEUE`).
    pub hash_queue: usize,
    /// The longest a password check may wait for a thread (`PASSWORD_HASH_MAX_WAIT`).
    pub hash_max_wait: Duration,
    /// Failed logins per account an hour, counted by every instance together
    /// (`AUTH_ACCOUNT_FAILURES_PER_HOUR`, default 100: OWASP ASVS 4 §2.2.1).
    pub account_failures_per_hour: u32,
    /// Failed logins and wrong current passwords per client address a minute
    /// (`AUTH_ADDRESS_FAILURES_PER_MINUTE`, default 5).
    pub address_failures_per_minute: u32,
    /// Sign-ups per client address an hour (`AUTH_ADDRESS_SIGNUPS_PER_HOUR`, default 10).
    pub address_signups_per_hour: u32,
    /// Refresh tokens and invitation tokens presented per client address, each endpoint on its
    /// own (`AUTH_ADDRESS_TOKEN_BURST`, default 30 at once, then `AUTH_ADDRESS_TOKENS_PER_HOUR`,
    /// default 3600: one a second). Each guess costs a transaction; a real client presents a
    /// handful an hour.
    pub address_token_burst: u32,
    pub address_tokens_per_hour: u32,
    /// How long an address that logged in to an account stays trusted by it: such an address
    /// still gets in while strangers have used up the account's failures
    /// (`AUTH_TRUSTED_ADDRESS_TTL`, default 30 days).
    pub trusted_address_ttl: Duration,
}

impl AuthLimits {
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let default_threads = cores.saturating_sub(1).clamp(1, 64);
        let hash_threads = number(lookup, "PASSWORD_HASH_THREADS", default_threads, 1..=64)?;
        Ok(Self {
            hash_threads,
            hash_queue: number(lookup, "PASSWORD_HASH_QUEUE", 8 * hash_threads, 0..=4096)?,
            hash_max_wait: match lookup("PASSWORD_HASH_MAX_WAIT") {
                Some(raw) => parse_duration(&raw).context("PASSWORD_HASH_MAX_WAIT, e.g. 2s")?,
                None => Duration::from_secs(2),
            },
            account_failures_per_hour: number(
                lookup,
                "AUTH_ACCOUNT_FAILURES_PER_HOUR",
                100,
                1..=100_000,
            )?,
            address_failures_per_minute: number(
                lookup,
                "AUTH_ADDRESS_FAILURES_PER_MINUTE",
                5,
                1..=100_000,
            )?,
            address_signups_per_hour: number(
                lookup,
                "AUTH_ADDRESS_SIGNUPS_PER_HOUR",
                10,
                1..=100_000,
            )?,
            address_token_burst: number(lookup, "AUTH_ADDRESS_TOKEN_BURST", 30, 1..=100_000)?,
            address_tokens_per_hour: number(
                lookup,
                "AUTH_ADDRESS_TOKENS_PER_HOUR",
                3600,
                1..=1_000_000,
            )?,
            trusted_address_ttl: match lookup("AUTH_TRUSTED_ADDRESS_TTL") {
                Some(raw) => parse_duration(&raw).context("AUTH_TRUSTED_ADDRESS_TTL, e.g. 30d")?,
                None => Duration::from_secs(30 * 86_400),
            },
        })
    }
}

/// `key` parsed as a number within `range`, or `default` when unset.
fn number<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(raw) = lookup(key) else {
        return Ok(default);
    };
    raw.trim()
        .parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .with_context(|| {
            format!(
                "{key} must be a number from {} to {}",
                range.start(),
                range.end()
            )
        })
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Reads configuration through `lookup`, so tests can supply their own variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let environment = match lookup("APP_ENV").as_deref() {
            None | Some("development") | Some("dev") | Some("test") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => bail!("APP_ENV must be `development` or `production`, not `{other}`"),
        };
        let data_dir = PathBuf::from(lookup("DATA_DIR").unwrap_or_else(|| ".data".into()));
        let bind_addr: SocketAddr = lookup("BIND_ADDR")
            .unwrap_or_else(|| "0.0.0.0:8000".into())
            .parse()
            .context("BIND_ADDR must look like 0.0.0.0:8000")?;
        let jwt_secret = match (lookup("JWT_SECRET"), environment) {
            (Some(secret), _) if secret.len() < 32 => {
                bail!("JWT_SECRET must be at least 32 characters long")
            }
            (Some(secret), _) => Secret::new(secret),
            (None, Environment::Production) => {
                bail!("JWT_SECRET is required when APP_ENV=production")
            }
            (None, Environment::Development) => development_jwt_secret(&data_dir)?,
        };
        let jwt_ttl = match lookup("JWT_TTL") {
            Some(raw) => parse_duration(&raw).context("JWT_TTL, e.g. 3600, 90m, 12h or 7d")?,
            None => Duration::from_secs(15 * 60),
        };
        let defaults = crate::auth::SessionLifetimes::default();
        let sessions = crate::auth::SessionLifetimes {
            absolute: match lookup("SESSION_TTL") {
                Some(raw) => parse_duration(&raw).context("SESSION_TTL, e.g. 30d")?,
                None => defaults.absolute,
            },
            idle: match lookup("SESSION_IDLE_TTL") {
                Some(raw) => parse_duration(&raw).context("SESSION_IDLE_TTL, e.g. 7d")?,
                None => defaults.idle,
            },
        };
        let public_base_url = lookup("PUBLIC_BASE_URL")
            .unwrap_or_else(|| format!("http://localhost:{}", bind_addr.port()))
            .trim_end_matches('/')
            .to_owned();
        if !(public_base_url.starts_with("http://") || public_base_url.starts_with("https://")) {
            bail!("PUBLIC_BASE_URL must start with http:// or https://");
        }
        let cors_origins = lookup("CORS_ORIGINS")
            .map(|raw| {
                raw.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let database_pool_size = match lookup("DATABASE_POOL_SIZE") {
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .context("DATABASE_POOL_SIZE must be a number from 1 to 1000")?,
            None => (std::thread::available_parallelism().map_or(2, |n| n.get()) * 4).clamp(8, 32),
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let public_limits = PublicLimits {
            miss_burst: number(&lookup, "PUBLIC_MISS_BURST", 100, 1..=1_000_000)?,
            miss_per_second: number(&lookup, "PUBLIC_MISS_PER_SECOND", 1.0, 0.001..=1e6)?,
            unknown_slug_ttl: match lookup("UNKNOWN_SLUG_TTL") {
                Some(raw) => parse_duration(&raw).context("UNKNOWN_SLUG_TTL, e.g. 60 or 5m")?,
                None => Duration::from_secs(60),
            },
            qr_renders: number(&lookup, "QR_RENDERS", cores, 1..=1024)?,
            leads_per_address_per_hour: number(
                &lookup,
                "LEADS_PER_ADDRESS_PER_HOUR",
                10,
                1..=1_000_000,
            )?,
            leads_per_card_per_hour: number(&lookup, "LEADS_PER_CARD_PER_HOUR", 60, 1..=1_000_000)?,
            lead_min_fill: Duration::from_secs(number(
                &lookup,
                "LEAD_MIN_FILL_SECONDS",
                3,
                0..=3600,
            )?),
        };
        let image_decode = ImageDecodeLimits {
            memory_bytes: number(&lookup, "IMAGE_DECODE_MEMORY_MB", 320, 1..=1 << 20)? << 20,
            max_decodes: number(&lookup, "IMAGE_DECODES", cores, 1..=1024)?,
        };
        let database_timeout = match lookup("DATABASE_TIMEOUT") {
            Some(raw) => parse_duration(&raw).context("DATABASE_TIMEOUT, e.g. 5, 2500ms or 10s")?,
            None => crate::db::DEFAULT_DEADLINE,
        };
        Ok(Self {
            environment,
            database_url: lookup("DATABASE_URL").map(Secret::new),
            database_app_password: lookup("DATABASE_APP_PASSWORD").map(Secret::new),
            database_pool_size,
            database_timeout,
            bind_addr,
            jwt_secret,
            jwt_ttl,
            sessions,
            public_base_url,
            cors_origins,
            data_dir,
            client_ip_header: lookup("CLIENT_IP_HEADER").map(|h| h.trim().to_owned()),
            region_header: lookup("REGION_HEADER").map(|h| h.trim().to_owned()),
            public_limits,
            image_decode,
            auth: AuthLimits::from_lookup(&lookup)?,
            metrics_addr: match lookup("METRICS_ADDR").as_deref().map(str::trim) {
                Some("off") => None,
                Some(raw) => Some(
                    raw.parse()
                        .context("METRICS_ADDR must look like 127.0.0.1:9898, or be `off`")?,
                ),
                None => Some(SocketAddr::from(([127, 0, 0, 1], 9898))),
            },
            request_id_header: lookup("REQUEST_ID_HEADER").map(|h| h.trim().to_owned()),
            audit_retention_days: number(&lookup, "AUDIT_RETENTION_DAYS", 365, 30..=36_500)?,
            mail: MailConfig::from_lookup(&lookup)?,
            webhooks: crate::webhook::config::WebhookConfig::from_lookup(&lookup)?,
            live_feed: LiveFeedLimits {
                per_company: number(&lookup, "LIVE_FEED_PER_COMPANY", 20, 1..=10_000)?,
                total: number(&lookup, "LIVE_FEED_TOTAL", 1000, 1..=100_000)?,
                recheck: match lookup("LIVE_FEED_RECHECK") {
                    Some(raw) => parse_duration(&raw)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .context("LIVE_FEED_RECHECK, e.g. 60s or 5m")?,
                    None => Duration::from_secs(60),
                },
            },
        })
    }
}

/// In development, tokens should survive restarts without anyone choosing a secret: generate one
/// on first start and keep it (mode 0600) in the data directory.
fn development_jwt_secret(data_dir: &std::path::Path) -> anyhow::Result<Secret> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("jwt_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(Secret::new(existing));
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = crate::hex::lower(&bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, secret.as_bytes())?;
    Ok(Secret::new(secret))
}

/// `3600`, `3600s`, `90m`, `12h`, `7d`, `250ms`.
pub fn parse_duration(raw: &str) -> anyhow::Result<Duration> {
    let raw = raw.trim();
    let (digits, unit) = match raw.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: u64 = digits.parse().context("not a number")?;
    if unit == "ms" {
        ensure!(n > 0, "must be positive");
        return Ok(Duration::from_millis(n));
    }
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("unknown unit `{unit}`"),
    };
    if secs == 0 {
        bail!("must be positive");
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    #[test]
    fn help_lists_every_variable_the_configuration_reads() {
        let read = std::sync::Mutex::new(Vec::new());
        let secret = "0123456789abcdef0123456789abcdef".to_owned();
        Config::from_lookup(|key| {
            read.lock().unwrap().push(key.to_owned());
            (key == "JWT_SECRET").then(|| secret.clone())
        })
        .unwrap();
        let mut read = read.into_inner().unwrap();
        read.sort();
        read.dedup();
        let mut listed: Vec<String> = ENV_VARS.iter().map(|(k, _)| k.to_string()).collect();
        listed.sort();
        assert_eq!(read, listed);
        let help = env_help();
        for (name, _) in ENV_VARS.iter().chain(PROCESS_ENV_VARS) {
            assert!(help.contains(name), "{name} missing from --help");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("0ms").is_err());
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn production_requires_a_jwt_secret() {
        let err = config(&[("APP_ENV", "production")]).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"));
        assert!(config(&[("JWT_SECRET", "short")]).is_err());
    }

    #[test]
    fn development_secret_is_generated_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("cc-config-{}", uuid::Uuid::new_v4()));
        let dir_str = dir.to_str().unwrap();
        let first = config(&[("DATA_DIR", dir_str)]).unwrap();
        let second = config(&[("DATA_DIR", dir_str)]).unwrap();
        assert_eq!(first.jwt_secret.expose(), second.jwt_secret.expose());
        assert_eq!(first.jwt_secret.expose().len(), 64);
        assert!(!format!("{first:?}").contains(first.jwt_secret.expose()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn auth_limits_default_to_the_anchors_and_can_be_set() {
        let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let defaults = config(&[secret]).unwrap().auth;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // One core is always left to the requests.
        let threads = cores.saturating_sub(1).max(1);
        assert_eq!(
            defaults,
            AuthLimits {
                hash_threads: threads,
                hash_queue: 8 * threads,
                hash_max_wait: Duration::from_secs(2),
                account_failures_per_hour: 100,
                address_failures_per_minute: 5,
                address_signups_per_hour: 10,
                address_token_burst: 30,
                address_tokens_per_hour: 3600,
                trusted_address_ttl: Duration::from_secs(30 * 86_400),
            }
        );
        let set = config(&[
            secret,
            ("PASSWORD_HASH_THREADS", "1"),
            ("PASSWORD_HASH_QUEUE", "0"),
            ("PASSWORD_HASH_MAX_WAIT", "5"),
            ("AUTH_ACCOUNT_FAILURES_PER_HOUR", "3"),
            ("AUTH_ADDRESS_FAILURES_PER_MINUTE", "2"),
            ("AUTH_ADDRESS_SIGNUPS_PER_HOUR", "1"),
            ("AUTH_ADDRESS_TOKEN_BURST", "2"),
            ("AUTH_ADDRESS_TOKENS_PER_HOUR", "1"),
            ("AUTH_TRUSTED_ADDRESS_TTL", "7d"),
        ])
        .unwrap()
        .auth;
        assert_eq!(
            set,
            AuthLimits {
                hash_threads: 1,
                hash_queue: 0,
                hash_max_wait: Duration::from_secs(5),
                account_failures_per_hour: 3,
                address_failures_per_minute: 2,
                address_signups_per_hour: 1,
                address_token_burst: 2,
                address_tokens_per_hour: 1,
                trusted_address_ttl: Duration::from_secs(7 * 86_400),
            }
        );
        for (key, bad) in [
            ("PASSWORD_HASH_THREADS", "0"),
            ("PASSWORD_HASH_QUEUE", "-1"),
            ("AUTH_ACCOUNT_FAILURES_PER_HOUR", "0"),
            ("AUTH_ADDRESS_FAILURES_PER_MINUTE", "many"),
            ("AUTH_TRUSTED_ADDRESS_TTL", "0"),
        ] {
            let err = config(&[secret, (key, bad)]).unwrap_err();
            assert!(format!("{err:#}").contains(key), "{key}={bad}: {err:#}");
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&[
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("BIND_ADDR", "127.0.0.1:9000"),
            (
                "CORS_ORIGINS",
                "https://app.example.com/, http://localhost:3000",
            ),
            ("JWT_TTL", "12h"),
        ])
        .unwrap();
        assert_eq!(c.bind_addr.port(), 9000);
        assert_eq!(c.public_base_url, "http://localhost:9000");
        assert_eq!(
            c.cors_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        assert_eq!(c.jwt_ttl, Duration::from_secs(43_200));
        assert_eq!(
            c.sessions,
            crate::auth::SessionLifetimes {
                absolute: Duration::from_secs(30 * 86_400),
                idle: Duration::from_secs(7 * 86_400),
            }
        );
        assert_eq!(c.public_limits.miss_burst, 100);
        assert_eq!(c.image_decode.memory_bytes, 320 << 20);
        assert_eq!(c.database_timeout, crate::db::DEFAULT_DEADLINE);
        assert!(
            config(&[
                ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("BIND_ADDR", "nope")
            ])
            .is_err()
        );
    }

    #[test]
    fn metrics_listener_and_request_id_header() {
        let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let defaults = config(&[secret]).unwrap();
        assert_eq!(
            defaults.metrics_addr,
            Some("127.0.0.1:9898".parse().unwrap())
        );
        assert_eq!(defaults.request_id_header, None);
        let set = config(&[
            secret,
            ("METRICS_ADDR", "127.0.0.1:0"),
            ("REQUEST_ID_HEADER", " X-Request-Id "),
        ])
        .unwrap();
        assert_eq!(set.metrics_addr, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(set.request_id_header.as_deref(), Some("X-Request-Id"));
        assert_eq!(
            config(&[secret, ("METRICS_ADDR", "off")])
                .unwrap()
                .metrics_addr,
            None
        );
        let err = config(&[secret, ("METRICS_ADDR", "9898")]).unwrap_err();
        assert!(err.to_string().contains("METRICS_ADDR"), "{err}");
    }

    #[test]
    fn mail_defaults_and_settings() {
        let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let defaults = config(&[secret]).unwrap().mail;
        assert!(defaults.smtp_url.is_none());
        assert!(defaults.smtp_ca_file.is_none());
        assert_eq!(defaults.from, "CallingCard <no-reply@localhost>");
        assert_eq!(defaults.retry_base, Duration::from_secs(5));
        assert_eq!(defaults.max_attempts, 12);
        let set = config(&[
            secret,
            ("SMTP_URL", "smtps://user:pa%20ss@mail.example.com"),
            ("SMTP_CA_FILE", "/etc/callingcard/mail-ca.pem"),
            ("OUTBOX_RETRY_BASE", "100ms"),
            ("OUTBOX_MAX_ATTEMPTS", "3"),
        ])
        .unwrap();
        assert!(!format!("{set:?}").contains("pa%20ss"));
        assert_eq!(set.mail.retry_base, Duration::from_millis(100));
        assert_eq!(set.mail.max_attempts, 3);
        assert_eq!(
            set.mail.smtp_ca_file.as_deref(),
            Some(std::path::Path::new("/etc/callingcard/mail-ca.pem"))
        );
        for (key, bad) in [
            ("SMTP_URL", "mail.example.com"),
            ("OUTBOX_MAX_ATTEMPTS", "0"),
            ("OUTBOX_POLL_INTERVAL", "soon"),
        ] {
            let err = config(&[secret, (key, bad)]).unwrap_err();
            assert!(format!("{err:#}").contains(key), "{key}={bad}: {err:#}");
        }
    }

    #[test]
    fn token_and_session_lifetimes() {
        let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
        assert_eq!(config(&[secret]).unwrap().jwt_ttl, Duration::from_secs(900));
        let c = config(&[
            secret,
            ("JWT_TTL", "5m"),
            ("SESSION_TTL", "14d"),
            ("SESSION_IDLE_TTL", "2s"),
        ])
        .unwrap();
        assert_eq!(c.jwt_ttl, Duration::from_secs(300));
        assert_eq!(c.sessions.absolute, Duration::from_secs(14 * 86_400));
        assert_eq!(c.sessions.idle, Duration::from_secs(2));
        for key in ["SESSION_TTL", "SESSION_IDLE_TTL"] {
            let err = config(&[secret, (key, "0")]).unwrap_err();
            assert!(format!("{err:#}").contains(key), "{err:#}");
        }
    }

    #[test]
    fn public_and_decode_limits() {
        let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let c = config(&[
            secret,
            ("PUBLIC_MISS_BURST", "5"),
            ("PUBLIC_MISS_PER_SECOND", "0.5"),
            ("UNKNOWN_SLUG_TTL", "2m"),
            ("QR_RENDERS", "3"),
            ("IMAGE_DECODE_MEMORY_MB", "64"),
            ("IMAGE_DECODES", "2"),
        ])
        .unwrap();
        assert_eq!(c.public_limits.miss_burst, 5);
        assert_eq!(c.public_limits.miss_per_second, 0.5);
        assert_eq!(c.public_limits.unknown_slug_ttl, Duration::from_secs(120));
        assert_eq!(c.public_limits.qr_renders, 3);
        assert_eq!(c.image_decode.memory_bytes, 64 << 20);
        assert_eq!(c.image_decode.max_decodes, 2);
        for bad in [
            ("PUBLIC_MISS_BURST", "0"),
            ("PUBLIC_MISS_PER_SECOND", "NaN"),
            ("IMAGE_DECODE_MEMORY_MB", "lots"),
            ("QR_RENDERS", "0"),
        ] {
            let err = config(&[secret, bad]).unwrap_err();
            assert!(err.to_string().contains(bad.0), "{err}");
        }
    }
}
