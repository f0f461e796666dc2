//! The outbox worker: sends what transactions queued in `outbox`, with retries.
//!
//! Every instance runs one. It claims due messages through `outbox_claim` (`FOR UPDATE SKIP
//! LOCKED` and a lease), so instances never take the same message at once; a message whose
//! worker died is taken again once its lease runs out. Each message goes to the dispatcher of
//! its kind (email today; webhooks can add theirs). A failed attempt is tried again after an
//! exponential backoff, up to `max_attempts`, then given up (`failed_at`); while the mail server
//! is down messages simply wait. The worker wakes on `NOTIFY outbox` (sent when a transaction
//! that queued something commits), when the next retry falls due, and every `poll_interval`
//! regardless (a notification missed while its connection was down).
//!
//! Delivery is at least once: a message sent whose success could not be recorded (the database
//! gone at that moment) is sent again after its lease.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use rand::Rng;
use tokio::{sync::Notify, task::JoinHandle};
use uuid::Uuid;

use super::transport::{Mailer, SendError};
use crate::{
    db::{Db, DbError, Tenant, notifications::ListenEvent},
    model::{
        self,
        outbox::{Claimed, Email, Failure},
    },
};

/// Messages claimed at once; they are sent concurrently.
const BATCH: i32 = 8;
/// How long a claim holds a batch: well beyond [`SEND_DEADLINE`], so a message is never still
/// on its way when another worker may take it.
const LEASE: Duration = Duration::from_secs(120);
/// The longest one message may take to send, whatever the transport does.
const SEND_DEADLINE: Duration = Duration::from_secs(40);
/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Sent and failed messages are kept this long, then forgotten.
const KEEP: Duration = Duration::from_secs(30 * 86_400);
const HOUSEKEEPING: Duration = Duration::from_secs(3600);
/// The shortest pause between two looks at the outbox that found nothing to claim.
const MIN_PAUSE: Duration = Duration::from_millis(20);
/// After a database error, the worker waits this long before it tries again.
const DATABASE_RETRY: Duration = Duration::from_secs(2);

/// Sends the messages of one kind.
pub trait Dispatch: Send + Sync {
    /// The `outbox.kind` it sends.
    fn kind(&self) -> &'static str;
    /// Sends one message (outbox id `id`).
    fn dispatch<'a>(
        &'a self,
        id: Uuid,
        payload: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<(), SendError>>;
}

/// Emails (`kind = 'email'`, payload an [`Email`]).
pub struct EmailDispatch(pub Arc<Mailer>);

impl Dispatch for EmailDispatch {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn dispatch<'a>(
        &'a self,
        id: Uuid,
        payload: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let email: Email = serde_json::from_value(payload.clone()).map_err(|e| SendError {
                message: format!("not an email: {e}"),
                permanent: true,
            })?;
            self.0.send(id, &email).await
        })
    }
}

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// The longest the worker sleeps without looking (`OUTBOX_POLL_INTERVAL`).
    pub poll_interval: Duration,
    /// The wait after a first failure, doubled after each one (`OUTBOX_RETRY_BASE`).
    pub retry_base: Duration,
    /// Attempts before a message is given up (`OUTBOX_MAX_ATTEMPTS`).
    pub max_attempts: u32,
}

/// The running worker; [`OutboxWorker::stop`] lets it finish what it is sending.
pub struct OutboxWorker {
    task: JoinHandle<()>,
    stop: Arc<Stop>,
}

#[derive(Default)]
struct Stop {
    requested: std::sync::atomic::AtomicBool,
    notify: Notify,
}

impl OutboxWorker {
    pub fn start(db: Db, dispatchers: Vec<Box<dyn Dispatch>>, pacing: Pacing) -> Self {
        let stop = Arc::new(Stop::default());
        let worker = Worker {
            db,
            dispatchers,
            pacing,
            wake: Arc::new(Notify::new()),
            stop: stop.clone(),
        };
        Self {
            task: tokio::spawn(worker.run()),
            stop,
        }
    }

    /// Stops claiming; waits up to `patience` for the messages in flight.
    pub async fn stop(self, patience: Duration) {
        self.stop
            .requested
            .store(true, std::sync::atomic::Ordering::Release);
        self.stop.notify.notify_one();
        let mut task = self.task;
        if tokio::time::timeout(patience, &mut task).await.is_err() {
            tracing::warn!("outbox messages still being sent at shutdown were left to their lease");
            task.abort();
        }
    }
}

struct Worker {
    db: Db,
    dispatchers: Vec<Box<dyn Dispatch>>,
    pacing: Pacing,
    wake: Arc<Notify>,
    stop: Arc<Stop>,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stop
            .requested
            .load(std::sync::atomic::Ordering::Acquire)
    }

    async fn run(self) {
        let wake = self.wake.clone();
        // Listening (again) also wakes it: whatever was queued while not listening is due.
        let _listener =
            self.db
                .listen("outbox", Duration::from_secs(1), move |event| match event {
                    ListenEvent::Listening | ListenEvent::Notification(_) => wake.notify_one(),
                    ListenEvent::Lost => {}
                });
        let mut housekept = Instant::now();
        while !self.stopping() {
            let pause = match self.round().await {
                Ok(Some(pause)) => pause,
                // A full batch: there may be more right away.
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: the database is out of reach");
                    DATABASE_RETRY
                }
            };
            if housekept.elapsed() >= HOUSEKEEPING {
                housekept = Instant::now();
                self.housekeeping().await;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = self.stop.notify.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Claims and sends one batch. `None`: the batch was full; otherwise how long to wait.
    async fn round(&self) -> Result<Option<Duration>, DbError> {
        let maintenance = Tenant::maintenance();
        let claimed = self
            .db
            .write(&maintenance, async |tx| {
                model::outbox::claim(&tx, BATCH, LEASE).await
            })
            .await?;
        let full = claimed.len() == BATCH as usize;
        futures::future::join_all(claimed.iter().map(|message| self.deliver(message))).await;
        if full {
            return Ok(None);
        }
        let next = self
            .db
            .read(&maintenance, async |tx| model::outbox::next_due(&tx).await)
            .await?;
        let poll = self.pacing.poll_interval;
        // Never a busy loop: a message due now but locked by another worker's claim in progress
        // is looked at again a moment later.
        Ok(Some(next.map_or(poll, |seconds| {
            Duration::try_from_secs_f64(seconds)
                .unwrap_or(poll)
                .clamp(MIN_PAUSE, poll.max(MIN_PAUSE))
        })))
    }

    async fn deliver(&self, message: &Claimed) {
        let outcome = match self.dispatchers.iter().find(|d| d.kind() == message.kind) {
            Some(dispatcher) => {
                match tokio::time::timeout(
                    SEND_DEADLINE,
                    dispatcher.dispatch(message.id, &message.payload),
                )
                .await
                {
                    Ok(result) => result,
                    Err(_) => Err(SendError {
                        message: format!("not sent within {SEND_DEADLINE:?}"),
                        permanent: false,
                    }),
                }
            }
            None => Err(SendError {
                message: format!("no dispatcher for messages of kind `{}`", message.kind),
                permanent: true,
            }),
        };
        let maintenance = Tenant::maintenance();
        let recorded = match &outcome {
            Ok(()) => self
                .db
                .write(&maintenance, async |tx| {
                    model::outbox::mark_sent(&tx, message).await
                })
                .await
                .map(|_| ()),
            Err(e) => {
                let failure = if e.permanent {
                    Failure::Permanent
                } else {
                    Failure::Retry(backoff(self.pacing.retry_base, message.attempts).as_secs_f64())
                };
                let max = i32::try_from(self.pacing.max_attempts).unwrap_or(i32::MAX);
                let gave_up = self
                    .db
                    .write(&maintenance, async |tx| {
                        model::outbox::mark_failed(&tx, message, &e.message, failure, max).await
                    })
                    .await;
                match gave_up {
                    Ok(true) => tracing::error!(
                        id = %message.id, kind = %message.kind, attempts = message.attempts,
                        error = %e, "outbox: message given up"
                    ),
                    Ok(false) => tracing::warn!(
                        id = %message.id, kind = %message.kind, attempts = message.attempts,
                        error = %e, "outbox: sending failed, will try again"
                    ),
                    Err(_) => {}
                }
                gave_up.map(|_| ())
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the message is tried again (at least once, see above).
            tracing::warn!(id = %message.id, error = %e, "outbox: could not record an attempt");
        }
    }

    async fn housekeeping(&self) {
        let forgot = self
            .db
            .write(&Tenant::maintenance(), async |tx| {
                let messages = model::outbox::forget(&tx, KEEP).await?;
                let tokens = model::account_token::forget(&tx).await?;
                Ok::<_, DbError>((messages, tokens))
            })
            .await;
        match forgot {
            Ok((messages, tokens)) => {
                tracing::debug!(messages, tokens, "forgot old outbox messages and tokens")
            }
            Err(e) => tracing::warn!(error = %e, "forgetting old outbox messages"),
        }
    }
}

/// The wait before attempt `attempts + 1`: `base` doubled for each failure so far, at most an
/// hour, give or take a tenth (so instances that failed together do not retry together).
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let wait = base.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    let jitter = rand::rng().random_range(0.9..=1.1);
    wait.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let base = Duration::from_secs(5);
        let within = |d: Duration, expected: f64| {
            let s = d.as_secs_f64();
            assert!(
                s >= expected * 0.9 - 1e-9 && s <= expected * 1.1 + 1e-9,
                "{s} vs {expected}"
            );
        };
        within(backoff(base, 1), 5.0);
        within(backoff(base, 2), 10.0);
        within(backoff(base, 4), 40.0);
        within(backoff(base, 20), 3600.0);
        within(backoff(base, i32::MAX), 3600.0);
        within(backoff(base, 0), 5.0);
    }
}
