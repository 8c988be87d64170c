//! Durable delivery to chat platforms: one outbox every line a platform customer sees
//! leaves through. Every message for a Telegram or Discord customer is an outbox record of
//! the store ([`crate::store::Deliveries`]) written before anyone tries to send it, and it
//! leaves the outbox only once the platform accepted every piece of it, or refused it for
//! good. The channel is a field of the record.
//!
//! Replies of a turn or an agent action are written by the store in the same change as the
//! turn (`Change::outbox` and the platform replies among its messages), and a courier sends
//! only records already durable.
//! One courier task per platform sends that platform's messages in the order they were
//! queued per chat, so a customer never reads a later answer before an earlier one. Network
//! errors and 5xx answers are retried with exponential backoff, 429 answers after the
//! platform's `retry_after`, each chat on its own: one rate-limited or failing chat does not
//! hold back the others. A restart picks up whatever was pending. A permanent refusal (the customer
//! blocked the bot, the chat is gone) moves the message to a `failed` tree and is reported to
//! the failure hook, which records it on the conversation for the agent.
//!
//! Delivery is at least once: a crash between the platform's success answer and the outbox
//! write re-sends that one piece after restart. Long messages are split per platform and the
//! pieces already accepted are remembered, so a retry never repeats them.
//!
//! On a store several nodes share, each channel's courier runs on one node (its lease) and
//! records queued on any node wake it (PostgreSQL: a NOTIFY in the same transaction); it
//! also looks every [`LOOK_AGAIN`] in case a notification was missed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;
use chrono::Utc;
use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub mod format;
pub mod health;
mod retry;
pub use retry::RetryPolicy;

use crate::message::{ChannelKind, ConversationId, Outbound, Speaker, Status};
use crate::store::{has_outbox, OutboxEntry, Store, StoreError};
use format::Dialect;
use health::ChannelHealth;

/// Why a platform did not take a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// Network trouble, a 5xx, a bad token: worth trying again later.
    #[error("{0}")]
    Retryable(String),
    /// The platform asked us to slow down; `retry_after` when it said how long.
    #[error("rate limited: {detail}")]
    RateLimited {
        retry_after: Option<Duration>,
        detail: String,
    },
    /// It will never work for this recipient (bot blocked, chat not found).
    #[error("{0}")]
    Permanent(String),
}

/// One platform's way of putting text in front of a customer. Adapters implement it; the
/// outbox decides when and how often to call it.
pub trait Courier: Send + Sync + 'static {
    fn kind(&self) -> ChannelKind;
    fn dialect(&self) -> Dialect;
    /// Sends one already formatted piece (within the dialect's limit) of `message` to its
    /// recipient (`message.channel_user`). `key` is the same on every try of this piece
    /// (and unique to it): a platform that deduplicates by such a key (Discord's nonce) never
    /// shows a piece twice, even when its answer was lost and the piece is sent again.
    fn send<'a>(
        &'a self,
        message: &'a Outbound,
        text: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// Whether the platform drops a second piece sent with the same `key` (Discord's
    /// `enforce_nonce`). One that does not (Telegram's Bot API) shows a piece twice when the
    /// process dies after the platform accepted it and before the outbox recorded that, so
    /// the outbox records every accepted piece on disk before it sends anything else: the
    /// window shrinks to one flush.
    fn deduplicates(&self) -> bool {
        false
    }
}

pub use crate::store::{FailedDelivery, Parcel};

/// Called once for every permanent failure, after it is stored.
pub type FailureHook = Arc<dyn Fn(FailedDelivery) -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox not stored: {0}")]
    Store(#[from] StoreError),
    #[error("{0} has no outbox courier: only Telegram, Discord and widget messages go through it")]
    NotAPlatform(ChannelKind),
}

/// How long one platform call may take before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Handle to the outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    /// The store that holds the records; every flush goes through it.
    store: Arc<dyn Store>,
    health: ChannelHealth,
    policy: RetryPolicy,
}

/// Where one chat stands with its platform: when it may be tried again.
struct RouteState {
    until: Instant,
    backoff: ExponentialBackoff,
}

/// Only the chat platforms and the widget have couriers (REST answers in its request).
fn platform(kind: ChannelKind) -> Result<ChannelKind, OutboxError> {
    has_outbox(kind)
        .then_some(kind)
        .ok_or(OutboxError::NotAPlatform(kind))
}

impl Outbox {
    /// The outbox in `store`.
    pub async fn open(store: Arc<dyn Store>, health: ChannelHealth) -> Result<Outbox, OutboxError> {
        Self::with_policy(store, health, RetryPolicy::default()).await
    }

    pub async fn with_policy(
        store: Arc<dyn Store>,
        health: ChannelHealth,
        policy: RetryPolicy,
    ) -> Result<Outbox, OutboxError> {
        let outbox = Outbox {
            inner: Arc::new(Inner {
                store,
                health,
                policy,
            }),
        };
        for kind in [
            ChannelKind::Telegram,
            ChannelKind::Discord,
            ChannelKind::Web,
        ] {
            let n = outbox.inner.store.outbox_len(kind).await?;
            if n > 0 {
                tracing::info!(channel = %kind, pending = n, "outbox holds messages from before the restart");
            }
        }
        Ok(outbox)
    }

    /// Queues `message` outside a conversation turn (turns and agent replies queue theirs in
    /// their own store change) and returns once it is durable.
    pub async fn enqueue(&self, message: Outbound) -> Result<(), OutboxError> {
        let kind = platform(message.channel)?;
        self.inner.store.queue_outbox(message).await?;
        self.inner.store.flush().await?;
        self.refresh_pending(kind).await;
        Ok(())
    }

    /// Messages still to deliver on one platform, oldest first (durable ones).
    pub async fn pending(&self, kind: ChannelKind) -> Result<Vec<Parcel>, OutboxError> {
        let kind = platform(kind)?;
        Ok(self
            .inner
            .store
            .outbox_pending(kind, usize::MAX)
            .await?
            .into_iter()
            .map(|e| e.parcel)
            .collect())
    }

    /// Permanent failures recorded for one conversation.
    pub async fn failures(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<FailedDelivery>, OutboxError> {
        Ok(self.inner.store.failed_deliveries(conversation).await?)
    }

    async fn refresh_pending(&self, kind: ChannelKind) {
        if let Ok(n) = self.inner.store.outbox_len(kind).await {
            self.inner.health.outbox_pending(kind, n);
        }
    }

    /// Starts the task that delivers `courier`'s platform messages until aborted.
    pub async fn spawn_courier(
        &self,
        courier: Arc<dyn Courier>,
        on_failure: Option<FailureHook>,
    ) -> Result<JoinHandle<()>, OutboxError> {
        platform(courier.kind())?;
        let outbox = self.clone();
        self.refresh_pending(courier.kind()).await;
        Ok(tokio::spawn(async move {
            outbox.run_courier(courier, on_failure).await
        }))
    }

    /// The courier's work, for a caller that runs it itself (under a lease): delivers
    /// `courier`'s channel until the task is dropped.
    pub async fn deliver_all(self, courier: Arc<dyn Courier>, on_failure: Option<FailureHook>) {
        self.refresh_pending(courier.kind()).await;
        self.run_courier(courier, on_failure).await
    }

    /// Delivers the channel's durable messages in queue order per chat. A chat the platform
    /// rate-limits or fails waits on its own (its `retry_after`, else its own backoff); the
    /// other chats' messages go on meanwhile. Later messages of a waiting chat wait too, so
    /// a customer never reads a later answer before an earlier one.
    async fn run_courier(&self, courier: Arc<dyn Courier>, on_failure: Option<FailureHook>) {
        let kind = courier.kind();
        let store = &self.inner.store;
        let mut routes: HashMap<String, RouteState> = HashMap::new();
        loop {
            // Registered before the read, so a message queued during it is not missed.
            let wake = store.outbox_wake(kind).notified();
            let mut waiting: HashSet<String> = HashSet::new();
            let mut next_due: Option<Instant> = None;
            let mut progressed = false;
            let mut flushed = Instant::now();
            // Every pending record of the channel: a chat that waits must not hide the chats
            // queued behind it.
            let entries = match store.outbox_pending(kind, usize::MAX).await {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::error!(channel = %kind, error = %e, "outbox unreadable; retrying in 5 s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            for mut entry in entries {
                let recipient = entry.parcel.message.channel_user.clone();
                if waiting.contains(&recipient) {
                    continue;
                }
                if let Some(until) = routes.get(&recipient).map(|r| r.until) {
                    if until > Instant::now() {
                        next_due = Some(next_due.map_or(until, |d| d.min(until)));
                        waiting.insert(recipient);
                        continue;
                    }
                }
                if self.superseded(&entry.parcel).await {
                    // Ownership is checked at send too: a bot answer queued before an agent
                    // took the conversation (it waited out a rate limit, say) would now talk
                    // over the agent. The agent sees it in the transcript; the customer does not.
                    tracing::info!(channel = %kind, conversation = %entry.parcel.message.conversation_id,
                        "bot answer not sent: an agent took the conversation after it was queued");
                    if let Err(e) = store.outbox_done(&entry).await {
                        tracing::error!(channel = %kind, error = %e, "outbox write failed");
                    }
                    progressed = true;
                    continue;
                }
                match self.deliver(&*courier, &mut entry).await {
                    Ok(()) => {
                        routes.remove(&recipient);
                        progressed = true;
                        self.inner.health.delivery_error(kind, None);
                        // A long pass makes what it sent durable as it goes: a crash re-sends
                        // only what was accepted in the last moments, not the whole pass (and
                        // on a platform without idempotency keys, nothing but the one piece
                        // whose mark was being flushed).
                        if !courier.deduplicates() || flushed.elapsed() >= MARK_SENT_WITHIN {
                            if let Err(e) = store.flush().await {
                                tracing::error!(channel = %kind, error = %e, "outbox flush failed");
                            }
                            flushed = Instant::now();
                        }
                    }
                    Err(DeliveryError::Permanent(error)) => {
                        routes.remove(&recipient);
                        tracing::warn!(channel = %kind, conversation = %entry.parcel.message.conversation_id,
                            recipient = %entry.parcel.message.channel_user, %error,
                            "message refused for good; recorded on the conversation");
                        let failed = FailedDelivery {
                            message: entry.parcel.message.clone(),
                            error,
                            time: Utc::now(),
                        };
                        if let Err(e) = self.give_up(&entry, &failed).await {
                            tracing::error!(channel = %kind, error = %e, "could not record a failed delivery");
                            waiting.insert(recipient);
                            next_due = Some(Instant::now() + Duration::from_secs(1));
                            continue;
                        }
                        progressed = true;
                        self.inner.health.delivery_failed(kind);
                        if let Some(hook) = &on_failure {
                            hook(failed).await;
                        }
                    }
                    Err(error) => {
                        let route = routes
                            .entry(recipient.clone())
                            .or_insert_with(|| RouteState {
                                until: Instant::now(),
                                backoff: self.inner.policy.backoff(),
                            });
                        let wait = match &error {
                            DeliveryError::RateLimited {
                                retry_after: Some(after),
                                ..
                            } => *after,
                            // Without a figure, slow down at least a second.
                            DeliveryError::RateLimited { .. } => route
                                .backoff
                                .next_backoff()
                                .unwrap_or(self.inner.policy.max)
                                .max(Duration::from_secs(1)),
                            _ => route
                                .backoff
                                .next_backoff()
                                .unwrap_or(self.inner.policy.max),
                        };
                        route.until = Instant::now() + wait;
                        next_due = Some(next_due.map_or(route.until, |d| d.min(route.until)));
                        waiting.insert(recipient);
                        entry.parcel.attempts += 1;
                        entry.parcel.last_error = Some(error.to_string());
                        tracing::warn!(channel = %kind, conversation = %entry.parcel.message.conversation_id,
                            attempt = entry.parcel.attempts, retry_in_ms = wait.as_millis() as u64, %error,
                            "delivery failed; this chat waits, the others go on");
                        self.inner
                            .health
                            .delivery_error(kind, Some(error.to_string()));
                        if let Err(e) = store.outbox_progress(&entry).await {
                            tracing::error!(channel = %kind, error = %e, "outbox write failed");
                        }
                    }
                }
            }
            self.refresh_pending(kind).await;
            if progressed {
                // Sent or gave up on something: the outbox is durable before the next pass,
                // so a crash re-sends at most the one piece in flight.
                if let Err(e) = store.flush().await {
                    tracing::error!(channel = %kind, error = %e, "outbox flush failed");
                }
                continue;
            }
            // On a store other nodes share, a notification from them may be missed (their
            // listener reconnecting): the outbox is looked at again now and then anyway.
            if store.shared() {
                let look = Instant::now() + LOOK_AGAIN;
                next_due = Some(next_due.map_or(look, |d| d.min(look)));
            }
            match next_due {
                Some(due) => {
                    tokio::select! {
                        _ = wake => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                None => wake.await,
            }
        }
    }

    /// A bot answer whose conversation an agent owns, and took (or spoke in) after the answer
    /// was queued.
    async fn superseded(&self, parcel: &Parcel) -> bool {
        if parcel.message.from != Speaker::Bot || !parcel.bot_answer {
            return false;
        }
        match self
            .inner
            .store
            .conversation(&parcel.message.conversation_id)
            .await
        {
            Ok(Some(c)) => {
                c.status == Status::WithAgent
                    && c.last_agent_at.is_some_and(|t| t > parcel.queued_at)
            }
            _ => false,
        }
    }

    /// Sends the pieces of `entry` not yet accepted; removes it once all are.
    async fn deliver(
        &self,
        courier: &dyn Courier,
        entry: &mut OutboxEntry,
    ) -> Result<(), DeliveryError> {
        let storage = |e: StoreError| DeliveryError::Retryable(format!("outbox storage: {e}"));
        let pieces = courier.dialect().render(&entry.parcel.message);
        while entry.parcel.pieces_sent < pieces.len() {
            // A platform call that hangs must not hold every chat of the platform: it counts
            // as a failure of this chat, retried later (the fault campaign found a client with
            // no timeout of its own).
            let parcel = &entry.parcel;
            let piece_key = piece_key(parcel, parcel.pieces_sent);
            let send = courier.send(&parcel.message, &pieces[parcel.pieces_sent], &piece_key);
            tokio::time::timeout(SEND_TIMEOUT, send)
                .await
                .map_err(|_| {
                    DeliveryError::Retryable(format!(
                        "no answer from the platform in {} s",
                        SEND_TIMEOUT.as_secs()
                    ))
                })??;
            entry.parcel.pieces_sent += 1;
            if entry.parcel.pieces_sent < pieces.len() {
                // Remember progress so a crash or retry does not repeat this piece.
                self.inner
                    .store
                    .outbox_progress(entry)
                    .await
                    .map_err(storage)?;
                if !courier.deduplicates() {
                    self.inner.store.flush().await.map_err(storage)?;
                }
            }
        }
        self.inner.store.outbox_done(entry).await.map_err(storage)?;
        Ok(())
    }

    async fn give_up(
        &self,
        entry: &OutboxEntry,
        failed: &FailedDelivery,
    ) -> Result<(), OutboxError> {
        self.inner.store.outbox_failed(entry, failed).await?;
        self.inner.store.flush().await?;
        Ok(())
    }
}

/// The idempotency key of piece `piece` of `parcel`: a hash of what identifies the message
/// for good (its conversation, the instant it was queued, its text), the same on every try
/// and after restarts, never the same for two messages (outbox sequence numbers are reused
/// once delivered entries are gone). At most 20 digits (Discord's nonce takes 25).
fn piece_key(parcel: &Parcel, piece: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(parcel.message.conversation_id.as_str().as_bytes());
    h.update([0]);
    h.update(parcel.queued_at.to_rfc3339().as_bytes());
    h.update([0]);
    h.update(parcel.message.time.to_rfc3339().as_bytes());
    h.update([0]);
    h.update(parcel.message.text.as_bytes());
    let digest = h.finalize();
    let mut n = [0u8; 8];
    n.copy_from_slice(&digest[..8]);
    let base = u64::from_be_bytes(n) % 100_000_000_000_000_000;
    (base * 100 + (piece as u64 % 100)).to_string()
}

/// How often a courier on a shared store looks at its outbox without being woken.
const LOOK_AGAIN: Duration = Duration::from_secs(2);

/// How long a courier's pass may go on sending before what it sent is flushed.
const MARK_SENT_WITHIN: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests;
