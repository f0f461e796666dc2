//! The webhook worker: sends the deliveries transactions queued, with retries.
//!
//! Every instance runs one. It claims due deliveries through `webhook_claim` (`FOR UPDATE SKIP
//! LOCKED` and a lease), so instances never send one delivery at the same time; a delivery whose
//! worker died is taken again once its lease runs out. At most `WEBHOOK_CONCURRENCY` deliveries
//! are in flight per instance (it claims only as many as it has free slots), and at most
//! [`PER_ENDPOINT`] to one endpoint. It wakes on `NOTIFY webhook_deliveries` (a transaction that
//! queued one committed), when a slot frees, when the next retry falls due, and every [`POLL`]
//! regardless.
//!
//! A failed attempt is tried again after `WEBHOOK_RETRY_BASE`, doubled each time (at most 4 h),
//! until `WEBHOOK_RETRY_WINDOW` (24 h) after the first attempt, then given up; an endpoint whose
//! deliveries all failed for that long is disabled and its company's admins are emailed (see
//! `webhook_attempted` in `sql/V20__webhooks.sql`). Delivery is at least once: an answer whose
//! success could not be recorded (the database gone at that moment) is sent again after its
//! lease, with the same `X-CallingCard-Delivery`.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use chrono::Utc;
use rand::Rng;
use tokio::{
    sync::{Notify, Semaphore},
    task::{JoinHandle, JoinSet},
};

use super::{
    address,
    client::{self, PostError},
    config::{MAX_BACKOFF, WebhookConfig},
    notice, signature,
};
use crate::{
    db::{Db, DbError, Tenant, notifications::ListenEvent},
    model::{
        self,
        webhook::{AttemptOutcome, Claimed, PING},
    },
};

/// How long a claim holds a delivery: well beyond an attempt's timeout, so that a delivery is
/// never still on its way when another worker may take it.
const LEASE: Duration = Duration::from_secs(120);
/// The longest the worker sleeps without looking.
const POLL: Duration = Duration::from_secs(30);
/// The shortest pause between two looks that found nothing to claim.
const MIN_PAUSE: Duration = Duration::from_millis(20);
/// After a database error, the worker waits this long before it tries again.
const DATABASE_RETRY: Duration = Duration::from_secs(2);
/// Finished deliveries are kept this long (the admins' view of them), then forgotten.
const KEEP: Duration = Duration::from_secs(30 * 86_400);
const HOUSEKEEPING: Duration = Duration::from_secs(3600);
/// Deliveries to one endpoint on their way at once (by every worker together): a slow or hanging
/// receiver holds this many slots at most, and the others' events still go out.
const PER_ENDPOINT: i32 = 4;
/// Addresses of one host tried in turn when connecting fails.
const MAX_ADDRESSES: usize = 3;

/// The running worker; [`WebhookWorker::stop`] lets it finish what it is sending.
pub struct WebhookWorker {
    task: JoinHandle<()>,
    stop: Arc<Stop>,
}

#[derive(Default)]
struct Stop {
    requested: AtomicBool,
    notify: Notify,
}

impl WebhookWorker {
    pub fn start(db: Db, config: WebhookConfig) -> Self {
        let stop = Arc::new(Stop::default());
        let worker = Worker {
            slots: Arc::new(Semaphore::new(config.concurrency)),
            shared: Arc::new(Shared { db, config }),
            wake: Arc::new(Notify::new()),
            stop: stop.clone(),
        };
        Self {
            task: tokio::spawn(worker.run()),
            stop,
        }
    }

    /// Stops claiming; waits up to `patience` for the deliveries in flight (the others wait
    /// for their lease and the next worker).
    pub async fn stop(self, patience: Duration) {
        self.stop.requested.store(true, Ordering::Release);
        self.stop.notify.notify_one();
        let mut task = self.task;
        if tokio::time::timeout(patience, &mut task).await.is_err() {
            tracing::warn!(
                "webhook deliveries still in flight at shutdown were left to their lease"
            );
            task.abort();
        }
    }
}

/// What every delivery task needs.
struct Shared {
    db: Db,
    config: WebhookConfig,
}

struct Worker {
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    wake: Arc<Notify>,
    stop: Arc<Stop>,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stop.requested.load(Ordering::Acquire)
    }

    async fn run(self) {
        let wake = self.wake.clone();
        // Listening (again) also wakes it: whatever was queued while not listening is due.
        let _listener =
            self.shared
                .db
                .listen(
                    "webhook_deliveries",
                    Duration::from_secs(1),
                    move |event| match event {
                        ListenEvent::Listening | ListenEvent::Notification(_) => wake.notify_one(),
                        ListenEvent::Lost => {}
                    },
                );
        let mut in_flight = JoinSet::new();
        let mut housekept = Instant::now();
        while !self.stopping() {
            while in_flight.try_join_next().is_some() {}
            let free = self.slots.available_permits();
            let pause = if free == 0 {
                POLL
            } else {
                match self.round(free, &mut in_flight).await {
                    Ok(Some(pause)) => pause,
                    // As many as it could take: there may be more right away.
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhooks: the database is out of reach");
                        DATABASE_RETRY
                    }
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
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Claims up to `free` deliveries and starts sending them. `None`: it took all it asked
    /// for; otherwise how long to wait.
    async fn round(
        &self,
        free: usize,
        in_flight: &mut JoinSet<()>,
    ) -> Result<Option<Duration>, DbError> {
        let maintenance = Tenant::maintenance();
        let limit = i32::try_from(free).unwrap_or(i32::MAX);
        let claimed = self
            .shared
            .db
            .write(&maintenance, async |tx| {
                model::webhook::claim(&tx, limit, PER_ENDPOINT, LEASE).await
            })
            .await?;
        let full = claimed.len() == free;
        for delivery in claimed {
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                // Only this loop takes slots: counted free above, so free now.
                unreachable!("a slot counted free was taken");
            };
            let shared = self.shared.clone();
            in_flight.spawn(async move {
                shared.deliver(&delivery).await;
                drop(slot);
            });
        }
        if full {
            return Ok(None);
        }
        let next = self
            .shared
            .db
            .read(&maintenance, async |tx| model::webhook::next_due(&tx).await)
            .await?;
        // Never a busy loop: a delivery due now but held by another worker's claim in progress
        // is looked at again a moment later.
        Ok(Some(next.map_or(POLL, |seconds| {
            Duration::try_from_secs_f64(seconds)
                .unwrap_or(POLL)
                .clamp(MIN_PAUSE, POLL)
        })))
    }

    async fn housekeeping(&self) {
        let forgot = self
            .shared
            .db
            .write(&Tenant::maintenance(), async |tx| {
                model::webhook::forget(&tx, KEEP).await
            })
            .await;
        match forgot {
            Ok(deliveries) => tracing::debug!(deliveries, "forgot old webhook deliveries"),
            Err(e) => tracing::warn!(error = %e, "forgetting old webhook deliveries"),
        }
    }
}

impl Shared {
    /// One attempt of `delivery`, and its record.
    async fn deliver(&self, delivery: &Claimed) {
        let started = Instant::now();
        let answer = self.attempt(delivery).await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let (delivered, response_code, error) = match answer {
            Ok(code) if (200..300).contains(&code) => (true, Some(i32::from(code)), None),
            Ok(code) if (300..400).contains(&code) => (
                false,
                Some(i32::from(code)),
                Some(format!("HTTP {code}: redirects are not followed")),
            ),
            Ok(code) => (false, Some(i32::from(code)), Some(format!("HTTP {code}"))),
            Err(e) => (false, None, Some(e)),
        };
        let outcome = AttemptOutcome {
            delivered,
            response_code,
            latency_ms,
            retry_in: if delivered {
                None
            } else {
                self.retry_in(delivery)
            },
            error,
        };
        let tenant = Tenant::webhook_delivery(delivery.company_id);
        let window = human(self.config.retry_window);
        let recorded = self
            .db
            .write(&tenant, async |tx| {
                let recorded = model::webhook::record_attempt(&tx, delivery, &outcome).await?;
                if recorded.as_ref().is_some_and(|r| r.disabled) {
                    let last_error = outcome.error.as_deref().unwrap_or("no answer");
                    for (to, company) in model::webhook::admin_addresses(&tx).await? {
                        let email = notice::webhook_disabled(
                            &to,
                            &company,
                            &delivery.url,
                            &window,
                            last_error,
                        );
                        model::outbox::enqueue_email(&tx, &email).await?;
                    }
                }
                Ok::<_, DbError>(recorded)
            })
            .await;
        let (id, event, attempt) = (delivery.id, delivery.event.as_str(), delivery.attempts);
        match (recorded, &outcome.error) {
            (Ok(Some(r)), _) if r.disabled => tracing::error!(
                %id, event, attempt, webhook = %delivery.webhook_id, error = ?outcome.error,
                "webhooks: delivery given up, and its endpoint disabled after sustained failure"
            ),
            (Ok(Some(r)), Some(error)) if r.state == "failed" => {
                tracing::warn!(%id, event, attempt, error, "webhooks: delivery given up")
            }
            (Ok(Some(_)), Some(error)) => {
                tracing::info!(%id, event, attempt, error, "webhooks: delivery failed, will retry")
            }
            (Ok(Some(_)), None) => tracing::debug!(%id, event, attempt, "webhooks: delivered"),
            (Ok(None), _) => {
                tracing::warn!(%id, "webhooks: the claim ran out before its attempt was recorded")
            }
            // The lease runs out and the delivery is tried again (at least once, see above).
            (Err(e), _) => tracing::warn!(%id, error = %e, "webhooks: could not record an attempt"),
        }
    }

    /// Sends the delivery: the status code of the answer, or why none came.
    async fn attempt(&self, delivery: &Claimed) -> Result<u16, String> {
        let allow = self.config.allow_private_networks;
        // Checked again at every attempt: DNS answers change, and so may the rules.
        let url = address::parse(&delivery.url, allow).map_err(|e| e.to_string())?;
        let addresses = address::resolve(&url, allow)
            .await
            .map_err(|e| format!("refused: {e}"))?;
        let body = Bytes::from(body(delivery));
        let timestamp = Utc::now().timestamp();
        let headers = [
            ("x-callingcard-delivery", delivery.id.to_string()),
            ("x-callingcard-event", delivery.event.clone()),
            (
                "x-callingcard-signature",
                signature::header(&delivery.secret, timestamp, &body),
            ),
        ];
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let mut last = None;
        for address in ordered(&addresses).into_iter().take(MAX_ADDRESSES) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match client::post(&url, address, &headers, body.clone(), left).await {
                // Another address of the host may answer.
                Err(e @ PostError::Connect(..)) => last = Some(e),
                answer => return answer.map_err(|e| e.to_string()),
            }
        }
        Err(last.map_or_else(|| "no address to connect to".into(), |e| e.to_string()))
    }

    /// The wait before the next attempt; `None`: give up. Pings are tried once.
    fn retry_in(&self, delivery: &Claimed) -> Option<f64> {
        if delivery.event == PING {
            return None;
        }
        let window = chrono::Duration::from_std(self.config.retry_window).ok()?;
        let window_end = delivery.first_attempt_at + window;
        let left = (window_end - Utc::now()).to_std().ok()?;
        if left.is_zero() {
            return None;
        }
        // The last attempt is at the window's end.
        Some(
            backoff(self.config.retry_base, delivery.attempts)
                .min(left)
                .as_secs_f64(),
        )
    }
}

/// The JSON body: `{id, type, created_at, data}`, the same on every attempt.
fn body(delivery: &Claimed) -> Vec<u8> {
    let body = serde_json::json!({
        "id": delivery.event_id,
        "type": delivery.event,
        "created_at": delivery.created_at,
        "data": delivery.data,
    });
    serde_json::to_vec(&body).expect("a JSON value serializes")
}

/// IPv4 addresses first: a host with both is more often reachable over IPv4.
fn ordered(addresses: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut ordered = addresses.to_vec();
    ordered.sort_by_key(|a| a.is_ipv6());
    ordered
}

/// The wait before attempt `attempts + 1`: `base` doubled for each failure so far, at most
/// [`MAX_BACKOFF`], give or take a tenth (so that endpoints that failed together are not
/// retried together).
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let wait = base.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    wait.mul_f64(rand::rng().random_range(0.9..=1.1))
}

/// "24 hours", "90 seconds": a duration as the email says it.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{} ms", d.as_millis()),
        s if s % 3600 == 0 && s >= 3600 => match s / 3600 {
            1 => "1 hour".into(),
            h => format!("{h} hours"),
        },
        s if s % 60 == 0 && s >= 60 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_four_hours_and_the_first_retry_is_within_30_s() {
        let base = WebhookConfig::default().retry_base;
        for _ in 0..100 {
            assert!(backoff(base, 1) <= Duration::from_secs(30));
        }
        let within = |d: Duration, expected: f64| {
            let s = d.as_secs_f64();
            assert!(
                s >= expected * 0.9 - 1e-9 && s <= expected * 1.1 + 1e-9,
                "{s} vs {expected}"
            );
        };
        within(backoff(base, 2), 40.0);
        within(backoff(base, 5), 320.0);
        within(backoff(base, 30), 4.0 * 3600.0);
        within(backoff(base, i32::MAX), 4.0 * 3600.0);
        // Within a day: about fourteen attempts.
        let (mut at, mut attempts) = (0.0, 1);
        while at < 86_400.0 {
            at += backoff(base, attempts).as_secs_f64();
            attempts += 1;
        }
        assert!((10..=20).contains(&attempts), "{attempts}");
    }

    #[test]
    fn windows_read_as_people_say_them() {
        assert_eq!(human(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(human(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human(Duration::from_secs(120)), "2 minutes");
        assert_eq!(human(Duration::from_millis(300)), "300 ms");
    }

    #[test]
    fn ipv4_is_tried_first() {
        let v6: SocketAddr = "[2001:4860::1]:443".parse().unwrap();
        let v4: SocketAddr = "8.8.8.8:443".parse().unwrap();
        assert_eq!(ordered(&[v6, v4]), vec![v4, v6]);
    }
}
