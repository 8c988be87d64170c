//! Durable state: the `Store` trait and its sled implementation. Every tree and key layout
//! lives in this file, so another engine can be added by implementing one trait.
//!
//! Invariant: everything one event changes (a customer turn with the bot's answer and a queue
//! placement; a claim; a close) is written by one `apply(Change)`, which is one sled
//! transaction across all trees. `flush` makes it durable; the desk acknowledges only after.

use crate::message::{ChannelKind, ConversationId, Identity, Speaker, Status};
use crate::nlu::Analysis;
use crate::policy::EscalationReason;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sled::Transactional;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// A person, whatever channels they write from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub tier: Option<String>,
    pub lifetime_value: Option<f64>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The shop's id for this customer, when the shop told us.
    pub shop_customer_id: Option<String>,
    pub identities: Vec<Identity>,
    pub created: DateTime<Utc>,
    /// Conversations this customer has started, this one included (the frustration score
    /// counts earlier contacts). Customers stored before it existed read as 0.
    #[serde(default)]
    pub conversations: u32,
}

/// One message of a conversation, with what the NLU made of it (customer messages only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub from: Speaker,
    pub text: String,
    pub time: DateTime<Utc>,
    pub analysis: Option<Analysis>,
}

/// The slot the bot asked for and is waiting to hear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSlot {
    pub intent: String,
    pub slot: String,
}

/// A conversation without its messages (those are stored one key each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub id: ConversationId,
    pub customer: String,
    pub channel: ChannelKind,
    pub channel_user: String,
    pub status: Status,
    pub assigned_agent: Option<String>,
    /// The queue it waits in, or last waited in.
    pub queue: Option<String>,
    pub priority: i64,
    pub message_count: u64,
    /// Negative-sentiment probability of each customer message, oldest first.
    pub sentiment_trajectory: Vec<f32>,
    pub slots: BTreeMap<String, String>,
    pub pending: Option<PendingSlot>,
    /// The bot offered a human on its last answer; a "yes" takes it up.
    pub offered_human: bool,
    /// Customer turns the bot could not resolve (out of scope, unknown order...).
    pub unresolved_turns: u32,
    pub escalation: Vec<EscalationReason>,
    /// When it joined its current queue; kept when an idle agent loses it, so it does not
    /// lose its place.
    pub queued_since: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// When the customer last wrote, and when an agent last acted (claim or reply).
    pub last_customer_at: DateTime<Utc>,
    pub last_agent_at: Option<DateTime<Utc>>,
    /// Replies a chat platform refused for good (bot blocked, chat gone), oldest first.
    #[serde(default)]
    pub delivery_failures: Vec<DeliveryFailure>,
    /// The conversation's frustration after the customer's latest message (0..1,
    /// `desk/frustration.rs`) and its reasons ("third time asking", "all caps").
    #[serde(default)]
    pub frustration: f32,
    #[serde(default)]
    pub frustration_reasons: Vec<String>,
    /// Who the customer is known to be, and the order actions waiting for a yes
    /// (`desk/dialogue.rs`).
    #[serde(default)]
    pub access: Access,
}

/// How sure the desk is of who writes in a conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityLevel {
    /// Nobody vouched for them: the bot tells them nothing about any order.
    #[default]
    Anonymous,
    /// A shop-signed customer token, a platform identity the shop vouched for, or the
    /// bot's own check (email or postcode of one order).
    Verified,
    /// A person from the team checked who they are.
    AgentVerified,
}

/// The conversation's identity level and what the bot is waiting to hear about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Access {
    #[serde(default)]
    pub level: IdentityLevel,
    /// The shop's customer id the conversation is verified as (token or agent).
    #[serde(default)]
    pub shop_customer_id: Option<String>,
    /// Orders the bot's check (email or postcode) covered.
    #[serde(default)]
    pub verified_orders: Vec<String>,
    /// Wrong answers to the bot's check so far in this conversation.
    #[serde(default)]
    pub failed_checks: u32,
    /// The order the bot asked the email or postcode of, and the intent to answer then.
    #[serde(default)]
    pub checking: Option<PendingCheck>,
    /// An action restated to the customer, done only on a yes.
    #[serde(default)]
    pub pending_action: Option<PendingAction>,
}

/// The bot asked for the email or postcode of `order` to answer `intent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCheck {
    pub intent: String,
    pub order: String,
}

/// An order action waiting for the customer's yes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAction {
    /// The intent's action (`cancel_order`, `refund_request`).
    pub action: String,
    pub intent: String,
    pub order: String,
    /// The message index of the confirmation question: with the conversation, action and
    /// order, the idempotency key the shop gets, so a repeated yes never acts twice.
    pub asked_at: u64,
}

/// A reply that never reached the customer: the platform refused it for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryFailure {
    pub channel: ChannelKind,
    /// The platform's refusal, as it gave it.
    pub error: String,
    /// The text that was not delivered.
    pub text: String,
    pub time: DateTime<Utc>,
}

/// A one-time `/link` code: who asked for it and until when it may be used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkCode {
    pub identity: Identity,
    pub expires: DateTime<Utc>,
}

/// An API key as stored: its id, name, scope and the SHA-256 of its secret part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    /// `messages`, `agent`, `lead` or `admin`.
    pub scope: String,
    /// Hex SHA-256 of the key's secret part.
    pub hash: String,
    pub created: DateTime<Utc>,
}

/// An agent's console session, kept on the server so it can be revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub agent: String,
    pub expires: DateTime<Utc>,
    /// A fingerprint of the agent's password hash at login: a changed password ends it.
    pub fingerprint: String,
}

/// One line of the privacy audit: what was done, when, to whom (a hash of the id only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLine {
    pub time: DateTime<Utc>,
    pub action: String,
    /// Hex SHA-256 of the customer id.
    pub subject: String,
}

/// Everything stored about one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerExport {
    pub customer: Customer,
    pub conversations: Vec<ExportedConversation>,
    /// Replies waiting for or refused by a chat platform.
    pub outbox: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedConversation {
    pub record: ConversationRecord,
    pub messages: Vec<StoredMessage>,
}

/// How much an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Erased {
    pub conversations: usize,
    pub messages: usize,
    pub identities: usize,
    pub other: usize,
}

impl ConversationRecord {
    pub fn identity(&self) -> Identity {
        Identity::new(self.channel, &self.channel_user)
    }
}

/// A conversation waiting for a human in one named queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub queue: String,
    pub conversation_id: ConversationId,
    pub customer: String,
    pub channel: ChannelKind,
    pub priority: i64,
    pub enqueued_at: DateTime<Utc>,
    pub reasons: Vec<EscalationReason>,
}

/// Everything one event changes, written atomically by `Store::apply`.
#[derive(Debug, Default)]
pub struct Change {
    pub customers: Vec<Customer>,
    pub identities: Vec<(Identity, String)>,
    pub conversations: Vec<ConversationRecord>,
    /// (conversation, sequence number, message)
    pub messages: Vec<(ConversationId, u64, StoredMessage)>,
    /// The conversation an identity currently writes into; `None` once it is closed.
    pub open: Vec<(Identity, Option<ConversationId>)>,
    pub enqueue: Vec<QueueEntry>,
    pub dequeue: Vec<(String, ConversationId)>,
    pub assign: Vec<(String, ConversationId)>,
    pub unassign: Vec<(String, ConversationId)>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("the flush to disk stopped: {0}")]
    Flush(#[source] tokio::task::JoinError),
    #[error("stored record is unreadable ({what}): {source}")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The storage engine behind the desk.
pub trait Store: Send + Sync + 'static {
    fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError>;
    fn customer_of(&self, identity: &Identity) -> Result<Option<String>, StoreError>;
    fn open_conversation(&self, identity: &Identity) -> Result<Option<ConversationId>, StoreError>;
    fn conversation(&self, id: &ConversationId) -> Result<Option<ConversationRecord>, StoreError>;
    fn messages(&self, id: &ConversationId) -> Result<Vec<StoredMessage>, StoreError>;
    fn queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError>;
    /// (agent, conversation) for every conversation an agent owns.
    fn assignments(&self) -> Result<Vec<(String, ConversationId)>, StoreError>;
    fn conversation_count(&self) -> Result<usize, StoreError>;
    /// Keeps `code` for `link` unless the code is taken; returns whether it was free.
    fn insert_link_code(&self, code: &str, link: &LinkCode) -> Result<bool, StoreError>;
    /// Removes `code` and returns what it was issued for (a code is used once).
    fn take_link_code(&self, code: &str) -> Result<Option<LinkCode>, StoreError>;
    /// How many redemptions `identity` got wrong since `since`.
    fn link_failures(&self, identity: &Identity, since: DateTime<Utc>)
        -> Result<usize, StoreError>;
    /// Notes one more wrong redemption at `now`, forgets those before `since`; returns the
    /// count since `since`.
    fn note_link_failure(
        &self,
        identity: &Identity,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
    /// Deletes the link codes that expired before `now`; returns how many.
    fn purge_link_codes(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Writes the whole change or nothing.
    fn apply(&self, change: Change) -> Result<(), StoreError>;
    /// Returns once everything applied so far is on disk.
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Tree names: the complete on-disk layout of the one database (`DATA/store`).
const TREES: [&str; 15] = [
    "customers",      // customer id -> Customer
    "identities",     // "channel:user" -> customer id
    "conversations",  // conversation id -> ConversationRecord
    "messages",       // conversation id \0 u64 BE sequence -> StoredMessage
    "open",           // "channel:user" -> conversation id
    "queue",          // queue name \0 conversation id -> QueueEntry
    "assignments",    // agent name \0 conversation id -> ""
    "link_codes",     // six-digit code -> LinkCode
    "outbox",         // lane byte (0 Telegram, 1 Discord) + u64 BE sequence -> reply to deliver
    "outbox_failed",  // lane byte + u64 BE sequence -> a reply a platform refused for good
    "discord_routes", // "user:{id}" -> route JSON; "thread:{id}" -> user id
    "api_keys",       // key id -> ApiKeyRecord (the key's SHA-256, never the key)
    "sessions",       // agent session id -> SessionRecord
    "audit",          // u64 BE nanoseconds since 1970 -> AuditLine (no personal data)
    "link_attempts",  // "channel:user" -> failed /link redemptions (times, last hour)
];
const CUSTOMERS: usize = 0;
const IDENTITIES: usize = 1;
const CONVERSATIONS: usize = 2;
const MESSAGES: usize = 3;
const OPEN: usize = 4;
const QUEUE: usize = 5;
const ASSIGNMENTS: usize = 6;
const LINK_CODES: usize = 7;
const OUTBOX: usize = 8;
const OUTBOX_FAILED: usize = 9;
const DISCORD_ROUTES: usize = 10;
const API_KEYS: usize = 11;
const SESSIONS: usize = 12;
const AUDIT: usize = 13;
const LINK_ATTEMPTS: usize = 14;

/// The chat platforms' own trees. They live in the store's database (not one of their
/// own) so that a reply and its outbox entry can be written in one transaction, and so
/// that every flush goes through the store's serialised group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelTree {
    Outbox = 8,
    OutboxFailed = 9,
    DiscordRoutes = 10,
}

/// The sled engine: one database folder, the trees above.
///
/// Flushes go one at a time (concurrent `flush_async` calls can deadlock in sled 0.34,
/// spacejam/sled#1308) and each covers every change applied before it began, so callers
/// whose change is already covered by a finished flush return at once (group commit).
pub struct SledStore {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// Changes applied so far.
    applied: AtomicU64,
    /// How many of them are known to be on disk; the lock also serialises flushes.
    flushed: tokio::sync::Mutex<u64>,
}

fn pair_key(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

fn message_key(id: &ConversationId, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.0.len() + 9);
    k.extend_from_slice(id.0.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn split_pair(key: &[u8]) -> Option<(String, String)> {
    let pos = key.iter().position(|b| *b == 0)?;
    Some((
        String::from_utf8_lossy(&key[..pos]).into_owned(),
        String::from_utf8_lossy(&key[pos + 1..]).into_owned(),
    ))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records always serialize")
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        what: what.to_string(),
        source,
    })
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 * 1024 * 1024)
            .open()?;
        SledStore::with_trees(db)
    }

    fn with_trees(db: sled::Db) -> Result<SledStore, StoreError> {
        let trees = TREES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SledStore {
            db,
            trees,
            applied: AtomicU64::new(0),
            flushed: tokio::sync::Mutex::new(0),
        })
    }

    /// One of the chat platforms' trees (see [`ChannelTree`]).
    pub fn channel_tree(&self, tree: ChannelTree) -> sled::Tree {
        self.trees[tree as usize].clone()
    }

    /// Counts a write made directly to a [`ChannelTree`], so the next [`Store::flush`]
    /// covers it.
    pub fn note_write(&self) {
        self.applied.fetch_add(1, Ordering::SeqCst);
    }

    /// A store that lives only as long as the process (replay, tests).
    pub fn temporary() -> Result<SledStore, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        SledStore::with_trees(db)
    }

    fn get<T: DeserializeOwned>(&self, tree: usize, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.trees[tree].get(key)? {
            Some(v) => Ok(Some(decode(TREES[tree], &v)?)),
            None => Ok(None),
        }
    }

    fn get_string(&self, tree: usize, key: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self.trees[tree]
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

impl Store for SledStore {
    fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
        self.get(CUSTOMERS, id.as_bytes())
    }

    fn customer_of(&self, identity: &Identity) -> Result<Option<String>, StoreError> {
        self.get_string(IDENTITIES, identity.key().as_bytes())
    }

    fn open_conversation(&self, identity: &Identity) -> Result<Option<ConversationId>, StoreError> {
        Ok(self
            .get_string(OPEN, identity.key().as_bytes())?
            .map(ConversationId))
    }

    fn conversation(&self, id: &ConversationId) -> Result<Option<ConversationRecord>, StoreError> {
        self.get(CONVERSATIONS, id.0.as_bytes())
    }

    fn messages(&self, id: &ConversationId) -> Result<Vec<StoredMessage>, StoreError> {
        let mut prefix = id.0.as_bytes().to_vec();
        prefix.push(0);
        self.trees[MESSAGES]
            .scan_prefix(prefix)
            .map(|kv| {
                let (_, v) = kv?;
                decode("messages", &v)
            })
            .collect()
    }

    fn queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.trees[QUEUE]
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                decode("queue", &v)
            })
            .collect()
    }

    fn assignments(&self) -> Result<Vec<(String, ConversationId)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.trees[ASSIGNMENTS].iter() {
            let (k, _) = kv?;
            if let Some((agent, conv)) = split_pair(&k) {
                out.push((agent, ConversationId(conv)));
            }
        }
        Ok(out)
    }

    fn conversation_count(&self) -> Result<usize, StoreError> {
        Ok(self.trees[CONVERSATIONS].len())
    }

    fn insert_link_code(&self, code: &str, link: &LinkCode) -> Result<bool, StoreError> {
        let swapped = self.trees[LINK_CODES].compare_and_swap(
            code.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(link)),
        )?;
        if swapped.is_ok() {
            self.applied.fetch_add(1, Ordering::SeqCst);
        }
        Ok(swapped.is_ok())
    }

    fn take_link_code(&self, code: &str) -> Result<Option<LinkCode>, StoreError> {
        match self.trees[LINK_CODES].remove(code.as_bytes())? {
            Some(v) => {
                self.applied.fetch_add(1, Ordering::SeqCst);
                Ok(Some(decode("link_codes", &v)?))
            }
            None => Ok(None),
        }
    }

    fn link_failures(
        &self,
        identity: &Identity,
        since: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let times: Vec<DateTime<Utc>> = self
            .get(LINK_ATTEMPTS, identity.key().as_bytes())?
            .unwrap_or_default();
        Ok(times.iter().filter(|t| **t >= since).count())
    }

    fn note_link_failure(
        &self,
        identity: &Identity,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let key = identity.key();
        let mut count = 0;
        self.trees[LINK_ATTEMPTS].fetch_and_update(key.as_bytes(), |old| {
            let mut times: Vec<DateTime<Utc>> = old
                .and_then(|v| serde_json::from_slice(v).ok())
                .unwrap_or_default();
            times.retain(|t| *t >= since);
            times.push(now);
            count = times.len();
            Some(encode(&times))
        })?;
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(count)
    }

    fn purge_link_codes(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let tree = &self.trees[LINK_CODES];
        let mut purged = 0;
        for kv in tree.iter() {
            let (k, v) = kv?;
            let expired = match serde_json::from_slice::<LinkCode>(&v) {
                Ok(link) => link.expires < now,
                Err(_) => true,
            };
            if expired && tree.remove(&k)?.is_some() {
                purged += 1;
            }
        }
        if purged > 0 {
            self.applied.fetch_add(1, Ordering::SeqCst);
        }
        Ok(purged)
    }

    fn apply(&self, change: Change) -> Result<(), StoreError> {
        // Serialise outside the transaction closure: it may run more than once.
        let customers: Vec<_> = change
            .customers
            .iter()
            .map(|c| (c.id.clone().into_bytes(), encode(c)))
            .collect();
        let identities: Vec<_> = change
            .identities
            .iter()
            .map(|(i, c)| (i.key().into_bytes(), c.clone().into_bytes()))
            .collect();
        let conversations: Vec<_> = change
            .conversations
            .iter()
            .map(|c| (c.id.0.clone().into_bytes(), encode(c)))
            .collect();
        let messages: Vec<_> = change
            .messages
            .iter()
            .map(|(id, seq, m)| (message_key(id, *seq), encode(m)))
            .collect();
        let open: Vec<_> = change
            .open
            .iter()
            .map(|(i, c)| {
                (
                    i.key().into_bytes(),
                    c.as_ref().map(|c| c.0.clone().into_bytes()),
                )
            })
            .collect();
        let enqueue: Vec<_> = change
            .enqueue
            .iter()
            .map(|e| (pair_key(&e.queue, &e.conversation_id.0), encode(e)))
            .collect();
        let dequeue: Vec<_> = change
            .dequeue
            .iter()
            .map(|(q, c)| pair_key(q, &c.0))
            .collect();
        let assign: Vec<_> = change
            .assign
            .iter()
            .map(|(a, c)| pair_key(a, &c.0))
            .collect();
        let unassign: Vec<_> = change
            .unassign
            .iter()
            .map(|(a, c)| pair_key(a, &c.0))
            .collect();

        let result: sled::transaction::TransactionResult<(), ()> =
            self.trees[..].transaction(|t| {
                for (k, v) in &customers {
                    t[CUSTOMERS].insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &identities {
                    t[IDENTITIES].insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &conversations {
                    t[CONVERSATIONS].insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &messages {
                    t[MESSAGES].insert(k.as_slice(), v.as_slice())?;
                }
                for (k, v) in &open {
                    match v {
                        Some(v) => t[OPEN].insert(k.as_slice(), v.as_slice())?,
                        None => t[OPEN].remove(k.as_slice())?,
                    };
                }
                for k in &dequeue {
                    t[QUEUE].remove(k.as_slice())?;
                }
                for (k, v) in &enqueue {
                    t[QUEUE].insert(k.as_slice(), v.as_slice())?;
                }
                for k in &unassign {
                    t[ASSIGNMENTS].remove(k.as_slice())?;
                }
                for k in &assign {
                    t[ASSIGNMENTS].insert(k.as_slice(), &[] as &[u8])?;
                }
                Ok(())
            });
        match result {
            Ok(()) => {
                self.applied.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(sled::transaction::TransactionError::Storage(e)) => Err(StoreError::Sled(e)),
            Err(sled::transaction::TransactionError::Abort(())) => {
                unreachable!("the transaction never aborts")
            }
        }
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mine = self.applied.load(Ordering::SeqCst);
            let mut flushed = self.flushed.lock().await;
            if *flushed >= mine {
                return Ok(());
            }
            let covered = self.applied.load(Ordering::SeqCst);
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || db.flush())
                .await
                .map_err(StoreError::Flush)??;
            *flushed = covered;
            Ok(())
        })
    }
}

/// API keys, sessions, the audit and customers' data as a whole: what the server's access
/// control and the privacy commands need, beside the desk's [`Store`].
impl SledStore {
    pub fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.trees[API_KEYS].insert(key.id.as_bytes(), encode(key))?;
        self.note_write();
        Ok(())
    }

    pub fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get(API_KEYS, id.as_bytes())
    }

    pub fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.trees[API_KEYS]
            .iter()
            .map(|kv| decode("api_keys", &kv?.1))
            .collect()
    }

    pub fn remove_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.trees[API_KEYS].remove(id.as_bytes())?.is_some();
        self.note_write();
        Ok(removed)
    }

    pub fn put_session(&self, id: &str, session: &SessionRecord) -> Result<(), StoreError> {
        self.trees[SESSIONS].insert(id.as_bytes(), encode(session))?;
        self.note_write();
        Ok(())
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.get(SESSIONS, id.as_bytes())
    }

    pub fn remove_session(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.trees[SESSIONS].remove(id.as_bytes())?.is_some();
        self.note_write();
        Ok(removed)
    }

    /// Deletes the sessions that expired before `now`; returns how many.
    pub fn purge_sessions(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut purged = 0;
        for kv in self.trees[SESSIONS].iter() {
            let (k, v) = kv?;
            let expired = serde_json::from_slice::<SessionRecord>(&v)
                .map(|s| s.expires < now)
                .unwrap_or(true);
            if expired && self.trees[SESSIONS].remove(&k)?.is_some() {
                purged += 1;
            }
        }
        self.note_write();
        Ok(purged)
    }

    pub fn audit_lines(&self) -> Result<Vec<AuditLine>, StoreError> {
        self.trees[AUDIT]
            .iter()
            .map(|kv| decode("audit", &kv?.1))
            .collect()
    }

    fn audit_key(time: DateTime<Utc>) -> [u8; 8] {
        (time.timestamp_nanos_opt().unwrap_or(0) as u64).to_be_bytes()
    }

    pub fn audit(&self, line: &AuditLine) -> Result<(), StoreError> {
        let mut key = Self::audit_key(line.time);
        // Two lines in the same nanosecond: the next free key.
        while self.trees[AUDIT]
            .compare_and_swap(key, None as Option<&[u8]>, Some(encode(line)))?
            .is_err()
        {
            key = (u64::from_be_bytes(key) + 1).to_be_bytes();
        }
        self.note_write();
        Ok(())
    }

    /// The customer with this id, or whose shop customer id this is.
    pub fn find_customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
        if let Some(c) = self.customer(id)? {
            return Ok(Some(c));
        }
        for kv in self.trees[CUSTOMERS].iter() {
            let c: Customer = decode("customers", &kv?.1)?;
            if c.shop_customer_id.as_deref() == Some(id) {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// The customer's identities (their record's and any filed under them).
    fn identities_of(&self, customer: &Customer) -> Result<Vec<Identity>, StoreError> {
        let mut out = customer.identities.clone();
        for kv in self.trees[IDENTITIES].iter() {
            let (k, v) = kv?;
            if v.as_ref() == customer.id.as_bytes() {
                let key = String::from_utf8_lossy(&k).into_owned();
                if let Some(identity) = Identity::from_key(&key) {
                    if !out.contains(&identity) {
                        out.push(identity);
                    }
                }
            }
        }
        Ok(out)
    }

    fn conversations_of(
        &self,
        customer: &Customer,
        identities: &[Identity],
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.trees[CONVERSATIONS].iter() {
            let r: ConversationRecord = decode("conversations", &kv?.1)?;
            if r.customer == customer.id || identities.contains(&r.identity()) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Outbox entries (both outbox trees) for these conversations or identities.
    fn outbox_of(
        &self,
        conversations: &[ConversationId],
        identities: &[Identity],
    ) -> Result<Vec<(usize, Vec<u8>, serde_json::Value)>, StoreError> {
        #[derive(Deserialize)]
        struct Entry {
            message: crate::message::Outbound,
        }
        let mut out = Vec::new();
        for tree in [OUTBOX, OUTBOX_FAILED] {
            for kv in self.trees[tree].iter() {
                let (k, v) = kv?;
                let Ok(entry) = serde_json::from_slice::<Entry>(&v) else {
                    continue;
                };
                let m = &entry.message;
                let identity = Identity::new(m.channel, &m.channel_user);
                if conversations.contains(&m.conversation_id) || identities.contains(&identity) {
                    let value = serde_json::from_slice(&v).unwrap_or(serde_json::Value::Null);
                    out.push((tree, k.to_vec(), value));
                }
            }
        }
        Ok(out)
    }

    /// Everything stored about the customer `id` (or whose shop id it is).
    pub fn export_customer(&self, id: &str) -> Result<Option<CustomerExport>, StoreError> {
        let Some(customer) = self.find_customer(id)? else {
            return Ok(None);
        };
        let identities = self.identities_of(&customer)?;
        let mut conversations = Vec::new();
        for record in self.conversations_of(&customer, &identities)? {
            let messages = self.messages(&record.id)?;
            conversations.push(ExportedConversation { record, messages });
        }
        let ids: Vec<_> = conversations.iter().map(|c| c.record.id.clone()).collect();
        let outbox = self
            .outbox_of(&ids, &identities)?
            .into_iter()
            .map(|(_, _, v)| v)
            .collect();
        Ok(Some(CustomerExport {
            customer,
            conversations,
            outbox,
        }))
    }

    /// Removes everything stored about the customer `id` (or whose shop id it is): their
    /// record, identities, conversations and messages, open-conversation index, queue
    /// entries, assignments, link codes and attempts, outbox entries and Discord routes, in
    /// one transaction with an audit line that holds only a hash of the id.
    pub fn erase_customer(
        &self,
        id: &str,
        audit: &AuditLine,
    ) -> Result<Option<Erased>, StoreError> {
        let Some(customer) = self.find_customer(id)? else {
            return Ok(None);
        };
        let identities = self.identities_of(&customer)?;
        let records = self.conversations_of(&customer, &identities)?;
        let ids: Vec<ConversationId> = records.iter().map(|r| r.id.clone()).collect();
        let mut erased = Erased {
            conversations: ids.len(),
            identities: identities.len(),
            ..Erased::default()
        };
        // (tree, key) of everything to remove.
        let mut doomed: Vec<(usize, Vec<u8>)> = vec![(CUSTOMERS, customer.id.clone().into_bytes())];
        for identity in &identities {
            let key = identity.key().into_bytes();
            doomed.push((IDENTITIES, key.clone()));
            doomed.push((OPEN, key.clone()));
            doomed.push((LINK_ATTEMPTS, key));
            if identity.channel == crate::message::ChannelKind::Discord {
                doomed.push((
                    DISCORD_ROUTES,
                    format!("user:{}", identity.user).into_bytes(),
                ));
                for kv in self.trees[DISCORD_ROUTES].scan_prefix(b"thread:") {
                    let (k, v) = kv?;
                    if v.as_ref() == identity.user.as_bytes() {
                        doomed.push((DISCORD_ROUTES, k.to_vec()));
                    }
                }
            }
        }
        for id in &ids {
            doomed.push((CONVERSATIONS, id.0.clone().into_bytes()));
            let mut prefix = id.0.as_bytes().to_vec();
            prefix.push(0);
            for kv in self.trees[MESSAGES].scan_prefix(prefix) {
                doomed.push((MESSAGES, kv?.0.to_vec()));
                erased.messages += 1;
            }
        }
        for kv in self.trees[OPEN].iter() {
            let (k, v) = kv?;
            if ids.iter().any(|id| id.0.as_bytes() == v.as_ref()) {
                doomed.push((OPEN, k.to_vec()));
            }
        }
        for kv in self.trees[QUEUE].iter() {
            let (k, _) = kv?;
            if matches!(split_pair(&k), Some((_, c)) if ids.iter().any(|id| id.0 == c)) {
                doomed.push((QUEUE, k.to_vec()));
            }
        }
        for kv in self.trees[ASSIGNMENTS].iter() {
            let (k, _) = kv?;
            if matches!(split_pair(&k), Some((_, c)) if ids.iter().any(|id| id.0 == c)) {
                doomed.push((ASSIGNMENTS, k.to_vec()));
            }
        }
        for kv in self.trees[LINK_CODES].iter() {
            let (k, v) = kv?;
            if let Ok(link) = serde_json::from_slice::<LinkCode>(&v) {
                if identities.contains(&link.identity) {
                    doomed.push((LINK_CODES, k.to_vec()));
                }
            }
        }
        for (tree, key, _) in self.outbox_of(&ids, &identities)? {
            doomed.push((tree, key));
        }
        erased.other = doomed.len() - erased.messages - erased.conversations;
        let (audit_key, audit_value) = (Self::audit_key(audit.time), encode(audit));
        let result: sled::transaction::TransactionResult<(), ()> =
            self.trees[..].transaction(|t| {
                for (tree, key) in &doomed {
                    t[*tree].remove(key.as_slice())?;
                }
                t[AUDIT].insert(&audit_key[..], audit_value.as_slice())?;
                Ok(())
            });
        match result {
            Ok(()) => {}
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(e.into()),
            Err(sled::transaction::TransactionError::Abort(())) => unreachable!("never aborts"),
        }
        self.note_write();
        Ok(Some(erased))
    }

    /// Deletes closed conversations last updated before `before`, with their messages;
    /// returns how many.
    pub fn purge_closed(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut purged = 0;
        for kv in self.trees[CONVERSATIONS].iter() {
            let (k, v) = kv?;
            let r: ConversationRecord = decode("conversations", &v)?;
            if r.status != Status::Closed || r.updated >= before {
                continue;
            }
            let mut prefix = r.id.0.as_bytes().to_vec();
            prefix.push(0);
            for m in self.trees[MESSAGES].scan_prefix(prefix) {
                self.trees[MESSAGES].remove(m?.0)?;
            }
            self.trees[CONVERSATIONS].remove(k)?;
            purged += 1;
        }
        if purged > 0 {
            self.note_write();
        }
        Ok(purged)
    }

    /// Every key of every tree, as text, for checks that nothing of a customer is left.
    pub fn dump(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut out = Vec::new();
        for (i, tree) in self.trees.iter().enumerate() {
            for kv in tree.iter() {
                let (k, v) = kv?;
                out.push((
                    TREES[i].to_string(),
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
