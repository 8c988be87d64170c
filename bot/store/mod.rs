//! Durable state behind one interface, [`Store`], and its engines: sled in a folder
//! ([`embedded`], the default: one binary is a whole deployment) and PostgreSQL
//! ([`postgres`], for more than one node). Nothing outside this module names an engine, a
//! tree or a table; [`open`] picks the engine from the configuration.
//!
//! The contract every engine keeps (checked by one suite, `conformance.rs`, run against
//! each):
//! - **Atomicity.** Everything one event changes (a customer turn with the bot's answer, its
//!   outbox records and a queue placement; a claim; a close) is one [`Store::apply`]: all of
//!   it is written or none of it.
//! - **Reads after writes.** A read sees every change whose call returned before it began,
//!   on any node of the deployment.
//! - **Durability.** [`Store::flush`] returns once everything applied before it began would
//!   survive a crash of the process (sled: on disk; PostgreSQL: committed, so at once). The
//!   desk acknowledges a message only after it.
//! - **Order.** Messages read back in their sequence order; outbox records of one channel in
//!   the order they were written, and only once durable.
//! - **Bounds.** Failure records per key stay below [`MAX_NOTED_FAILURES`].

use crate::message::{ChannelKind, ConversationId, Identity, Outbound};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod access;
pub mod cluster;
mod coordination;
pub mod copy;
pub mod embedded;
pub mod postgres;
mod privacy;
mod records;
mod search;
mod versions;
pub use access::AccessControl;
pub use coordination::{while_leader, Coordination, Lease, RESYNC};
pub use embedded::SledStore;
pub use postgres::PgStore;
pub use privacy::CustomerData;
pub use records::*;
pub use search::{
    ConversationSearch, SearchHit, SearchQuery, SearchResults, MAX_SEARCH_LIMIT, MAX_SEARCH_TEXT,
};
pub use versions::{version_key, ConfigVersion, Versions};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("carrying an older version's data into the store: {0}")]
    Upgrade(String),
    #[error("the flush to disk stopped: {0}")]
    Flush(#[source] tokio::task::JoinError),
    #[error("stored record is unreadable ({what}): {source}")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The storage engine behind the desk, the channels' outbox ([`Deliveries`]), the server's
/// access control ([`AccessControl`]) and the privacy commands ([`CustomerData`]).
#[async_trait]
pub trait Store:
    AccessControl
    + CustomerData
    + Deliveries
    + Coordination
    + Versions
    + ConversationSearch
    + Send
    + Sync
    + 'static
{
    /// Which engine, for `/health` and logs ("sled", "postgres").
    fn engine(&self) -> &'static str;
    async fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError>;
    async fn customer_of(&self, identity: &Identity) -> Result<Option<String>, StoreError>;
    async fn open_conversation(
        &self,
        identity: &Identity,
    ) -> Result<Option<ConversationId>, StoreError>;
    async fn conversation(
        &self,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError>;
    async fn messages(&self, id: &ConversationId) -> Result<Vec<StoredMessage>, StoreError>;
    /// The last `n` messages of a conversation, oldest first (reads `n`, not all).
    async fn recent_messages(
        &self,
        id: &ConversationId,
        n: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;
    async fn queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError>;
    /// (agent, conversation) for every conversation an agent owns.
    async fn assignments(&self) -> Result<Vec<(String, ConversationId)>, StoreError>;
    async fn conversation_count(&self) -> Result<usize, StoreError>;
    /// Conversations last changed at or after `since`, newest first, at most `limit`: what
    /// the cockpit reads (what-if replay on real history, the unanswered inbox, feedback).
    async fn conversations_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ConversationRecord>, StoreError>;
    /// Conversations whose latest customer message waits for an answer the LLM was
    /// writing (`Change::awaiting`): after a crash, the desk answers them at start.
    async fn awaiting_answers(&self) -> Result<Vec<ConversationId>, StoreError>;
    /// Keeps `code` for `link` unless the code is taken; returns whether it was free.
    async fn insert_link_code(&self, code: &str, link: &LinkCode) -> Result<bool, StoreError>;
    /// Removes `code` and returns what it was issued for (a code is used once, even when
    /// two callers take it at the same moment).
    async fn take_link_code(&self, code: &str) -> Result<Option<LinkCode>, StoreError>;
    /// How many failures were noted under `key` since `since`. Keys name what is guarded:
    /// an identity's key (its `/link` redemptions), `order:N` (checks of order N, from any
    /// conversation), `shop:ID` (checks of any order of that shop customer), `link-addr:IP`
    /// and `link-all` (wrong link codes from one address, and from everyone).
    async fn failures(&self, key: &str, since: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Notes one more failure under `key` at `now` and forgets those before `since` (at
    /// most [`MAX_NOTED_FAILURES`] newest are kept); returns the count since `since`.
    /// Concurrent notes under one key are all counted.
    async fn note_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
    /// Removes expired codes and failure records older than [`ATTEMPT_MEMORY`]; returns
    /// how many went.
    async fn purge_link_codes(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;
    /// The outcome stored for inbound message `message_id` of `identity`, if it was handled.
    async fn seen_inbound(
        &self,
        identity: &Identity,
        message_id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
    /// Forgets inbound message ids handled before `before` (a platform redelivers within
    /// minutes, a client retries within hours); returns how many.
    async fn purge_inbound(&self, before: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Writes the whole change or nothing, its outbox records included.
    async fn apply(&self, change: Change) -> Result<(), StoreError>;
    /// Returns once everything applied so far is durable.
    async fn flush(&self) -> Result<(), StoreError>;
    /// Every record, engine-neutral, in a stable order: what `store copy` moves and
    /// checksums. `table` names one of [`TABLES`].
    async fn records(&self) -> Result<Vec<Record>, StoreError>;
    /// Writes records read by [`Store::records`] (of this or another engine) as they are.
    async fn load(&self, records: &[Record]) -> Result<(), StoreError>;
}

/// One stored record, engine-neutral: the unit `store copy` moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub table: String,
    /// The record's key as the engine-neutral text in [`TABLES`]' comments.
    pub key: String,
    /// The record (JSON text; empty for pure index entries).
    pub value: String,
}

/// What every engine stores, one name each (sled: a tree; PostgreSQL: a table with the same
/// name). Keys, engine-neutral:
pub const TABLES: [&str; 19] = [
    "customers",     // customer id -> Customer
    "identities",    // "channel:user" -> customer id
    "conversations", // conversation id -> ConversationRecord
    "messages",      // conversation id \t 20-digit sequence -> StoredMessage
    "open",          // "channel:user" -> conversation id
    "queue",         // queue name \t conversation id -> QueueEntry
    "assignments",   // agent name \t conversation id -> ""
    "link_codes",    // code -> LinkCode
    "outbox",        // channel \t 20-digit sequence -> Parcel
    "outbox_failed", // channel \t 20-digit sequence -> FailedDelivery
    "channel_state", // channel \t key -> the adapter's value (Discord routes and marks)
    "api_keys",      // key id -> ApiKeyRecord (the key's SHA-256, never the key)
    "sessions",      // agent session id -> SessionRecord
    "audit",         // 20-digit nanoseconds since 1970 -> AuditLine (no personal data)
    "link_attempts", // guarded key ("channel:user", "order:N", "shop:ID", ...) -> times
    "inbound",       // "channel:user" \t message id -> SeenInbound (exactly-once intake)
    "awaiting",      // conversation id -> "" : a customer message whose LLM answer is due
    "settings",      // name -> value every node shares (the generated master secret)
    "versions",      // kind \t 20-digit id -> ConfigVersion (applied rules files...)
];

/// One outbox record: a message on its way to a chat platform.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Unique in the store and increasing in the order records were written.
    pub id: u64,
    pub parcel: Parcel,
}

/// The channels' durable delivery state: outbox records, failed deliveries and the small
/// records an adapter keeps (Discord's routes and read marks). Part of every [`Store`].
/// Outbox records are written by [`Store::apply`] with the turn that caused them (or by
/// [`Deliveries::queue_outbox`]); the channel is a field of the record.
#[async_trait]
pub trait Deliveries {
    /// Queues `message` outside a turn (the answer to a link command); deliverable once
    /// [`Store::flush`] returns. Messages of channels without a courier here (the widget
    /// and REST answer in their own request) are not queued.
    async fn queue_outbox(&self, message: Outbound) -> Result<(), StoreError>;
    /// Up to `limit` records of `channel` that may be sent, oldest first: only durable
    /// ones (a crash can no longer undo the turn that wrote them).
    async fn outbox_pending(
        &self,
        channel: ChannelKind,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// How many records of `channel` wait.
    async fn outbox_len(&self, channel: ChannelKind) -> Result<usize, StoreError>;
    /// Keeps the progress of `entry` (pieces sent, attempts, the last error).
    async fn outbox_progress(&self, entry: &OutboxEntry) -> Result<(), StoreError>;
    /// `entry` was delivered (or is not to be sent any more): it leaves the outbox.
    async fn outbox_done(&self, entry: &OutboxEntry) -> Result<(), StoreError>;
    /// `entry` was refused for good: it moves to the failed deliveries, atomically.
    async fn outbox_failed(
        &self,
        entry: &OutboxEntry,
        failed: &FailedDelivery,
    ) -> Result<(), StoreError>;
    /// The failed deliveries of one conversation.
    async fn failed_deliveries(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<FailedDelivery>, StoreError>;
    /// Woken whenever records of `channel` became deliverable.
    fn outbox_wake(&self, channel: ChannelKind) -> &tokio::sync::Notify;
    /// A value an adapter keeps under `key`.
    async fn channel_state(
        &self,
        channel: ChannelKind,
        key: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Sets (`Some`) or removes (`None`) the value under `key`.
    async fn set_channel_state(
        &self,
        channel: ChannelKind,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Replaces the value under `key` by `update(old)` atomically (`None` removes it).
    async fn update_channel_state(
        &self,
        channel: ChannelKind,
        key: &str,
        update: &(dyn for<'s> Fn(Option<&'s str>) -> Option<String> + Send + Sync),
    ) -> Result<(), StoreError>;
    /// Every (key, value) of `channel`, in key order.
    async fn channel_states(
        &self,
        channel: ChannelKind,
    ) -> Result<Vec<(String, String)>, StoreError>;
}

/// Which engine holds the desk's state (`[store]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// sled in this folder.
    Folder(std::path::PathBuf),
    /// A PostgreSQL database (`postgres://…`).
    Postgres(String),
}

impl Location {
    /// What to tell an operator about this location (no password).
    pub fn describe(&self) -> String {
        match self {
            Location::Folder(p) => format!("sled in {}", p.display()),
            Location::Postgres(url) => format!("PostgreSQL at {}", postgres::redact(url)),
        }
    }

    /// Reads `--to`/`--from` style arguments: a `postgres://` URL or a data folder.
    pub fn parse(text: &str) -> Location {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres(text.to_string())
        } else {
            Location::Folder(std::path::Path::new(text).join("store"))
        }
    }
}

/// Opens the store at `location` (for PostgreSQL: connects, applies the shipped schema
/// migrations, and fails with what to do when the database cannot be reached). A sled
/// store first takes in what an older version left beside it (`embedded::import_legacy`).
pub async fn open(location: &Location) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match location {
        Location::Folder(dir) => {
            let store = SledStore::open(dir)?;
            if let Some(data_dir) = dir.parent() {
                embedded::import_legacy(data_dir, &store)
                    .await
                    .map_err(|e| StoreError::Upgrade(e.to_string()))?;
            }
            Arc::new(store)
        }
        Location::Postgres(url) => Arc::new(PgStore::connect(url).await?),
    })
}

/// A store that lives only as long as the process (replay, evaluation), behind the trait.
pub fn temporary() -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SledStore::temporary()?))
}

/// How long a failed `/link` redemption counts towards the lock-out.
pub const LINK_ATTEMPT_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);
/// How long any failure record is kept (the longest window that reads them: order checks).
pub const ATTEMPT_MEMORY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Failure times kept per key at most: every limit that reads them is below this (checked
/// at compile time where the limits are), so an attacker's flood cannot grow one record
/// without bound, and a record stays a few KiB.
pub const MAX_NOTED_FAILURES: usize = 320;

/// Whether a channel's messages go through the outbox: the chat platforms and the widget
/// (whose courier shows them on the customer's open sockets). REST clients get their
/// replies in the answer to their own request and read the conversation for later ones.
pub fn has_outbox(kind: ChannelKind) -> bool {
    matches!(
        kind,
        ChannelKind::Telegram | ChannelKind::Discord | ChannelKind::Web
    )
}

/// The outbox records a change writes: its explicit ones, and the platform replies among its
/// messages. A bot message written while the bot owned its conversation is an answer that an
/// agent taking over later supersedes (`bot_answer`); notices written by an agent's action
/// and queue notices always go out.
pub(crate) fn outgoing(change: &Change, now: DateTime<Utc>) -> Vec<Parcel> {
    use crate::message::{Speaker, Status};
    let mut out: Vec<Parcel> = change
        .outbox
        .iter()
        .map(|m| Parcel::new(m.clone(), now))
        .collect();
    out.extend(change.platform_replies().into_iter().map(|m| {
        let bot_answer = m.from == Speaker::Bot
            && change
                .conversations
                .iter()
                .rev()
                .find(|c| c.id == m.conversation_id)
                .is_some_and(|c| c.status == Status::Bot);
        Parcel {
            bot_answer,
            ..Parcel::new(m, now)
        }
    }));
    out.retain(|p| has_outbox(p.message.channel));
    out
}

#[cfg(test)]
mod conformance;
