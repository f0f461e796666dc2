//! The only door to PostgreSQL.
//!
//! Handlers never hold a connection. They describe their work as a closure over a [`TenantTx`]
//! and hand it to [`Db::read`] or [`Db::write`], which run it on one pooled connection inside one
//! transaction whose `app.company_id` is set from a [`Tenant`]. Row-level security does the rest.
//!
//! A read is pipelined: BEGIN, the tenant settings, the closure's queries and COMMIT are all sent
//! before the first answer comes back, so a read costs one network round trip. This only works
//! with prepared statements (a plain `&str` query first waits for its own PREPARE, and the queued
//! COMMIT would overtake it), so every query goes through the connection's statement cache, and a
//! statement that was not cached yet makes the read run once more, cached this time.

pub mod embedded;
pub mod migrations;
pub mod notifications;
mod tenant;

pub use tenant::{Role, SessionCheck, Tenant};

use std::{
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, Timeouts,
};
use tokio_postgres::{NoTls, Row, types::ToSql};

/// The login role of the service: owns nothing, cannot bypass row-level security.
pub const APP_ROLE: &str = "callingcard_app";

const SET_TENANT: &str =
    "SELECT set_config('app.company_id', $1, true), set_config('app.role', $2, true)";
/// The same for a signed-in caller, with its session checked in the same statement (so in the
/// same round trip): `session_check` raises [`SESSION_ENDED`] or [`ROLE_CHANGED`], which aborts
/// the transaction before any of the body's statements runs.
const SET_TENANT_CHECKED: &str = "SELECT set_config('app.company_id', $1, true), \
     set_config('app.role', $2, true), session_check($3, $4, $5, $6)";
/// The SQLSTATEs `session_check` raises (`sql/V9__sessions.sql`).
const SESSION_ENDED: &str = "CC001";
const ROLE_CHANGED: &str = "CC002";
const BEGIN_READ_ONLY: &str = "BEGIN READ ONLY";
const BEGIN: &str = "BEGIN";
const COMMIT: &str = "COMMIT";
const ROLLBACK: &str = "ROLLBACK";

/// How many times a read may run again because one of its statements was not prepared yet.
const MAX_PREPARE_RETRIES: usize = 3;

/// Query parameters, taken by value so a pipelined query owns them while it is in flight.
pub type Params<'a, const N: usize> = [&'a (dyn ToSql + Sync); N];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no database connection available: {0}")]
    Unavailable(#[from] PoolError),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// A statement of a pipelined read was not prepared on this connection yet; the read runs
    /// again, and this error never leaves [`Db::read`].
    #[error("statement prepared after the pipeline closed")]
    PreparedLate,
    /// A bug in a transaction body, e.g. a read that awaited one query before sending the next.
    #[error("transaction misuse: {0}")]
    Misuse(&'static str),
    /// The operation did not finish within the deadline (see [`Db::with_deadline`]); its
    /// connection was closed, not pooled.
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    /// A row did not hold what the model expected of it (a bug, or a schema out of step).
    #[error("unexpected row: {0}")]
    Decode(String),
    /// The caller's session refused the transaction before it ran anything (see
    /// [`SessionCheck`]). The connection went back to the pool: the refusal leaves it idle, so a
    /// revoked token cannot be used to make the service open connections.
    #[error("the caller's session refused the transaction: {0:?}")]
    SessionEnded(SessionRefusal),
}

/// Why a caller's session refused a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRefusal {
    /// Logged out, revoked, past its end, or its login disabled or deleted.
    Ended,
    /// The login's role is no longer the token's: a refreshed token carries the new one.
    RoleChanged,
}

/// The refusal of `session_check`, if that is what `e` is.
fn session_refusal(e: &tokio_postgres::Error) -> Option<SessionRefusal> {
    match e.as_db_error()?.code().code() {
        SESSION_ENDED => Some(SessionRefusal::Ended),
        ROLE_CHANGED => Some(SessionRefusal::RoleChanged),
        _ => None,
    }
}

impl DbError {
    /// The server's SQLSTATE and constraint name, when PostgreSQL refused a statement.
    pub fn as_db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        match self {
            DbError::Postgres(e) => e.as_db_error(),
            _ => None,
        }
    }

    /// The database is out of reach rather than refusing this statement: no connection to be
    /// had, no answer in time, or the connection lost (PostgreSQL shutting down or restarting:
    /// SQLSTATE class 57 but a cancelled statement; class 08, connection exceptions).
    pub fn is_outage(&self) -> bool {
        match self {
            DbError::Unavailable(_) | DbError::Timeout(_) => true,
            DbError::Postgres(e) => is_connection_lost(e),
            DbError::PreparedLate
            | DbError::Misuse(_)
            | DbError::Decode(_)
            | DbError::SessionEnded(_) => false,
        }
    }
}

fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    match e.as_db_error() {
        Some(db) => {
            let class = &db.code().code()[..2];
            class == "08" || (class == "57" && *db.code() != SqlState::QUERY_CANCELED)
        }
        // A socket error on a live connection (a reset, a broken pipe).
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// How long a database operation may take by default, waiting for a connection included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

/// The connection pool of the service role.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// How the pool connects, for the connections that live outside it (LISTEN).
    config: tokio_postgres::Config,
    /// How long one read or write may take in all, from asking the pool for a connection to
    /// COMMIT: a frozen or unreachable server must cost a request a few seconds, not its life.
    deadline: Duration,
}

impl Db {
    /// A pool logging in as [`APP_ROLE`] on the server and database of `owner_config`.
    pub fn connect_as_app(
        owner_config: &tokio_postgres::Config,
        app_password: Option<&str>,
        max_size: usize,
    ) -> anyhow::Result<Self> {
        let mut config = owner_config.clone();
        config.user(APP_ROLE);
        if let Some(password) = app_password {
            config.password(password);
        }
        config.application_name("callingcard");
        config.connect_timeout(Duration::from_secs(5));
        // A runaway statement must not hold a pooled connection forever.
        config.options("-c statement_timeout=15s -c idle_in_transaction_session_timeout=15s");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_size)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(Duration::from_secs(5)),
                create: Some(Duration::from_secs(5)),
                recycle: Some(Duration::from_secs(5)),
            })
            .build()?;
        Ok(Self {
            pool,
            config,
            deadline: DEFAULT_DEADLINE,
        })
    }

    /// The same pool, its operations bounded by `deadline` instead. One that runs out answers
    /// [`DbError::Timeout`], and its connection is closed, never reused: whatever it had sent
    /// may still be running. (A COMMIT sent but unanswered may still have committed, as with
    /// any connection lost at that moment.)
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// `op` within the deadline; dropped when it runs out, which discards its connection (see
    /// [`Checkout`]).
    async fn within_deadline<T, E: From<DbError>>(
        &self,
        op: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        match tokio::time::timeout(self.deadline, op).await {
            Ok(result) => result,
            Err(_) => Err(DbError::Timeout(self.deadline).into()),
        }
    }

    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    /// `SELECT 1` on a pooled connection, within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> bool {
        let attempt = async {
            let tx = TenantTx::new(self.pool.get().await?);
            let ok = tx.client().simple_query("SELECT 1").await.is_ok();
            if ok {
                tx.finish_cleanly();
            }
            Ok::<_, DbError>(ok)
        };
        matches!(tokio::time::timeout(timeout, attempt).await, Ok(Ok(true)))
    }

    /// Runs `body` in one pipelined, read-only transaction of `tenant` (one round trip).
    ///
    /// All of `body`'s queries must be sent together (one query, or several under `join!`):
    /// COMMIT is queued right behind them. `body` may run more than once (see the module docs).
    pub async fn read<T, E, F>(&self, tenant: &Tenant, body: F) -> Result<T, E>
    where
        F: AsyncFnOnce(TenantTx) -> Result<T, E> + Clone,
        E: From<DbError>,
    {
        self.within_deadline(self.pipelined(Some(tenant), body))
            .await
    }

    /// Like [`Db::read`], with no tenant at all: nothing under row-level security is visible,
    /// only what the `SECURITY DEFINER` lookup functions return.
    pub async fn read_public<T, E, F>(&self, body: F) -> Result<T, E>
    where
        F: AsyncFnOnce(TenantTx) -> Result<T, E> + Clone,
        E: From<DbError>,
    {
        self.within_deadline(self.pipelined(None, body)).await
    }

    async fn pipelined<T, E, F>(&self, tenant: Option<&Tenant>, body: F) -> Result<T, E>
    where
        F: AsyncFnOnce(TenantTx) -> Result<T, E> + Clone,
        E: From<DbError>,
    {
        let settings = tenant.map(Settings::of);
        let mut conn = self.pool.get().await.map_err(DbError::from)?;
        for _ in 0..MAX_PREPARE_RETRIES {
            let tx = TenantTx::new(conn);
            let client = tx.client();
            let begin = client
                .prepare_cached(BEGIN_READ_ONLY)
                .await
                .map_err(DbError::from)?;
            let set_tenant = match &settings {
                Some(settings) => Some(settings.prepare(client).await?),
                None => None,
            };
            let commit = client.prepare_cached(COMMIT).await.map_err(DbError::from)?;

            // join!, not try_join!: every part runs to its end, so the connection is never left
            // inside the transaction by an early return.
            let (began, set, result, committed) = tokio::join!(
                client.execute(&begin, &[]),
                Settings::apply(settings.as_ref(), set_tenant.as_ref(), client),
                body.clone()(tx.clone()),
                async {
                    tx.seal();
                    client.execute(&commit, &[]).await
                },
            );
            if let (Ok(_), Err(e), Ok(_)) = (&began, &set, &committed)
                && let Some(refusal) = session_refusal(e)
            {
                // The check aborted the transaction and COMMIT ended it (as a rollback): the
                // connection is idle, as after any read, and goes back to the pool.
                tx.finish_cleanly();
                return Err(DbError::SessionEnded(refusal).into());
            }
            if let Err(e) = began.and(set).and(committed) {
                // The connection's state is unknown: it is closed, not pooled.
                return Err(DbError::from(e).into());
            }
            tx.finish_cleanly();
            if !tx.inner.missed_prepare.load(Ordering::Acquire) {
                return result;
            }
            // Run again on the same connection, where the statements are now prepared.
            drop(result);
            conn = match tx.into_connection() {
                Some(conn) => conn,
                None => self.pool.get().await.map_err(DbError::from)?,
            };
        }
        Err(DbError::Misuse("a read body sent a query after its first await").into())
    }

    /// Runs `body` in one read-write transaction of `tenant`. Statements run one after the other;
    /// COMMIT is sent only when `body` succeeded, ROLLBACK otherwise. The first statement shares a
    /// round trip with BEGIN and the tenant settings.
    pub async fn write<T, E, F>(&self, tenant: &Tenant, body: F) -> Result<T, E>
    where
        F: AsyncFnOnce(TenantTx) -> Result<T, E>,
        E: From<DbError>,
    {
        self.within_deadline(self.transaction(tenant, body)).await
    }

    async fn transaction<T, E, F>(&self, tenant: &Tenant, body: F) -> Result<T, E>
    where
        F: AsyncFnOnce(TenantTx) -> Result<T, E>,
        E: From<DbError>,
    {
        if tenant.is_visitor() {
            // Visitors of public cards read; nothing they do writes through the tenant wall.
            return Err(DbError::Misuse("a visitor's transaction cannot write").into());
        }
        self.write_as(Some(tenant), body).await
    }

    /// Like [`Db::write`], with no tenant at all: only the `SECURITY DEFINER` functions can
    /// change anything (e.g. counting a failed login before any tenant is known).
    pub async fn write_public<T, E, F>(&self, body: F) -> Result<T, E>
    where
        F: AsyncFnOnce(TenantTx) -> Result<T, E>,
        E: From<DbError>,
    {
        self.write_as(None, body).await
    }

    async fn write_as<T, E, F>(&self, tenant: Option<&Tenant>, body: F) -> Result<T, E>
    where
        F: AsyncFnOnce(TenantTx) -> Result<T, E>,
        E: From<DbError>,
    {
        let tx = TenantTx::new(self.pool.get().await.map_err(DbError::from)?);
        let client = tx.client();
        let begin = client.prepare_cached(BEGIN).await.map_err(DbError::from)?;
        let settings = tenant.map(Settings::of);
        let set_tenant = match &settings {
            Some(settings) => Some(settings.prepare(client).await?),
            None => None,
        };

        let (began, set, result) = tokio::join!(
            client.execute(&begin, &[]),
            Settings::apply(settings.as_ref(), set_tenant.as_ref(), client),
            body(tx.clone()),
        );
        // Whatever a clone of `tx` (moved into a task, say) sends from now on would run after
        // COMMIT, outside the transaction and the tenant: it is refused.
        tx.seal();
        // A body that carried on after a failed statement must not look committed: PostgreSQL
        // would answer its COMMIT with a ROLLBACK, silently.
        let aborted = tx.inner.server_error.load(Ordering::Acquire);
        let end = if began.is_ok() && set.is_ok() && result.is_ok() && !aborted {
            COMMIT
        } else {
            ROLLBACK
        };
        let ended = match client.prepare_cached(end).await {
            Ok(stmt) => client.execute(&stmt, &[]).await,
            Err(e) => Err(e),
        };
        if let (Ok(_), Err(e), Ok(_)) = (&began, &set, &ended)
            && let Some(refusal) = session_refusal(e)
        {
            // Refused before the body ran anything; the ROLLBACK left the connection idle.
            tx.finish_cleanly();
            return Err(DbError::SessionEnded(refusal).into());
        }
        if let Err(e) = began.and(set) {
            return Err(DbError::from(e).into());
        }
        match ended {
            // A COMMIT refused by the server (say, a deferred constraint) rolled back already;
            // we still do not trust the connection with another request.
            Err(e) => Err(DbError::from(e).into()),
            Ok(_) => {
                tx.finish_cleanly();
                match result {
                    Ok(_) if aborted => Err(DbError::Misuse(
                        "a write body went on after a failed statement; it was rolled back",
                    )
                    .into()),
                    result => result,
                }
            }
        }
    }
}

/// A transaction's tenant settings, and for a signed-in caller the session to check.
struct Settings {
    company: String,
    role: &'static str,
    session: Option<SessionCheck>,
}

impl Settings {
    fn of(tenant: &Tenant) -> Self {
        let (company, role) = tenant.settings();
        Self {
            company,
            role,
            session: tenant.session().copied(),
        }
    }

    async fn prepare(&self, client: &Object) -> Result<tokio_postgres::Statement, DbError> {
        let sql = match self.session {
            Some(_) => SET_TENANT_CHECKED,
            None => SET_TENANT,
        };
        Ok(client.prepare_cached(sql).await?)
    }

    /// Sets the tenant (and checks the session) with `statement`, made by [`Settings::prepare`];
    /// nothing without settings.
    async fn apply(
        settings: Option<&Self>,
        statement: Option<&tokio_postgres::Statement>,
        client: &Object,
    ) -> Result<(), tokio_postgres::Error> {
        let (Some(settings), Some(statement)) = (settings, statement) else {
            return Ok(());
        };
        match &settings.session {
            Some(s) => {
                let role = s.role.as_str();
                client
                    .execute(
                        statement,
                        &[
                            &settings.company,
                            &settings.role,
                            &s.company_id,
                            &s.session_id,
                            &s.user_id,
                            &role,
                        ],
                    )
                    .await
            }
            None => {
                client
                    .execute(statement, &[&settings.company, &settings.role])
                    .await
            }
        }
        .map(drop)
    }
}

/// A pooled connection that goes back to the pool only when its transaction ended cleanly.
/// Dropped any other way (an error, or the request future cancelled half-way), the connection is
/// closed rather than reused, so no transaction or tenant setting survives it.
struct Checkout {
    conn: Option<Object>,
    clean: AtomicBool,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !self.clean.load(Ordering::Acquire)
        {
            drop(Object::take(conn));
        }
    }
}

struct TxState {
    checkout: Checkout,
    /// Closed (true) once the body is over and COMMIT or ROLLBACK is about to be sent. Checked
    /// and held while a statement is sent (see [`Gated`]), so nothing slips in behind the end.
    sealed: Mutex<bool>,
    /// A statement had to be prepared after the pipeline was sealed: run the read again.
    missed_prepare: AtomicBool,
    /// The transaction is over; the connection may already serve another request.
    finished: AtomicBool,
    /// The server refused a statement: the transaction is aborted.
    server_error: AtomicBool,
    /// A statement found the connection lost (see [`DbError::is_outage`]): never pool it.
    connection_lost: AtomicBool,
}

/// One transaction of one tenant: the only way a handler reaches the database. Cheap to clone;
/// every clone is the same transaction.
#[derive(Clone)]
pub struct TenantTx {
    inner: Arc<TxState>,
}

impl TenantTx {
    fn new(conn: Object) -> Self {
        Self {
            inner: Arc::new(TxState {
                checkout: Checkout {
                    conn: Some(conn),
                    clean: AtomicBool::new(false),
                },
                sealed: Mutex::new(false),
                missed_prepare: AtomicBool::new(false),
                finished: AtomicBool::new(false),
                server_error: AtomicBool::new(false),
                connection_lost: AtomicBool::new(false),
            }),
        }
    }

    fn client(&self) -> &Object {
        self.inner
            .checkout
            .conn
            .as_ref()
            .expect("connection present until drop")
    }

    /// The connection back, for another transaction, unless a clone of this value is still
    /// alive somewhere.
    fn into_connection(self) -> Option<Object> {
        let mut state = Arc::into_inner(self.inner)?;
        state.checkout.conn.take()
    }

    /// The transaction ended with the connection idle: it may go back to the pool.
    fn finish_cleanly(&self) {
        self.inner.finished.store(true, Ordering::Release);
        if !self.inner.connection_lost.load(Ordering::Acquire) {
            self.inner.checkout.clean.store(true, Ordering::Release);
        }
    }

    /// No statement may be sent any more: the transaction's end comes next.
    fn seal(&self) {
        *self.inner.sealed.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    fn is_sealed(&self) -> bool {
        *self.inner.sealed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that the server refused a statement (client-side errors leave it running).
    fn noted(&self, e: tokio_postgres::Error) -> DbError {
        if e.as_db_error().is_some() {
            self.inner.server_error.store(true, Ordering::Release);
        }
        if is_connection_lost(&e) {
            self.inner.connection_lost.store(true, Ordering::Release);
        }
        DbError::from(e)
    }

    async fn statement(&self, sql: &str) -> Result<tokio_postgres::Statement, DbError> {
        if self.is_sealed() || self.inner.finished.load(Ordering::Acquire) {
            return Err(DbError::Misuse(
                "a statement was sent after its transaction's body (a read's: its first await)",
            ));
        }
        // A cached statement is ready at once; an uncached one waits for its PREPARE.
        let statement = self
            .client()
            .prepare_cached(sql)
            .await
            .map_err(|e| self.noted(e))?;
        Ok(statement)
    }

    /// Sends a statement unless the transaction was sealed meanwhile (then it would run after
    /// COMMIT, outside the transaction and the tenant): the check and the send happen under
    /// the seal's lock, so the end cannot be queued between them.
    async fn send<T>(
        &self,
        request: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, DbError> {
        let request = std::pin::pin!(request);
        match (Gated {
            tx: self,
            request,
            sent: false,
        })
        .await
        {
            Some(result) => result.map_err(|e| self.noted(e)),
            None => {
                // The statement was prepared too late for a pipelined read: run the read again.
                self.inner.missed_prepare.store(true, Ordering::Release);
                Err(DbError::PreparedLate)
            }
        }
    }

    pub async fn query<const N: usize>(
        &self,
        sql: &str,
        params: Params<'_, N>,
    ) -> Result<Vec<Row>, DbError> {
        let statement = self.statement(sql).await?;
        self.send(self.client().query(&statement, &params)).await
    }

    pub async fn query_one<const N: usize>(
        &self,
        sql: &str,
        params: Params<'_, N>,
    ) -> Result<Row, DbError> {
        let statement = self.statement(sql).await?;
        self.send(self.client().query_one(&statement, &params))
            .await
    }

    pub async fn query_opt<const N: usize>(
        &self,
        sql: &str,
        params: Params<'_, N>,
    ) -> Result<Option<Row>, DbError> {
        let statement = self.statement(sql).await?;
        self.send(self.client().query_opt(&statement, &params))
            .await
    }

    pub async fn execute<const N: usize>(
        &self,
        sql: &str,
        params: Params<'_, N>,
    ) -> Result<u64, DbError> {
        let statement = self.statement(sql).await?;
        self.send(self.client().execute(&statement, &params)).await
    }
}

/// A statement's request future, first polled (which is when tokio-postgres sends it) only
/// while the transaction is not sealed, under the seal's lock. `None`: refused, never sent.
struct Gated<'a, F> {
    tx: &'a TenantTx,
    request: Pin<&'a mut F>,
    sent: bool,
}

impl<T, F: Future<Output = T>> Future for Gated<'_, F> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if self.sent {
            return self.request.as_mut().poll(cx).map(Some);
        }
        let sealed = self
            .tx
            .inner
            .sealed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *sealed {
            return Poll::Ready(None);
        }
        let polled = self.request.as_mut().poll(cx);
        drop(sealed);
        self.sent = true;
        polled.map(Some)
    }
}
