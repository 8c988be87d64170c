//! Login throttling: failed logins are counted per agent name and per client address in a
//! sliding window; past the limit the login is refused before any password is hashed. At
//! most [`HASHING_AT_ONCE`] password checks run at once, so a flood of logins cannot take
//! every CPU.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Failed logins per agent name in [`WINDOW`] before that name is locked.
pub const MAX_FAILURES_PER_NAME: usize = 5;
/// Failed logins per client address in [`WINDOW`] before that address is locked.
pub const MAX_FAILURES_PER_IP: usize = 20;
/// Names or addresses remembered at most, each; beyond it the stalest is forgotten.
const MAX_TRACKED: usize = 100_000;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Password checks (argon2) running at once.
pub const HASHING_AT_ONCE: usize = 2;
/// How long a login waits for a free password check before it is told to retry.
pub const HASHING_WAIT: Duration = Duration::from_secs(10);

struct Failures<K> {
    by: HashMap<K, Vec<Instant>>,
}

impl<K> Default for Failures<K> {
    fn default() -> Self {
        Failures { by: HashMap::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Failures<K> {
    fn count(&mut self, key: &K, now: Instant) -> usize {
        match self.by.get_mut(key) {
            Some(times) => {
                times.retain(|t| now.duration_since(*t) < WINDOW);
                times.len()
            }
            None => 0,
        }
    }

    fn note(&mut self, key: K, now: Instant) {
        if self.by.len() >= MAX_TRACKED && !self.by.contains_key(&key) {
            // Forget stale entries rather than grow without bound.
            self.by
                .retain(|_, times| times.iter().any(|t| now.duration_since(*t) < WINDOW));
            // Still full of fresh entries (a flood of distinct names or addresses): make room
            // by forgetting the one whose last failure is oldest. Memory stays bounded.
            if self.by.len() >= MAX_TRACKED {
                let oldest = self
                    .by
                    .iter()
                    .min_by_key(|(_, times)| times.last().copied())
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.by.remove(&k);
                }
            }
        }
        let times = self.by.entry(key).or_default();
        times.retain(|t| now.duration_since(*t) < WINDOW);
        times.push(now);
    }
}

/// Shared by every login request.
pub struct LoginGuard {
    names: Mutex<Failures<String>>,
    ips: Mutex<Failures<IpAddr>>,
    /// Bounds the password checks that run at once.
    pub hashing: Semaphore,
    /// A hash of a random password, as costly as the agents' (checked for unknown names).
    pub dummy: std::sync::OnceLock<String>,
}

impl Default for LoginGuard {
    fn default() -> Self {
        LoginGuard {
            names: Mutex::default(),
            ips: Mutex::default(),
            hashing: Semaphore::new(HASHING_AT_ONCE),
            dummy: std::sync::OnceLock::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LoginGuard {
    /// `Err(what)` when this name or address has failed too often lately.
    pub fn check(&self, name: &str, ip: Option<IpAddr>) -> Result<(), &'static str> {
        let now = Instant::now();
        if lock(&self.names).count(&name.to_lowercase(), now) >= MAX_FAILURES_PER_NAME {
            return Err("too many failed logins for this agent");
        }
        if let Some(ip) = ip {
            if lock(&self.ips).count(&ip, now) >= MAX_FAILURES_PER_IP {
                return Err("too many failed logins from this address");
            }
        }
        Ok(())
    }

    pub fn failed(&self, name: &str, ip: Option<IpAddr>) {
        let now = Instant::now();
        lock(&self.names).note(name.to_lowercase(), now);
        if let Some(ip) = ip {
            lock(&self.ips).note(ip, now);
        }
    }

    pub fn succeeded(&self, name: &str) {
        lock(&self.names).by.remove(&name.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_locked_after_its_failures() {
        let guard = LoginGuard::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_NAME {
            assert!(guard.check("ana", Some(ip)).is_ok());
            guard.failed("ana", Some(ip));
        }
        assert!(guard.check("ANA", None).is_err());
        assert!(guard.check("ben", Some(ip)).is_ok());
        guard.succeeded("ana");
        assert!(guard.check("ana", None).is_ok());
    }

    /// A flood of distinct names (each failing once) cannot grow the memory without bound,
    /// and the name under attack stays throttled meanwhile.
    #[test]
    fn a_flood_of_names_stays_bounded() {
        let mut failures: Failures<String> = Failures::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES_PER_NAME {
            failures.note("ana".into(), now);
        }
        for i in 0..MAX_TRACKED + 50 {
            failures.note(format!("guess-{i}"), now + Duration::from_millis(1));
        }
        assert!(failures.by.len() <= MAX_TRACKED);
        // The oldest entries went first; the flood's last names are all remembered.
        assert_eq!(
            failures.count(&format!("guess-{}", MAX_TRACKED + 49), now),
            1
        );
    }
}
