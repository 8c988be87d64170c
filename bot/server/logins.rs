//! The console's login guard: failed logins are counted per (agent name, client address) and
//! per address in a sliding window, past the limit refused before any password is hashed; a
//! name guessed from everywhere is slowed, never locked (anyone could lock any agent out). At
//! most [`HASHING_AT_ONCE`] password checks run at once, so a flood of logins cannot take
//! every CPU.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

pub use crate::throttle::WINDOW;
use crate::throttle::{count, lock, note, Bounded, Failures, Tracked, MAX_TRACKED};

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
/// Password checks (argon2) running at once.
pub const HASHING_AT_ONCE: usize = 2;
/// How long a login waits for a free password check before it is told to retry.
pub const HASHING_WAIT: Duration = Duration::from_secs(10);

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
        let held: Vec<_> = (0..20)
            .filter_map(|_| guard.begin("ana", ip).ok())
            .collect();
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
        assert_eq!(
            guard.begin_at("ana", stranger(1), t0).unwrap().wait,
            Duration::ZERO
        );
        assert_eq!(
            guard.begin_at("ana", stranger(2), t0).unwrap().wait,
            NAME_SPACING
        );
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
}
