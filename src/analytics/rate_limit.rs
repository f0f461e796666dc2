//! A per-key token bucket with bounded memory, for the public tracking endpoint.
//!
//! Each key (in practice [`VisitorKey::rate_key`](super::visitor::VisitorKey::rate_key) of the
//! client's address, already a keyed hash, so it is the table's key as it is) owns a bucket of at most `burst` tokens, refilled continuously at
//! `per_second` tokens a second; a request takes one token or is refused with the time until one
//! is available again.
//!
//! Memory is bounded by `max_keys`. The observation that makes eviction cheap and safe: a bucket
//! that has refilled to `burst` is indistinguishable from a key never seen (new keys start full),
//! so dropping it loses nothing. When a new key arrives and the table is full, such buckets are
//! dropped first; only if that does not free enough room are the least recently seen keys dropped.
//! A client that is being limited right now keeps hitting the limiter, so it is recently seen and
//! its (empty) bucket is not reset by a flood of other keys. Each eviction pass frees a tenth of
//! the table at once, so its linear scan is paid once per many insertions, not on every request.
//!
//! The limiter takes the current time as an argument (no clock inside), which keeps it pure and
//! testable. Times earlier than a key's last update (racing callers) count as no elapsed time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Slack for floating-point rounding, in tokens: a client that waits exactly the advertised
/// `Retry-After` must get through even if the refill sums to 0.999…9 tokens.
const EPSILON: f64 = 1e-9;

/// A per-key token-bucket rate limiter. `Send + Sync`: share it (e.g. in an `Arc` or the app
/// state) between all request handlers.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<[u8; 16], Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens left at `seen`, in `0.0..=burst`.
    tokens: f64,
    /// When the key was last checked; also the instant `tokens` was computed for.
    seen: Instant,
}

impl RateLimiter {
    /// `burst` requests at once, refilled at `per_second`; at most `max_keys` keys tracked (when
    /// full, drop keys whose bucket is full again, then the oldest).
    ///
    /// # Panics
    ///
    /// If `burst` is 0, `per_second` is not a positive finite number, or `max_keys` is 0: those
    /// are configuration errors, caught at startup.
    pub fn new(burst: u32, per_second: f64, max_keys: usize) -> Self {
        assert!(burst >= 1, "rate limiter burst must be at least 1");
        assert!(
            per_second.is_finite() && per_second > 0.0,
            "rate limiter refill rate must be positive and finite, got {per_second}"
        );
        assert!(max_keys >= 1, "rate limiter must track at least one key");
        RateLimiter {
            burst: f64::from(burst),
            per_second,
            max_keys,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Ok(()) or Err(retry_after) — the wait until one token is available, rounded UP to whole
    /// seconds, at least 1 s.
    ///
    /// The key is a keyed hash of the client (16 bytes: every tracked key costs the same small,
    /// fixed memory, and clients cannot choose keys that collide). A refused request takes no
    /// token, but it does count as the key being seen (for eviction).
    pub fn check(&self, key: &[u8; 16], now: Instant) -> Result<(), Duration> {
        let key = *key;
        // A panic while holding the lock cannot leave a bucket half-updated in a harmful way
        // (each is a plain value), so a poisoned lock is still usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= self.max_keys && !buckets.contains_key(&key) {
            self.make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            seen: now,
        });
        bucket.tokens = self.refilled(bucket, now);
        bucket.seen = bucket.seen.max(now);
        if bucket.tokens + EPSILON >= 1.0 {
            bucket.tokens = (bucket.tokens - 1.0).max(0.0);
            Ok(())
        } else {
            let seconds = ((1.0 - bucket.tokens) / self.per_second - EPSILON).ceil();
            // `as` saturates: an absurdly slow refill gives a huge wait, never a panic.
            Err(Duration::from_secs((seconds as u64).max(1)))
        }
    }

    /// Like [`RateLimiter::check`], but takes no token and tracks no new key: for limits that
    /// count only some outcomes (failed logins), checked before the work and taken after it.
    pub fn peek(&self, key: &[u8; 16], now: Instant) -> Result<(), Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(bucket) = buckets.get(key) else {
            return Ok(());
        };
        let tokens = self.refilled(bucket, now);
        if tokens + EPSILON >= 1.0 {
            Ok(())
        } else {
            let seconds = ((1.0 - tokens) / self.per_second - EPSILON).ceil();
            Err(Duration::from_secs((seconds as u64).max(1)))
        }
    }

    /// The tokens a bucket holds at `now`.
    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.seen).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }

    /// Frees at least one slot, and a tenth of the table when it has to evict live buckets: first
    /// every bucket that is full again (no information lost), then the least recently seen.
    fn make_room(&self, buckets: &mut HashMap<[u8; 16], Bucket>, now: Instant) {
        buckets.retain(|_, bucket| self.refilled(bucket, now) + EPSILON < self.burst);
        let target = self.max_keys - (self.max_keys / 10).max(1);
        if buckets.len() <= target {
            return;
        }
        let evict = buckets.len() - target;
        let mut by_age: Vec<(Instant, [u8; 16])> = buckets
            .iter()
            .map(|(key, bucket)| (bucket.seen, *key))
            .collect();
        by_age.select_nth_unstable_by_key(evict - 1, |&(seen, _)| seen);
        for (_, key) in &by_age[..evict] {
            buckets.remove(key);
        }
    }

    /// The number of keys tracked.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-byte key made of `name`, zero-padded (callers pass keyed hashes; tests need names).
    fn key(name: &[u8]) -> [u8; 16] {
        let mut out = [0; 16];
        out[..name.len()].copy_from_slice(name);
        out
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RateLimiter>();
    }

    #[test]
    fn burst_is_allowed_then_refused() {
        let limiter = RateLimiter::new(5, 1.0, 100);
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(limiter.check(&key(b"a"), t0), Ok(()), "request {i}");
        }
        assert!(limiter.check(&key(b"a"), t0).is_err());
        assert!(limiter.check(&key(b"a"), t0).is_err());
    }

    #[test]
    fn peeking_takes_nothing_and_sees_what_check_would() {
        let limiter = RateLimiter::new(2, 1.0, 100);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.peek(&key(b"a"), t0), Ok(()));
        }
        assert_eq!(limiter.len(), 0, "peeking tracks no key");
        limiter.check(&key(b"a"), t0).unwrap();
        assert_eq!(limiter.peek(&key(b"a"), t0), Ok(()));
        limiter.check(&key(b"a"), t0).unwrap();
        assert_eq!(limiter.peek(&key(b"a"), t0), Err(Duration::from_secs(1)));
        assert_eq!(limiter.peek(&key(b"a"), t0), limiter.check(&key(b"a"), t0));
        assert_eq!(limiter.peek(&key(b"a"), t0 + ms(1000)), Ok(()));
    }

    #[test]
    fn refills_over_time() {
        // Two tokens a second: one every 500 ms.
        let limiter = RateLimiter::new(3, 2.0, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check(&key(b"a"), t0).unwrap();
        }
        assert!(limiter.check(&key(b"a"), t0 + ms(499)).is_err());
        assert_eq!(limiter.check(&key(b"a"), t0 + ms(500)), Ok(()));
        assert!(limiter.check(&key(b"a"), t0 + ms(600)).is_err());
        // A long pause refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.check(&key(b"a"), later), Ok(()));
        }
        assert!(limiter.check(&key(b"a"), later).is_err());
    }

    #[test]
    fn refused_requests_take_no_token() {
        let limiter = RateLimiter::new(1, 1.0, 100);
        let t0 = Instant::now();
        limiter.check(&key(b"a"), t0).unwrap();
        for step in 1..10 {
            assert!(limiter.check(&key(b"a"), t0 + ms(step * 100)).is_err());
        }
        assert_eq!(limiter.check(&key(b"a"), t0 + ms(1000)), Ok(()));
    }

    #[test]
    fn retry_after_is_rounded_up_and_at_least_one_second() {
        // One token every 2.5 s.
        let limiter = RateLimiter::new(1, 0.4, 100);
        let t0 = Instant::now();
        limiter.check(&key(b"a"), t0).unwrap();
        assert_eq!(limiter.check(&key(b"a"), t0), Err(Duration::from_secs(3)));
        assert_eq!(
            limiter.check(&key(b"a"), t0 + ms(500)),
            Err(Duration::from_secs(2))
        );
        assert_eq!(
            limiter.check(&key(b"a"), t0 + ms(1500)),
            Err(Duration::from_secs(1))
        );
        // 10 ms to go: still a whole second.
        assert_eq!(
            limiter.check(&key(b"a"), t0 + ms(2490)),
            Err(Duration::from_secs(1))
        );
        assert_eq!(limiter.check(&key(b"a"), t0 + ms(2500)), Ok(()));

        // A fast refill: 100 tokens a second, so 10 ms to wait, advertised as 1 s.
        let fast = RateLimiter::new(2, 100.0, 100);
        fast.check(&key(b"a"), t0).unwrap();
        fast.check(&key(b"a"), t0).unwrap();
        assert_eq!(fast.check(&key(b"a"), t0), Err(Duration::from_secs(1)));
    }

    #[test]
    fn waiting_the_advertised_retry_after_succeeds() {
        for (burst, rate) in [(1, 1.0), (3, 0.3), (10, 7.0), (2, 0.1), (5, 1.0 / 3.0)] {
            let limiter = RateLimiter::new(burst, rate, 100);
            let mut now = Instant::now();
            for _ in 0..20 {
                // Use up whatever is left (a rounded-up wait may have refilled more than one).
                let wait = loop {
                    if let Err(wait) = limiter.check(&key(b"k"), now) {
                        break wait;
                    }
                };
                assert!(wait >= Duration::from_secs(1));
                assert_eq!(wait.subsec_nanos(), 0, "whole seconds");
                now += wait;
                assert_eq!(
                    limiter.check(&key(b"k"), now),
                    Ok(()),
                    "burst {burst}, rate {rate}"
                );
            }
        }
    }

    #[test]
    fn keys_are_independent() {
        let limiter = RateLimiter::new(2, 1.0, 100);
        let t0 = Instant::now();
        limiter.check(&key(b"a"), t0).unwrap();
        limiter.check(&key(b"a"), t0).unwrap();
        assert!(limiter.check(&key(b"a"), t0).is_err());
        assert_eq!(limiter.check(&key(b"b"), t0), Ok(()));
        assert_eq!(limiter.check(&key(b"b"), t0), Ok(()));
        assert!(limiter.check(&key(b"b"), t0).is_err());
        // Keys differing in any byte, the all-zero key included.
        assert_eq!(limiter.check(&[7; 16], t0), Ok(()));
        assert_eq!(limiter.check(&[0; 16], t0), Ok(()));
        let mut last_byte = key(b"a");
        last_byte[15] = 1;
        assert_eq!(limiter.check(&last_byte, t0), Ok(()));
        assert!(limiter.check(&key(b"a"), t0).is_err());
    }

    #[test]
    fn time_going_backwards_counts_as_no_time() {
        let limiter = RateLimiter::new(1, 1.0, 100);
        let t0 = Instant::now() + Duration::from_secs(10);
        limiter.check(&key(b"a"), t0).unwrap();
        assert!(
            limiter
                .check(&key(b"a"), t0 - Duration::from_secs(5))
                .is_err()
        );
        assert_eq!(limiter.check(&key(b"a"), t0 + ms(1000)), Ok(()));
    }

    #[test]
    fn memory_stays_bounded_under_many_distinct_keys() {
        let max_keys = 1_000;
        let limiter = RateLimiter::new(5, 1.0, max_keys);
        let t0 = Instant::now();
        for i in 0..100_000u32 {
            // All at the same instant: no bucket is ever full again, so this exercises the
            // least-recently-seen eviction.
            assert_eq!(limiter.check(&key(&i.to_le_bytes()), t0), Ok(()));
            assert!(limiter.len() <= max_keys);
        }
        let buckets = limiter.buckets.lock().unwrap();
        assert!(
            buckets.capacity() < 4 * max_keys,
            "capacity {}",
            buckets.capacity()
        );
    }

    #[test]
    fn full_buckets_are_evicted_before_an_abuser() {
        let limiter = RateLimiter::new(5, 1.0, 100);
        let t0 = Instant::now();
        // The abuser empties its bucket first, so it is the least recently seen key.
        for _ in 0..5 {
            limiter.check(&key(b"abuser"), t0).unwrap();
        }
        assert!(limiter.check(&key(b"abuser"), t0).is_err());
        // 99 others take one token each, filling the table.
        for i in 0..99u32 {
            limiter.check(&key(&i.to_le_bytes()), t0 + ms(1)).unwrap();
        }
        assert_eq!(limiter.len(), 100);
        // Two seconds later the others are full again (5 - 1 + 2 ≥ 5) and the abuser is not
        // (0 + 2 < 5): a newcomer evicts the others, not the abuser.
        let t2 = t0 + Duration::from_secs(2);
        limiter.check(&key(b"newcomer"), t2).unwrap();
        assert_eq!(limiter.len(), 2);
        assert_eq!(limiter.check(&key(b"abuser"), t2), Ok(()));
        assert_eq!(limiter.check(&key(b"abuser"), t2), Ok(()));
        assert!(
            limiter.check(&key(b"abuser"), t2).is_err(),
            "the abuser's bucket was reset"
        );
    }

    #[test]
    fn an_active_abuser_survives_a_flood_of_keys() {
        let max_keys = 1_000;
        let limiter = RateLimiter::new(5, 1.0, max_keys);
        let t0 = Instant::now();
        let mut allowed = 0;
        // 100 000 distinct keys, one a millisecond (100 s in all); the abuser tries every 10 ms.
        for i in 0..100_000u64 {
            let now = t0 + ms(i);
            limiter.check(&key(&i.to_le_bytes()), now).unwrap();
            assert!(limiter.len() <= max_keys);
            if i % 10 == 0 && limiter.check(&key(b"abuser"), now).is_ok() {
                allowed += 1;
            }
        }
        // The burst, then one a second over 100 s: a reset bucket would have let 5 more through.
        assert!(
            (100..=105).contains(&allowed),
            "abuser allowed {allowed} times"
        );
    }

    #[test]
    #[should_panic(expected = "burst")]
    fn zero_burst_is_rejected() {
        RateLimiter::new(0, 1.0, 10);
    }

    #[test]
    #[should_panic(expected = "refill rate")]
    fn zero_rate_is_rejected() {
        RateLimiter::new(1, 0.0, 10);
    }

    #[test]
    #[should_panic(expected = "refill rate")]
    fn nan_rate_is_rejected() {
        RateLimiter::new(1, f64::NAN, 10);
    }

    #[test]
    #[should_panic(expected = "at least one key")]
    fn zero_keys_is_rejected() {
        RateLimiter::new(1, 1.0, 0);
    }
}
