//! In-process caches of the public card path.
//!
//! Rendered cards change when their employee, their company's branding or a photo changes, on
//! any instance of the service. PostgreSQL tells every instance on commit (`NOTIFY
//! card_changed`, see `sql/V3__public_cards.sql`), and [`CardCache::apply_notification`] drops
//! what changed. While the notification connection is down nothing is served from, or stored in,
//! the card cache: a change made meanwhile could not be heard of. A time to live bounds the
//! damage of anything we did not foresee.
//!
//! A card loaded from the database while a change was being committed could be older than the
//! notification that invalidates it; [`Ticket`]s make such a load skip the cache.
//!
//! Slugs that name no card are remembered too, briefly, so that asking for the same unknown
//! slug again costs nothing: a company slug until a company with it is created (`NOTIFY
//! card_changed 'company_created:{slug}'`), an employee slug until anything in that company
//! changes (an employee created or renamed notifies `employee:{company_id}:{id}`). The same
//! rules as for cards hold: nothing while notifications are not heard, tickets against races.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use uuid::Uuid;

/// Proof of the cache's state before a load; an invalidation since makes the load uncacheable.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

struct CardEntry<V> {
    company_id: Uuid,
    employee_id: Uuid,
    stored: Instant,
    value: V,
}

/// A slug that names no card: a company's, or an employee's within a company.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Unknown {
    Company(String),
    Employee(Uuid, String),
}

/// Rendered cards by `(company_slug, employee_slug)`, and slugs known to name none.
pub struct CardCache<V> {
    entries: Mutex<HashMap<(String, String), CardEntry<V>>>,
    /// When each unknown slug was found missing.
    unknown: Mutex<HashMap<Unknown, Instant>>,
    max_unknown: usize,
    unknown_ttl: Duration,
    /// Bumped by every invalidation.
    epoch: AtomicU64,
    /// Whether change notifications are being received.
    live: AtomicBool,
    max_entries: usize,
    ttl: Duration,
}

impl<V: Clone> CardCache<V> {
    pub fn new(max_entries: usize, ttl: Duration) -> Self {
        Self::with_unknown(max_entries, ttl, max_entries, Duration::from_secs(60))
    }

    /// Also remembers at most `max_unknown` unknown slugs, each for `unknown_ttl`.
    pub fn with_unknown(
        max_entries: usize,
        ttl: Duration,
        max_unknown: usize,
        unknown_ttl: Duration,
    ) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
            max_unknown: max_unknown.max(1),
            unknown_ttl,
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            max_entries: max_entries.max(1),
            ttl,
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<(String, String), CardEntry<V>>> {
        // A panic while holding the lock cannot leave a half-written map behind (every update
        // is one insert or remove), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, company_slug: &str, employee_slug: &str) -> Option<V> {
        let found = self.find(company_slug, employee_slug);
        crate::telemetry::metrics::count_card_cache_lookup(found.is_some());
        found
    }

    fn find(&self, company_slug: &str, employee_slug: &str) -> Option<V> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries();
        let entry = entries.get(&(company_slug.to_owned(), employee_slug.to_owned()))?;
        (entry.stored.elapsed() < self.ttl).then(|| entry.value.clone())
    }

    /// Take before loading from the database; hand back to [`CardCache::insert`].
    pub fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::Acquire))
    }

    /// Stores a card loaded after `ticket` was taken, unless something was invalidated since
    /// (the load may predate that change) or notifications are not being received.
    pub fn insert(
        &self,
        ticket: Ticket,
        (company_slug, employee_slug): (&str, &str),
        (company_id, employee_id): (Uuid, Uuid),
        value: V,
    ) -> bool {
        let mut entries = self.entries();
        // Checked under the lock, which every invalidation also takes after bumping the epoch.
        if !self.live.load(Ordering::Acquire) || self.epoch.load(Ordering::Acquire) != ticket.0 {
            return false;
        }
        if entries.len() >= self.max_entries {
            let ttl = self.ttl;
            entries.retain(|_, e| e.stored.elapsed() < ttl);
            if entries.len() >= self.max_entries {
                evict_oldest(&mut entries, self.max_entries / 10 + 1, |e| e.stored);
            }
        }
        entries.insert(
            (company_slug.to_owned(), employee_slug.to_owned()),
            CardEntry {
                company_id,
                employee_id,
                stored: Instant::now(),
                value,
            },
        );
        true
    }

    fn invalidate(
        &self,
        keep: impl Fn(&CardEntry<V>) -> bool,
        keep_unknown: impl Fn(&Unknown) -> bool,
    ) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries().retain(|_, e| keep(e));
        self.unknown().retain(|slug, _| keep_unknown(slug));
    }

    /// Drops the employee's card, and every slug of its company remembered as unknown (the
    /// change may be a new or renamed card).
    pub fn forget_employee(&self, company_id: Uuid, employee_id: Uuid) {
        self.invalidate(
            |e| e.company_id != company_id || e.employee_id != employee_id,
            |slug| !matches!(slug, Unknown::Employee(c, _) if *c == company_id),
        );
    }

    pub fn forget_company(&self, company_id: Uuid) {
        self.invalidate(
            |e| e.company_id != company_id,
            |slug| !matches!(slug, Unknown::Employee(c, _) if *c == company_id),
        );
    }

    /// A company with this slug exists now.
    pub fn forget_unknown_company(&self, company_slug: &str) {
        self.invalidate(
            |_| true,
            |slug| !matches!(slug, Unknown::Company(s) if s == company_slug),
        );
    }

    pub fn forget_all(&self) {
        self.invalidate(|_| false, |_| false);
    }

    fn unknown(&self) -> MutexGuard<'_, HashMap<Unknown, Instant>> {
        // As for `entries`: every update is one insert or remove.
        self.unknown.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `company_slug` was found to name no company a moment ago.
    pub fn is_unknown_company(&self, company_slug: &str) -> bool {
        self.is_unknown(&Unknown::Company(company_slug.to_owned()))
    }

    /// Whether `employee_slug` was found to name no card of the company a moment ago.
    pub fn is_unknown_employee(&self, company_id: Uuid, employee_slug: &str) -> bool {
        self.is_unknown(&Unknown::Employee(company_id, employee_slug.to_owned()))
    }

    fn is_unknown(&self, slug: &Unknown) -> bool {
        if !self.live.load(Ordering::Acquire) {
            return false;
        }
        self.unknown()
            .get(slug)
            .is_some_and(|found| found.elapsed() < self.unknown_ttl)
    }

    /// Remembers a company slug found missing by a lookup made after `ticket` was taken.
    pub fn remember_unknown_company(&self, ticket: Ticket, company_slug: &str) -> bool {
        self.remember_unknown(ticket, Unknown::Company(company_slug.to_owned()))
    }

    /// Remembers an employee slug found missing in a company by a lookup made after `ticket`.
    pub fn remember_unknown_employee(
        &self,
        ticket: Ticket,
        company_id: Uuid,
        employee_slug: &str,
    ) -> bool {
        self.remember_unknown(
            ticket,
            Unknown::Employee(company_id, employee_slug.to_owned()),
        )
    }

    fn remember_unknown(&self, ticket: Ticket, slug: Unknown) -> bool {
        let mut unknown = self.unknown();
        // As in `insert`: a change heard since the lookup may be the very card it missed.
        if !self.live.load(Ordering::Acquire) || self.epoch.load(Ordering::Acquire) != ticket.0 {
            return false;
        }
        if unknown.len() >= self.max_unknown {
            let ttl = self.unknown_ttl;
            unknown.retain(|_, found| found.elapsed() < ttl);
            if unknown.len() >= self.max_unknown {
                evict_oldest(&mut unknown, self.max_unknown / 10 + 1, |found| *found);
            }
        }
        unknown.insert(slug, Instant::now());
        true
    }

    /// The number of unknown slugs remembered.
    pub fn unknown_len(&self) -> usize {
        self.unknown().len()
    }

    /// Notifications are flowing (`true`), or the connection was lost (`false`). Either way
    /// everything cached so far is dropped: changes may have gone unheard.
    pub fn set_live(&self, live: bool) {
        self.forget_all();
        self.live.store(live, Ordering::Release);
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Applies a `card_changed` payload: `company:{id}`, `employee:{company_id}:{id}` or
    /// `company_created:{slug}`. Anything else drops the whole cache, to be safe.
    pub fn apply_notification(&self, payload: &str) {
        if let Some(slug) = payload.strip_prefix("company_created:") {
            self.forget_unknown_company(slug);
            return;
        }
        let mut parts = payload.split(':');
        let parsed = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("company"), Some(id), None, None) => {
                Uuid::parse_str(id).ok().map(|id| (id, None))
            }
            (Some("employee"), Some(company), Some(id), None) => {
                match (Uuid::parse_str(company), Uuid::parse_str(id)) {
                    (Ok(company), Ok(id)) => Some((company, Some(id))),
                    _ => None,
                }
            }
            _ => None,
        };
        match parsed {
            Some((company, Some(employee))) => self.forget_employee(company, employee),
            Some((company, None)) => self.forget_company(company),
            None => {
                tracing::warn!(
                    payload,
                    "unexpected card_changed payload; dropping all cards"
                );
                self.forget_all();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A map bounded by the total size of its values, for things that do not change once made (QR
/// images, photos by content hash, company ids by slug); [`BoundedCache::retain`] drops those
/// that may have been deleted.
pub struct BoundedCache<K, V> {
    inner: Mutex<Bounded<K, V>>,
    max_bytes: usize,
}

struct Bounded<K, V> {
    map: HashMap<K, (Instant, usize, V)>,
    bytes: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Bounded {
                map: HashMap::new(),
                bytes: 0,
            }),
            max_bytes,
        }
    }

    fn inner(&self) -> MutexGuard<'_, Bounded<K, V>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.inner().map.get(key).map(|(_, _, v)| v.clone())
    }

    /// Stores `value`, counted as `size` bytes; a value larger than a tenth of the whole cache
    /// is not stored.
    pub fn insert(&self, key: K, value: V, size: usize) {
        if size > self.max_bytes / 10 {
            return;
        }
        let mut inner = self.inner();
        if let Some((_, old, _)) = inner.map.remove(&key) {
            inner.bytes -= old;
        }
        while inner.bytes + size > self.max_bytes && !inner.map.is_empty() {
            let target = inner.map.len() / 10 + 1;
            let Bounded { map, bytes } = &mut *inner;
            for freed in evict_oldest(map, target, |e| e.0) {
                *bytes -= freed.1;
            }
        }
        inner.bytes += size;
        inner.map.insert(key, (Instant::now(), size, value));
    }

    /// Keeps only the entries whose key satisfies `keep`.
    pub fn retain(&self, keep: impl Fn(&K) -> bool) {
        let mut inner = self.inner();
        let Bounded { map, bytes } = &mut *inner;
        map.retain(|k, (_, size, _)| {
            let kept = keep(k);
            if !kept {
                *bytes -= *size;
            }
            kept
        });
    }

    pub fn len(&self) -> usize {
        self.inner().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes the `count` oldest entries (by `stored`) and returns them.
fn evict_oldest<K: Hash + Eq + Clone, V>(
    map: &mut HashMap<K, V>,
    count: usize,
    stored: impl Fn(&V) -> Instant,
) -> Vec<V> {
    let mut by_age: Vec<(Instant, K)> = map.iter().map(|(k, v)| (stored(v), k.clone())).collect();
    by_age.sort_unstable_by_key(|(at, _)| *at);
    by_age
        .into_iter()
        .take(count)
        .filter_map(|(_, k)| map.remove(&k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_cache() -> CardCache<&'static str> {
        let cache = CardCache::new(100, Duration::from_secs(60));
        cache.set_live(true);
        cache
    }

    #[test]
    fn serves_what_it_stored() {
        let cache = live_cache();
        let (company, employee) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(cache.insert(cache.ticket(), ("acme", "jane"), (company, employee), "v1"));
        assert_eq!(cache.get("acme", "jane"), Some("v1"));
        assert_eq!(cache.get("acme", "john"), None);
    }

    #[test]
    fn notifications_drop_the_employee_or_the_whole_company() {
        let cache = live_cache();
        let (acme, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (jane, john, ann) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        cache.insert(cache.ticket(), ("acme", "jane"), (acme, jane), "jane");
        cache.insert(cache.ticket(), ("acme", "john"), (acme, john), "john");
        cache.insert(cache.ticket(), ("other", "ann"), (other, ann), "ann");

        cache.apply_notification(&format!("employee:{acme}:{jane}"));
        assert_eq!(cache.get("acme", "jane"), None);
        assert_eq!(cache.get("acme", "john"), Some("john"));

        cache.apply_notification(&format!("company:{acme}"));
        assert_eq!(cache.get("acme", "john"), None);
        assert_eq!(cache.get("other", "ann"), Some("ann"));

        cache.apply_notification("nonsense");
        assert!(cache.is_empty());
    }

    #[test]
    fn a_load_older_than_an_invalidation_is_not_stored() {
        let cache = live_cache();
        let (company, employee) = (Uuid::new_v4(), Uuid::new_v4());
        let ticket = cache.ticket();
        // A change commits (and is heard of) while the card was being loaded.
        cache.forget_employee(company, Uuid::new_v4());
        assert!(!cache.insert(ticket, ("acme", "jane"), (company, employee), "stale"));
        assert_eq!(cache.get("acme", "jane"), None);
    }

    #[test]
    fn nothing_is_cached_while_notifications_are_not_heard() {
        let cache = CardCache::new(100, Duration::from_secs(60));
        let ids = (Uuid::new_v4(), Uuid::new_v4());
        assert!(!cache.insert(cache.ticket(), ("acme", "jane"), ids, "v1"));
        cache.set_live(true);
        assert!(cache.insert(cache.ticket(), ("acme", "jane"), ids, "v1"));
        cache.set_live(false);
        assert_eq!(cache.get("acme", "jane"), None);
        cache.set_live(true);
        assert_eq!(
            cache.get("acme", "jane"),
            None,
            "dropped when the connection was lost"
        );
    }

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let cache = CardCache::new(10, Duration::from_millis(0));
        cache.set_live(true);
        let ids = (Uuid::new_v4(), Uuid::new_v4());
        cache.insert(cache.ticket(), ("acme", "jane"), ids, "v1");
        assert_eq!(cache.get("acme", "jane"), None, "expired");

        let cache = CardCache::new(10, Duration::from_secs(60));
        cache.set_live(true);
        for i in 0..25 {
            let slug = format!("e{i}");
            cache.insert(cache.ticket(), ("acme", &slug), ids, "v");
        }
        assert!(cache.len() <= 10);
        assert_eq!(cache.get("acme", "e24"), Some("v"), "the newest stays");
    }

    #[test]
    fn unknown_slugs_are_remembered_until_a_card_may_have_appeared() {
        let cache = live_cache();
        let (acme, other) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(cache.remember_unknown_company(cache.ticket(), "nope"));
        assert!(cache.remember_unknown_employee(cache.ticket(), acme, "ghost"));
        assert!(cache.remember_unknown_employee(cache.ticket(), other, "ghost"));
        assert!(cache.is_unknown_company("nope"));
        assert!(cache.is_unknown_employee(acme, "ghost"));
        assert!(!cache.is_unknown_employee(acme, "someone"));

        // Any change in a company may be the card: its unknown slugs go, others' stay.
        cache.apply_notification(&format!("employee:{acme}:{}", Uuid::new_v4()));
        assert!(!cache.is_unknown_employee(acme, "ghost"));
        assert!(cache.is_unknown_employee(other, "ghost"));
        cache.apply_notification(&format!("company:{other}"));
        assert!(!cache.is_unknown_employee(other, "ghost"));
        assert!(cache.is_unknown_company("nope"));

        cache.apply_notification("company_created:other-slug");
        assert!(cache.is_unknown_company("nope"));
        cache.apply_notification("company_created:nope");
        assert!(!cache.is_unknown_company("nope"));
    }

    #[test]
    fn unknown_slugs_follow_liveness_tickets_expiry_and_bounds() {
        let cache: CardCache<&str> =
            CardCache::with_unknown(10, Duration::from_secs(60), 10, Duration::from_secs(60));
        assert!(
            !cache.remember_unknown_company(cache.ticket(), "nope"),
            "not while notifications are unheard"
        );
        cache.set_live(true);
        let ticket = cache.ticket();
        cache.forget_company(Uuid::new_v4());
        assert!(
            !cache.remember_unknown_company(ticket, "nope"),
            "stale lookup"
        );
        assert!(cache.remember_unknown_company(cache.ticket(), "nope"));
        cache.set_live(false);
        assert!(!cache.is_unknown_company("nope"), "not used while unheard");
        cache.set_live(true);
        assert!(
            !cache.is_unknown_company("nope"),
            "dropped when the connection was lost"
        );

        for i in 0..25 {
            cache.remember_unknown_company(cache.ticket(), &format!("s{i}"));
        }
        assert!(cache.unknown_len() <= 10);
        assert!(cache.is_unknown_company("s24"), "the newest stays");

        let expiring: CardCache<&str> =
            CardCache::with_unknown(10, Duration::from_secs(60), 10, Duration::ZERO);
        expiring.set_live(true);
        expiring.remember_unknown_company(expiring.ticket(), "nope");
        assert!(!expiring.is_unknown_company("nope"), "expired");
    }

    #[test]
    fn bounded_cache_keeps_within_its_size() {
        let cache = BoundedCache::new(1000);
        for i in 0..100u32 {
            cache.insert(i, i, 50);
        }
        assert!(cache.len() <= 20, "{} entries", cache.len());
        assert_eq!(cache.get(&99), Some(99));
        cache.insert(1000, 0, 101);
        assert_eq!(cache.get(&1000), None, "too large to cache");
        cache.retain(|k| *k != 99);
        assert_eq!(cache.get(&99), None);
        for i in 0..20u32 {
            cache.insert(i, i, 50);
        }
        assert_eq!(cache.len(), 20, "retain gave its bytes back");
    }
}
