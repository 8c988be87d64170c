//! Throttling, one mechanism for the whole process:
//! - [`Bounded`]: a map that remembers at most a fixed number of keys (addresses, names,
//!   customers). When full it first forgets the entries that hold nothing any more, then
//!   the stalest tenth, so memory stays bounded however many keys an attacker invents, and
//!   making room costs O(1) per insert, amortised.
//! - [`Bucket`] and [`Limiter`]: token buckets per key on a [`Bounded`] map, for the abuse
//!   limits of the widget and the REST API (`server/limits.rs`) and of Telegram and Discord
//!   senders (`intake.rs`).
//! - [`Failures`]: times of recent failures of one key in a sliding window (the console's
//!   logins, `server/logins.rs`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The guard of `m`, also when a panic poisoned it (the maps hold no invariant a panic
/// could break half-way).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keys remembered at most by the login guard's maps, each; beyond it the stalest go.
pub const MAX_TRACKED: usize = 100_000;
/// The sliding window of [`Failures`].
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// What a [`Bounded`] map keeps per key.
pub trait Tracked {
    /// True when the entry says nothing any more at `now` (a full bucket, failures all out
    /// of the window): forgetting it changes no answer.
    fn idle(&self, now: Instant) -> bool;
}

/// A map of at most `cap` keys, each with the time it was last touched.
pub struct Bounded<K, V> {
    map: HashMap<K, (V, Instant)>,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V: Tracked> Bounded<K, V> {
    pub fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entry of `key`, without touching it.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key).map(|(v, _)| v)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key).map(|(v, _)| v)
    }

    /// The entry of `key` (made with `make` when new, after making room), touched at `now`.
    pub fn touch(&mut self, key: K, now: Instant, make: impl FnOnce() -> V) -> &mut V {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.make_room(now);
        }
        let entry = self.map.entry(key).or_insert_with(|| (make(), now));
        entry.1 = entry.1.max(now);
        &mut entry.0
    }

    /// Forgets the idle entries; when that is not enough (a flood of fresh keys), the
    /// stalest tenth too, so the next inserts do not pay for a scan each.
    fn make_room(&mut self, now: Instant) {
        self.map.retain(|_, (v, _)| !v.idle(now));
        let keep = self.cap - self.cap / 10 - 1;
        if self.map.len() <= keep {
            return;
        }
        let excess = self.map.len() - keep;
        let mut by_age: Vec<(Instant, K)> =
            self.map.iter().map(|(k, (_, t))| (*t, k.clone())).collect();
        by_age.select_nth_unstable_by_key(excess - 1, |(t, _)| *t);
        for (_, k) in by_age.into_iter().take(excess) {
            self.map.remove(&k);
        }
    }
}

/// A token bucket's rate: `per_sec` tokens a second up to `burst`; `per_sec` 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

impl Rate {
    pub fn per_sec(per_sec: f64, burst: u32) -> Rate {
        Rate {
            per_sec: per_sec.max(0.0),
            burst: burst as f64,
        }
    }

    pub fn per_min(per_min: f64, burst: u32) -> Rate {
        Rate::per_sec(per_min / 60.0, burst)
    }

    pub fn is_off(&self) -> bool {
        self.per_sec <= 0.0 || !self.per_sec.is_finite()
    }
}

/// One key's allowance: `tokens` as of `at`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
    /// Seconds this bucket needs to refill completely from empty (its rate's burst/rate).
    full_after: f64,
}

impl Bucket {
    pub fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
            full_after: rate.burst / rate.per_sec,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec).min(rate.burst);
        self.at = self.at.max(now);
    }

    /// Takes one token; `Err(wait)` when there is none, with how long until there is.
    pub fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_sec))
        }
    }
}

impl Tracked for Bucket {
    /// A bucket that has refilled completely is the same as no bucket.
    fn idle(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        elapsed >= self.full_after
    }
}

/// Token buckets per key, remembering at most a bounded number of keys.
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<Bounded<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate, max_tracked: usize) -> Self {
        Limiter {
            rate,
            buckets: Mutex::new(Bounded::new(max_tracked)),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// One request of `key`: `Err(wait)` when its bucket is empty. Always `Ok` when the
    /// rate is off.
    pub fn take(&self, key: K) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    pub fn take_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        if self.rate.is_off() {
            return Ok(());
        }
        let rate = self.rate;
        lock(&self.buckets)
            .touch(key, now, || Bucket::full(rate, now))
            .take(rate, now)
    }

    /// Keys remembered now.
    pub fn tracked(&self) -> usize {
        lock(&self.buckets).len()
    }
}

/// Times of recent failures of one key.
#[derive(Default)]
pub struct Failures(pub Vec<Instant>);

impl Tracked for Failures {
    fn idle(&self, now: Instant) -> bool {
        self.0.iter().all(|t| now.duration_since(*t) >= WINDOW)
    }
}

impl Failures {
    pub fn recent(&mut self, now: Instant) -> usize {
        self.0.retain(|t| now.duration_since(*t) < WINDOW);
        self.0.len()
    }
}

pub fn count<K: Hash + Eq + Clone>(map: &mut Bounded<K, Failures>, key: &K, now: Instant) -> usize {
    map.get_mut(key).map_or(0, |f| f.recent(now))
}

pub fn note<K: Hash + Eq + Clone>(map: &mut Bounded<K, Failures>, key: K, now: Instant) {
    let failures = map.touch(key, now, Failures::default);
    failures.recent(now);
    failures.0.push(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flood of distinct names (each failing once) cannot grow the memory without bound,
    /// and the flood's latest names are still counted.
    #[test]
    fn a_flood_of_names_stays_bounded() {
        let mut failures: Bounded<String, Failures> = Bounded::new(MAX_TRACKED);
        let now = Instant::now();
        for _ in 0..5 {
            note(&mut failures, "ana".into(), now);
        }
        for i in 0..MAX_TRACKED + 50 {
            note(
                &mut failures,
                format!("guess-{i}"),
                now + Duration::from_millis(1 + i as u64),
            );
        }
        assert!(failures.len() <= MAX_TRACKED);
        // The oldest entries went first; the flood's last names are all remembered.
        let later = now + Duration::from_secs(200);
        assert_eq!(
            count(&mut failures, &format!("guess-{}", MAX_TRACKED + 49), later),
            1
        );
        assert_eq!(count(&mut failures, &"ana".to_string(), later), 0);
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let rate = Rate::per_sec(2.0, 4);
        let t0 = Instant::now();
        let mut b = Bucket::full(rate, t0);
        for _ in 0..4 {
            assert!(b.take(rate, t0).is_ok());
        }
        let wait = b.take(rate, t0).unwrap_err();
        assert!(
            (wait.as_secs_f64() - 0.5).abs() < 1e-6,
            "one token comes back after 1/rate: {wait:?}"
        );
        // A refused request costs nothing: after the wait, exactly one passes.
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.take(rate, t1).is_ok());
        assert!(b.take(rate, t1).is_err());
        // A long pause refills to the burst, never beyond.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..4 {
            assert!(b.take(rate, t2).is_ok());
        }
        assert!(b.take(rate, t2).is_err());
        assert!(!b.idle(t2));
        assert!(
            b.idle(t2 + Duration::from_secs(2)),
            "full again after burst/rate"
        );
    }

    #[test]
    fn a_limiter_keeps_keys_apart_and_can_be_off() {
        let t0 = Instant::now();
        let limiter: Limiter<&str> = Limiter::new(Rate::per_min(60.0, 2), 100);
        assert!(limiter.take_at("a", t0).is_ok());
        assert!(limiter.take_at("a", t0).is_ok());
        let wait = limiter.take_at("a", t0).unwrap_err();
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
        assert!(
            limiter.take_at("b", t0).is_ok(),
            "another key has its own bucket"
        );
        let off: Limiter<&str> = Limiter::new(Rate::per_sec(0.0, 0), 100);
        for _ in 0..1000 {
            assert!(off.take_at("a", t0).is_ok());
        }
        assert_eq!(off.tracked(), 0, "an unlimited limiter remembers nothing");
    }

    /// A flood of fresh keys (an attacker's addresses) keeps at most `max_tracked` buckets,
    /// and the key being limited stays limited while the flood's keys are all fresh.
    #[test]
    fn a_flood_of_keys_stays_bounded_and_forgets_the_stalest() {
        let t0 = Instant::now();
        let limiter: Limiter<u32> = Limiter::new(Rate::per_sec(1.0, 1), 1000);
        for i in 0..10_000u32 {
            let now = t0 + Duration::from_micros(i as u64);
            assert!(limiter.take_at(i, now).is_ok());
            assert!(limiter.tracked() <= 1000);
        }
        // The latest keys are remembered (still limited); the earliest were forgotten.
        let now = t0 + Duration::from_millis(20);
        assert!(limiter.take_at(9_999, now).is_err());
        assert!(limiter.take_at(0, now).is_ok());
    }

    #[test]
    fn full_buckets_are_forgotten_before_anything_else() {
        let t0 = Instant::now();
        let rate = Rate::per_sec(10.0, 1);
        let mut map: Bounded<u32, Bucket> = Bounded::new(100);
        // Key 0 is the oldest but still empty; keys 1..100 have refilled by `later`.
        map.touch(0, t0 + Duration::from_secs(1), || Bucket::full(rate, t0))
            .take(rate, t0 + Duration::from_secs(1))
            .unwrap();
        for i in 1..100 {
            map.touch(i, t0, || Bucket::full(rate, t0))
                .take(rate, t0)
                .unwrap();
        }
        let later = t0 + Duration::from_millis(1050);
        map.touch(1000, later, || Bucket::full(rate, later));
        assert!(map.get_mut(&0).is_some(), "a bucket still in use is kept");
        assert_eq!(map.len(), 2);
    }
}
