//! The live feed: what visitors do on a company's cards, as it is committed, on every instance.
//!
//! The analytics writer announces each committed batch of a company's events with `NOTIFY` (see
//! [`super::ingest::INGEST`]), so a feed hears events stored by any instance sharing the database.
//! Each instance holds one `LISTEN` connection and fans the batches out per company to its
//! subscribers through a bounded broadcast channel: a slow subscriber skips what it could not
//! keep up with (and is told how much), it never slows the others nor grows memory. Subscribers
//! are bounded per company and in total.
//!
//! [`LiveHub::feed`] is the feed of one caller, independent of HTTP: both doors render it as
//! Server-Sent Events.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::{Stream, stream};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::ingest::LIVE_CHANNEL;
use crate::{
    config::LiveFeedLimits,
    db::{
        Db, DbError, Tenant,
        notifications::{ListenEvent, Listener},
    },
    model::analytics::live::live_access,
};

/// Batches a subscriber may fall behind before it skips to the newest.
const CHANNEL_CAPACITY: usize = 64;

/// One thing a visitor did, as the feed shows it: never who the visitor is (no visitor id,
/// address or user agent ever reaches the notification).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct LiveEvent {
    pub action: String,
    pub employee_id: Uuid,
    /// `None` when the employee was deleted meanwhile.
    pub employee_name: Option<String>,
    pub employee_slug: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub device: Option<String>,
    pub region: Option<String>,
}

/// One committed batch of a company's events, as announced.
#[derive(Debug, Deserialize)]
struct LiveBatch {
    events: Vec<LiveEvent>,
    /// Events of the batch left out of the notification, to keep it small.
    omitted: u64,
}

/// What the hub hands a company's subscribers.
#[derive(Clone, Debug)]
enum HubMessage {
    Batch(Arc<LiveBatch>),
    /// Notifications may have been lost (the `LISTEN` connection dropped).
    Gap,
}

/// What a feed yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedItem {
    Event(LiveEvent),
    /// Events were skipped: this many, when known.
    Missed {
        events: Option<u64>,
    },
}

/// Whose events a feed shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveScope {
    /// Every card of the company (admins, superadmins).
    Company,
    /// One employee's card (an employee watching their own).
    Employee(Uuid),
}

/// Why a feed could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum FeedRefused {
    #[error("the company or its card is not visible to the caller")]
    NotFound,
    #[error("the caller's login is linked to no card")]
    NoLinkedCard,
    #[error("too many live feeds are open for this company")]
    CompanyFull,
    #[error("too many live feeds are open on this instance")]
    Full,
    #[error("the service is shutting down")]
    Closed,
    #[error(transparent)]
    Database(#[from] DbError),
}

struct CompanyChannel {
    sender: broadcast::Sender<HubMessage>,
    subscribers: usize,
}

#[derive(Default)]
struct Channels {
    by_company: HashMap<Uuid, CompanyChannel>,
    total: usize,
}

/// The instance's fan-out of live activity.
pub struct LiveHub {
    channels: Mutex<Channels>,
    limits: LiveFeedLimits,
    /// Becomes true at shutdown: every feed ends, so none holds the graceful shutdown.
    closed: watch::Sender<bool>,
    listener: Mutex<Option<Listener>>,
}

impl LiveHub {
    pub fn new(limits: LiveFeedLimits) -> Arc<Self> {
        Arc::new(Self {
            channels: Mutex::default(),
            limits,
            closed: watch::channel(false).0,
            listener: Mutex::new(None),
        })
    }

    /// Starts hearing announced batches (one connection for the instance).
    pub fn listen(self: &Arc<Self>, db: &Db) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let listener = db.listen(LIVE_CHANNEL, Duration::from_secs(1), move |event| {
            let Some(hub) = weak.upgrade() else { return };
            match event {
                ListenEvent::Notification(payload) => hub.dispatch(&payload),
                ListenEvent::Lost => hub.broadcast_gap(),
                ListenEvent::Listening => {}
            }
        });
        *lock(&self.listener) = Some(listener);
    }

    /// Ends every feed and stops listening (at shutdown).
    pub fn close(&self) {
        self.closed.send_replace(true);
        drop(lock(&self.listener).take());
    }

    /// Live feeds open on this instance.
    pub fn subscribers(&self) -> usize {
        self.channels().total
    }

    /// The feed of the tenant's company for the login `user_id`: the whole company, or for
    /// `employee_only` callers the card their login is linked to. It ends when the caller may no
    /// longer see it (checked every `LIVE_FEED_RECHECK`), and at shutdown.
    pub async fn feed(
        self: &Arc<Self>,
        db: Db,
        tenant: Tenant,
        user_id: Uuid,
        employee_only: bool,
    ) -> Result<impl Stream<Item = FeedItem> + Send + 'static, FeedRefused> {
        let company_id = tenant.company_id();
        let access = db
            .read(&tenant, async |tx| {
                live_access(&tx, company_id, user_id).await
            })
            .await?
            .ok_or(FeedRefused::NotFound)?;
        let scope = if employee_only {
            LiveScope::Employee(access.linked_employee.ok_or(FeedRefused::NoLinkedCard)?)
        } else {
            LiveScope::Company
        };
        let subscription = self.subscribe(company_id)?;
        let recheck = self.limits.recheck;
        let mut recheck_at =
            tokio::time::interval_at(tokio::time::Instant::now() + recheck, recheck);
        recheck_at.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let state = FeedState {
            subscription,
            closed: self.closed.subscribe(),
            recheck_at,
            pending: VecDeque::new(),
            db,
            tenant,
            user_id,
            scope,
        };
        Ok(stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        }))
    }

    fn subscribe(self: &Arc<Self>, company_id: Uuid) -> Result<Subscription, FeedRefused> {
        if *self.closed.borrow() {
            return Err(FeedRefused::Closed);
        }
        let mut channels = self.channels();
        if channels.total >= self.limits.total {
            return Err(FeedRefused::Full);
        }
        let channel = channels
            .by_company
            .entry(company_id)
            .or_insert_with(|| CompanyChannel {
                sender: broadcast::channel(CHANNEL_CAPACITY).0,
                subscribers: 0,
            });
        if channel.subscribers >= self.limits.per_company {
            return Err(FeedRefused::CompanyFull);
        }
        channel.subscribers += 1;
        let receiver = channel.sender.subscribe();
        channels.total += 1;
        Ok(Subscription {
            hub: self.clone(),
            company_id,
            receiver,
        })
    }

    /// Hands an announced batch to its company's subscribers on this instance; a company nobody
    /// watches here costs a map lookup, its payload is not even parsed.
    fn dispatch(&self, payload: &str) {
        let Some((company, batch)) = payload.split_once(' ') else {
            return;
        };
        let Ok(company_id) = company.parse::<Uuid>() else {
            return;
        };
        let Some(sender) = self
            .channels()
            .by_company
            .get(&company_id)
            .map(|c| c.sender.clone())
        else {
            return;
        };
        match serde_json::from_str::<LiveBatch>(batch) {
            Ok(batch) => {
                let _ = sender.send(HubMessage::Batch(Arc::new(batch)));
            }
            Err(e) => tracing::warn!(error = %e, "unreadable live activity notification"),
        }
    }

    fn broadcast_gap(&self) {
        for channel in self.channels().by_company.values() {
            let _ = channel.sender.send(HubMessage::Gap);
        }
    }

    fn channels(&self) -> MutexGuard<'_, Channels> {
        lock(&self.channels)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A place among a company's subscribers; given back when dropped.
struct Subscription {
    hub: Arc<LiveHub>,
    company_id: Uuid,
    receiver: broadcast::Receiver<HubMessage>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self.hub.channels();
        channels.total -= 1;
        if let Some(channel) = channels.by_company.get_mut(&self.company_id) {
            channel.subscribers -= 1;
            if channel.subscribers == 0 {
                channels.by_company.remove(&self.company_id);
            }
        }
    }
}

struct FeedState {
    subscription: Subscription,
    closed: watch::Receiver<bool>,
    recheck_at: tokio::time::Interval,
    /// Items of the batch being handed out.
    pending: VecDeque<FeedItem>,
    db: Db,
    tenant: Tenant,
    user_id: Uuid,
    scope: LiveScope,
}

impl FeedState {
    /// The next item, or `None` when the feed is over.
    async fn next(&mut self) -> Option<FeedItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if *self.closed.borrow() {
                return None;
            }
            tokio::select! {
                _ = self.closed.changed() => return None,
                _ = self.recheck_at.tick() => {
                    if !self.still_allowed().await {
                        return None;
                    }
                }
                message = self.subscription.receiver.recv() => match message {
                    Ok(HubMessage::Batch(batch)) => self.take(&batch),
                    Ok(HubMessage::Gap) => self.pending.push_back(FeedItem::Missed { events: None }),
                    // The skipped batches are gone, and with them how many events they held.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.pending.push_back(FeedItem::Missed { events: None });
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }

    fn take(&mut self, batch: &LiveBatch) {
        let mine = |event: &&LiveEvent| match self.scope {
            LiveScope::Company => true,
            LiveScope::Employee(id) => event.employee_id == id,
        };
        let events: Vec<FeedItem> = batch
            .events
            .iter()
            .filter(mine)
            .cloned()
            .map(FeedItem::Event)
            .collect();
        self.pending.extend(events);
        if batch.omitted > 0 {
            // Whose the omitted events were is not known: an employee's feed may have missed some.
            let events = (self.scope == LiveScope::Company).then_some(batch.omitted);
            self.pending.push_back(FeedItem::Missed { events });
        }
    }

    /// Whether the caller may still watch: one read through the caller's own tenant, which
    /// checks the session, the login and its role in the same statement.
    async fn still_allowed(&self) -> bool {
        let (company_id, user_id) = (self.tenant.company_id(), self.user_id);
        let access = self
            .db
            .read(&self.tenant, async |tx| {
                live_access(&tx, company_id, user_id).await
            })
            .await;
        match (access, self.scope) {
            (Ok(Some(_)), LiveScope::Company) => true,
            (Ok(Some(access)), LiveScope::Employee(id)) => access.linked_employee == Some(id),
            (Ok(None), _) => false,
            (Err(e), _) => {
                tracing::debug!(error = %e, "live feed ends: its caller is no longer allowed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(per_company: usize, total: usize) -> Arc<LiveHub> {
        LiveHub::new(LiveFeedLimits {
            per_company,
            total,
            recheck: Duration::from_secs(60),
        })
    }

    #[test]
    fn subscribers_are_bounded_per_company_and_in_total() {
        let hub = hub(2, 3);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let a1 = hub.subscribe(a).unwrap();
        let _a2 = hub.subscribe(a).unwrap();
        assert!(matches!(hub.subscribe(a), Err(FeedRefused::CompanyFull)));
        let _b1 = hub.subscribe(b).unwrap();
        assert!(matches!(hub.subscribe(b), Err(FeedRefused::Full)));
        drop(a1);
        assert_eq!(hub.subscribers(), 2);
        let _b2 = hub.subscribe(b).unwrap();
        hub.close();
        assert!(matches!(
            hub.subscribe(Uuid::new_v4()),
            Err(FeedRefused::Closed)
        ));
    }

    #[test]
    fn a_company_nobody_watches_keeps_no_channel() {
        let hub = hub(2, 3);
        let a = Uuid::new_v4();
        drop(hub.subscribe(a).unwrap());
        assert!(hub.channels().by_company.is_empty());
        assert_eq!(hub.subscribers(), 0);
    }

    #[tokio::test]
    async fn batches_reach_their_company_and_a_lagging_subscriber_skips() {
        let hub = hub(5, 5);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut sub_a = hub.subscribe(a).unwrap();
        let mut sub_b = hub.subscribe(b).unwrap();
        let employee = Uuid::new_v4();
        let payload = format!(
            r#"{a} {{"events":[{{"action":"view","employee_id":"{employee}","employee_name":"Jane",
               "employee_slug":"jane","occurred_at":"2026-01-02T03:04:05.123456+00:00",
               "device":"mobile","region":"DE"}}],"omitted":0}}"#
        );
        hub.dispatch(&payload);
        let Ok(HubMessage::Batch(batch)) = sub_a.receiver.recv().await else {
            panic!("no batch")
        };
        assert_eq!(batch.events[0].employee_id, employee);
        assert!(sub_b.receiver.try_recv().is_err());
        for _ in 0..CHANNEL_CAPACITY + 1 {
            hub.dispatch(&payload);
        }
        assert!(matches!(
            sub_a.receiver.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
        // Garbage is ignored.
        hub.dispatch("nonsense");
        hub.dispatch(&format!("{a} not json"));
    }
}
