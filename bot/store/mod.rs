//! Durable state: the `Store` trait and its sled implementation. Every tree and key layout
//! lives in this file, so another engine can be added by implementing one trait.
//!
//! Invariant: everything one event changes (a customer turn with the bot's answer and a queue
//! placement; a claim; a close) is written by one `apply(Change)`, which is one sled
//! transaction across all trees. `flush` makes it durable; the desk acknowledges only after.

use crate::message::{ConversationId, Identity, Status};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sled::Transactional;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

mod access;
mod privacy;
mod records;
pub use records::*;

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
    /// Deletes the link codes that expired before `now` and failed-redemption records older
    /// than [`LINK_ATTEMPT_WINDOW`]; returns how many.
    /// Removes expired codes and failed-redemption records older than
    /// [`LINK_ATTEMPT_WINDOW`]; returns how many went.
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
/// How long a failed `/link` redemption counts towards the lock-out.
pub const LINK_ATTEMPT_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

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
        // Failed-redemption records older than the lock-out window count for nothing: drop
        // them, so identities that once guessed wrong do not pile up for ever.
        let attempts = &self.trees[LINK_ATTEMPTS];
        let window_start =
            now - chrono::Duration::from_std(LINK_ATTEMPT_WINDOW).unwrap_or_default();
        for kv in attempts.iter() {
            let (k, v) = kv?;
            let stale = match serde_json::from_slice::<Vec<DateTime<Utc>>>(&v) {
                Ok(times) => times.iter().all(|t| *t < window_start),
                Err(_) => true,
            };
            if stale && attempts.remove(&k)?.is_some() {
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

#[cfg(test)]
mod tests;
