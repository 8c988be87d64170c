//! Throttling, one mechanism for the whole server:
//! - [`Bounded`]: a map that remembers at most a fixed number of keys (addresses, names,
//!   customers). When full it first forgets the entries that hold nothing any more, then
//!   the stalest tenth, so memory stays bounded however many keys an attacker invents, and
//!   making room costs O(1) per insert, amortised.
//! - [`Bucket`] and [`Limiter`]: token buckets per key on a [`Bounded`] map, for the abuse
//!   limits of the widget and the REST API (`limits.rs`).
//! - [`LoginGuard`]: failed logins are counted per (agent name, client address) and per
//!   address in a sliding window, past the limit refused before any password is hashed; a
//!   name guessed from everywhere is slowed, never locked. At most [`HASHING_AT_ONCE`]
//!   password checks run at once, so a flood of logins cannot take every CPU.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Failed logins of one agent name from one address in [`WINDOW`] before that pair is
/// refused.
pub const MAX_FAILURES_PER_PAIR: usize = 5;
/// Failed logins of one name from all addresses in [`WINDOW`] before the name is slowed.
pub const NAME_SLOW_AFTER: usize = 10;
/// A slowed name takes one attempt per this from addresses it has not logged in from.
pub const NAME_SPACING: Duration = Duration::from_secs(5);
/// How long a successful login makes its address a known one for that name.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Failed logins per client address in [`WINDOW`] before that address is locked.
pub const MAX_FAILURES_PER_IP: usize = 20;
/// Names or addresses remembered at most, each; beyond it the stalest is forgotten.
const MAX_TRACKED: usize = 100_000;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Password checks (argon2) running at once.
pub const HASHING_AT_ONCE: usize = 2;
/// How long a login waits for a free password check before it is told to retry.
pub const HASHING_WAIT: Duration = Duration::from_secs(10);

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
struct Failures(Vec<Instant>);

impl Tracked for Failures {
    fn idle(&self, now: Instant) -> bool {
        self.0.iter().all(|t| now.duration_since(*t) >= WINDOW)
    }
}

impl Failures {
    fn recent(&mut self, now: Instant) -> usize {
        self.0.retain(|t| now.duration_since(*t) < WINDOW);
        self.0.len()
    }
}

fn count<K: Hash + Eq + Clone>(map: &mut Bounded<K, Failures>, key: &K, now: Instant) -> usize {
    map.get_mut(key).map_or(0, |f| f.recent(now))
}

fn note<K: Hash + Eq + Clone>(map: &mut Bounded<K, Failures>, key: K, now: Instant) {
    let failures = map.touch(key, now, Failures::default);
    failures.recent(now);
    failures.0.push(now);
}

/// Why a login was refused before any password was checked; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefusal {
    /// This name from this address failed [`MAX_FAILURES_PER_PAIR`] times lately.
    Pair,
    /// This address failed [`MAX_FAILURES_PER_IP`] times lately, whatever the names.
    Address,
    /// The name is being guessed from many addresses: it takes one attempt per
    /// [`NAME_SPACING`] from addresses it never logged in from; the next slot is this far.
    NameSlowed(Duration),
}

impl std::fmt::Display for LoginRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginRefusal::Pair => write!(
                f,
                "too many failed logins for this agent from this address: wait 15 minutes and \
                 try again (or ask an admin to check the password)"
            ),
            LoginRefusal::Address => write!(
                f,
                "too many failed logins from this address: wait 15 minutes and try again"
            ),
            LoginRefusal::NameSlowed(wait) => write!(
                f,
                "this agent's password is being guessed from elsewhere, so logins for it are \
                 slowed: try again in {} s (a browser that logged in before is not slowed)",
                wait.as_secs().max(1)
            ),
        }
    }
}

/// Shared by every login request. Failures are counted per (name, address) and per address
/// in a sliding [`WINDOW`]; past either limit the login is refused before any password is
/// hashed. A name guessed from many addresses is never locked (anyone could lock any agent
/// out): past [`NAME_SLOW_AFTER`] failures it admits one attempt per [`NAME_SPACING`] from
/// addresses it has not logged in from, and none slower from those it has. Each attempt is
/// counted as a failure when it is admitted ([`LoginGuard::begin`]) and taken back when the
/// password was right, so concurrent guesses all count.
pub struct LoginGuard {
    pairs: Mutex<Bounded<(String, IpAddr), Failures>>,
    ips: Mutex<Bounded<IpAddr, Failures>>,
    names: Mutex<Bounded<String, NameState>>,
    /// (name, address) pairs that logged in successfully lately.
    known: Mutex<Bounded<(String, IpAddr), Known>>,
    /// Bounds the password checks that run at once.
    pub hashing: Semaphore,
    /// A hash of a random password, as costly as the agents' (checked for unknown names).
    pub dummy: std::sync::OnceLock<String>,
}

/// One name's failures from everywhere and the next free slot once it is slowed.
#[derive(Default)]
struct NameState {
    failures: Failures,
    next_slot: Option<Instant>,
}

impl Tracked for NameState {
    fn idle(&self, now: Instant) -> bool {
        self.failures.idle(now) && self.next_slot.is_none_or(|t| t <= now)
    }
}

/// When a (name, address) pair last logged in.
struct Known(Instant);

impl Tracked for Known {
    fn idle(&self, now: Instant) -> bool {
        now.duration_since(self.0) >= KNOWN_FOR
    }
}

impl Default for LoginGuard {
    fn default() -> Self {
        LoginGuard {
            pairs: Mutex::new(Bounded::new(MAX_TRACKED)),
            ips: Mutex::new(Bounded::new(MAX_TRACKED)),
            names: Mutex::new(Bounded::new(MAX_TRACKED)),
            known: Mutex::new(Bounded::new(MAX_TRACKED)),
            hashing: Semaphore::new(HASHING_AT_ONCE),
            dummy: std::sync::OnceLock::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An admitted login attempt, already counted as a failure; [`LoginAttempt::succeeded`]
/// takes that back.
pub struct LoginAttempt<'a> {
    guard: &'a LoginGuard,
    name: String,
    ip: IpAddr,
    at: Instant,
    /// How long the attempt must wait before its password is checked (a slowed name).
    pub wait: Duration,
}

impl LoginGuard {
    /// Admits one login attempt for `name` from `ip` and counts it as failed, in one step
    /// (so concurrent guesses cannot all pass a check made before any was recorded).
    pub fn begin(&self, name: &str, ip: IpAddr) -> Result<LoginAttempt<'_>, LoginRefusal> {
        self.begin_at(name, ip, Instant::now())
    }

    fn begin_at(
        &self,
        name: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<LoginAttempt<'_>, LoginRefusal> {
        let name = name.to_lowercase();
        let pair = (name.clone(), ip);
        // One lock order: pairs, ips, names, known.
        let mut pairs = lock(&self.pairs);
        let mut ips = lock(&self.ips);
        if count(&mut pairs, &pair, now) >= MAX_FAILURES_PER_PAIR {
            return Err(LoginRefusal::Pair);
        }
        if count(&mut ips, &ip, now) >= MAX_FAILURES_PER_IP {
            return Err(LoginRefusal::Address);
        }
        let mut names = lock(&self.names);
        let known = lock(&self.known)
            .get_mut(&pair)
            .is_some_and(|k| !k.idle(now));
        let state = names.touch(name.clone(), now, NameState::default);
        let mut wait = Duration::ZERO;
        if !known && state.failures.recent(now) >= NAME_SLOW_AFTER {
            let slot = state.next_slot.filter(|t| *t > now).unwrap_or(now);
            wait = slot - now;
            if wait > NAME_SPACING {
                return Err(LoginRefusal::NameSlowed(wait));
            }
            state.next_slot = Some(slot + NAME_SPACING);
        }
        state.failures.0.push(now);
        note(&mut pairs, pair, now);
        note(&mut ips, ip, now);
        Ok(LoginAttempt {
            guard: self,
            name,
            ip,
            at: now,
            wait,
        })
    }
}

impl LoginAttempt<'_> {
    /// The password was right: the attempt is no failure, and this address is one the
    /// name logs in from.
    pub fn succeeded(self) {
        let g = self.guard;
        let pair = (self.name.clone(), self.ip);
        let forget = |f: &mut Failures| {
            if let Some(i) = f.0.iter().rposition(|t| *t == self.at) {
                f.0.remove(i);
            }
        };
        let mut pairs = lock(&g.pairs);
        let mut ips = lock(&g.ips);
        let mut names = lock(&g.names);
        // A right password clears this pair's failures (the agent mistyped, then got it).
        pairs.remove(&pair);
        if let Some(f) = ips.get_mut(&self.ip) {
            forget(f);
        }
        if let Some(n) = names.get_mut(&self.name) {
            forget(&mut n.failures);
        }
        lock(&g.known).touch(pair, self.at, || Known(self.at)).0 = self.at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_refused_after_its_failures_and_nobody_else_is() {
        let guard = LoginGuard::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_PAIR {
            guard.begin("ana", ip).unwrap();
        }
        assert_eq!(guard.begin("ANA", ip).err(), Some(LoginRefusal::Pair));
        // The agent at another address is not locked out, nor another name at this one.
        guard.begin("ana", other).unwrap().succeeded();
        guard.begin("ben", ip).unwrap().succeeded();
    }

    /// Attempts are counted when admitted: a burst of concurrent guesses (none finished)
    /// gets no more than the limit.
    #[test]
    fn admitted_attempts_count_before_their_outcome() {
        let guard = LoginGuard::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..20).filter_map(|_| guard.begin("ana", ip).ok()).collect();
        assert_eq!(held.len(), MAX_FAILURES_PER_PAIR);
    }

    /// Guessing one name from many addresses slows it to one attempt per spacing for
    /// strangers; the address it logged in from before is not slowed; nothing is locked.
    #[test]
    fn a_name_guessed_from_everywhere_is_slowed_not_locked() {
        let guard = LoginGuard::default();
        let home: IpAddr = "10.9.9.9".parse().unwrap();
        let t0 = Instant::now();
        guard.begin_at("ana", home, t0).unwrap().succeeded();
        for i in 0..NAME_SLOW_AFTER {
            let ip: IpAddr = format!("10.0.1.{i}").parse().unwrap();
            assert_eq!(guard.begin_at("ana", ip, t0).unwrap().wait, Duration::ZERO);
        }
        let stranger = |i: u8| -> IpAddr { format!("10.0.2.{i}").parse().unwrap() };
        // The next stranger gets the free slot, the one after waits for the next, the
        // third is told when to come back.
        assert_eq!(guard.begin_at("ana", stranger(1), t0).unwrap().wait, Duration::ZERO);
        assert_eq!(guard.begin_at("ana", stranger(2), t0).unwrap().wait, NAME_SPACING);
        assert!(matches!(
            guard.begin_at("ana", stranger(3), t0),
            Err(LoginRefusal::NameSlowed(_))
        ));
        // The agent's own address goes straight in.
        let a = guard.begin_at("ana", home, t0).unwrap();
        assert_eq!(a.wait, Duration::ZERO);
        a.succeeded();
        // Later, a stranger's slot comes again.
        let later = t0 + NAME_SPACING * 3;
        assert!(guard.begin_at("ana", stranger(4), later).is_ok());
    }

    /// A flood of distinct names (each failing once) cannot grow the memory without bound,
    /// and the flood's latest names are still counted.
    #[test]
    fn a_flood_of_names_stays_bounded() {
        let mut failures: Bounded<String, Failures> = Bounded::new(MAX_TRACKED);
        let now = Instant::now();
        for _ in 0..MAX_FAILURES_PER_PAIR {
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
