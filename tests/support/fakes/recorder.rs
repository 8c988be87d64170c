//! What a fake platform received and what it is told to refuse, the same for every fake:
//! the messages the bot delivered, every call and delivery attempt, calls refused for a
//! wrong token, and failure injection (the next deliveries answer 429/500/403, or one
//! recipient refuses everything). Every change wakes the tests waiting on it.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use tokio::sync::watch;

use crate::support::PATIENCE;

/// An error a fake answers instead of success, once per entry, in order; each fake answers
/// it in its own platform's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `retry_after` seconds.
    RetryAfter(u32),
    /// 500 Internal Server Error.
    ServerError,
    /// 403: the recipient does not accept messages from the bot.
    Forbidden,
    /// The platform takes the message but its answer never reaches the bot (a 500 after
    /// the message was posted), so the bot sends it again. Discord's fake posts it;
    /// Telegram's answers a plain 500.
    LostAnswer,
}

struct Log<S> {
    sent: Vec<S>,
    /// Delivery attempts, failed ones included.
    attempts: usize,
    /// Scripted answers for the next delivery attempts.
    failures: VecDeque<Failure>,
    /// Recipients who refuse every delivery (blocked the bot, closed their DMs).
    refusing: HashSet<u64>,
    /// Every call made with the right token, in order, as the fake names it.
    calls: Vec<String>,
    /// Calls (or gateway sessions) refused for a wrong token.
    rejected: usize,
}

/// The record of one fake; `S` is what it keeps of a delivered message.
pub struct Recorder<S> {
    log: Mutex<Log<S>>,
    changes: watch::Sender<u64>,
}

impl<S> Default for Recorder<S> {
    fn default() -> Self {
        Recorder {
            log: Mutex::new(Log {
                sent: Vec::new(),
                attempts: 0,
                failures: VecDeque::new(),
                refusing: HashSet::new(),
                calls: Vec::new(),
                rejected: 0,
            }),
            changes: watch::channel(0).0,
        }
    }
}

impl<S: Clone> Recorder<S> {
    fn with<T>(&self, f: impl FnOnce(&mut Log<S>) -> T) -> T {
        let out = f(&mut self.log.lock().unwrap());
        self.bump();
        out
    }

    // What the fake's server side calls.

    /// A call made with the right token.
    pub fn call(&self, name: impl Into<String>) {
        let name = name.into();
        self.with(|log| log.calls.push(name));
    }

    /// A call refused for a wrong token.
    pub fn reject(&self) {
        self.with(|log| log.rejected += 1);
    }

    /// One attempt to deliver to `recipient` (none for a shared channel): counts it and
    /// returns the failure to answer instead of success, if any.
    pub fn attempt(&self, recipient: Option<u64>) -> Option<Failure> {
        self.with(|log| {
            log.attempts += 1;
            log.failures.pop_front().or_else(|| {
                recipient
                    .filter(|r| log.refusing.contains(r))
                    .map(|_| Failure::Forbidden)
            })
        })
    }

    /// A message delivered.
    pub fn delivered(&self, message: S) {
        self.with(|log| log.sent.push(message));
    }

    // What a test tells the fake.

    /// The next delivery attempts answer these errors, one attempt each.
    pub fn fail_next(&self, failures: &[Failure]) {
        self.with(|log| log.failures.extend(failures.iter().copied()));
    }

    /// The platform recovers: pending scripted failures are dropped.
    pub fn clear_failures(&self) {
        self.with(|log| log.failures.clear());
    }

    /// `recipient` refuses every delivery from now on (403).
    pub fn refuse(&self, recipient: u64) {
        self.with(|log| {
            log.refusing.insert(recipient);
        });
    }

    // What a test reads.

    pub fn sent(&self) -> Vec<S> {
        self.log.lock().unwrap().sent.clone()
    }

    pub fn attempts(&self) -> usize {
        self.log.lock().unwrap().attempts
    }

    pub fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().calls.clone()
    }

    pub fn rejected(&self) -> usize {
        self.log.lock().unwrap().rejected
    }

    /// Waits until the delivered messages that `filter` keeps are at least `n`; returns them.
    pub async fn wait_for_sent(&self, what: &str, n: usize, filter: impl Fn(&S) -> bool) -> Vec<S> {
        self.until(what, || {
            let sent: Vec<S> = self.sent().into_iter().filter(|s| filter(s)).collect();
            (sent.len() >= n).then_some(sent)
        })
        .await
    }

    /// Waits until a delivered message satisfies `pred`; returns it.
    pub async fn wait_for_one(&self, what: &str, pred: impl Fn(&S) -> bool) -> S {
        self.until(what, || self.sent().into_iter().find(|s| pred(s)))
            .await
    }

    /// Waits until `n` calls were refused for a wrong token.
    pub async fn wait_for_rejected(&self, n: usize) {
        self.until("calls with a wrong token to be refused", || {
            (self.rejected() >= n).then_some(())
        })
        .await
    }

    /// Waits until `name` has been called at least `n` times.
    pub async fn wait_for_calls(&self, name: &str, n: usize) {
        let what = format!("{n} call(s) of {name}");
        self.until(&what, || {
            (self.calls().iter().filter(|c| *c == name).count() >= n).then_some(())
        })
        .await
    }
}

impl<S> Recorder<S> {
    /// Wakes everyone waiting on this fake (also for the fake's own state changes).
    pub fn bump(&self) {
        self.changes.send_modify(|v| *v += 1);
    }

    /// A receiver to take before checking a condition, so that no change is missed
    /// between the check and the wait.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Waits until `check` returns `Some`, re-checking after every change; panics with
    /// `what` after [`PATIENCE`].
    pub async fn until<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let mut rx = self.watch();
        let wait = async {
            loop {
                if let Some(v) = check() {
                    return v;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        match tokio::time::timeout(PATIENCE, wait).await {
            Ok(v) => v,
            Err(_) => panic!("gave up waiting for: {what}"),
        }
    }
}
