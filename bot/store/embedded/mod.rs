//! The sled engine: one database folder (`DATA/store`), one tree per table of
//! [`TABLES`](super::TABLES) (the Discord routes keep their older tree name). Every change is
//! one sled transaction across the trees; flushes are serialised and grouped.

use super::*;
use crate::message::Status;
use serde::de::DeserializeOwned;
use sled::Transactional;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

mod access;
mod change;
mod coordination;
mod legacy;
mod outbox;
mod privacy;
mod search;
mod table;
mod versions;
pub use legacy::{import_legacy, Imported, MigrateError, LEGACY_DIR, MIGRATED_DIR};
use outbox::lane;
pub use outbox::{first_free_sequence, outbox_sequence_of};

/// Tree names: the complete on-disk layout of the one database (`DATA/store`).
const TREES: [&str; 20] = [
    "customers",      // customer id -> Customer
    "identities",     // "channel:user" -> customer id
    "conversations",  // conversation id -> ConversationRecord
    "messages",       // conversation id \0 u64 BE sequence -> StoredMessage
    "open",           // "channel:user" -> conversation id
    "queue",          // queue name \0 conversation id -> QueueEntry
    "assignments",    // agent name \0 conversation id -> ""
    "link_codes",     // code -> LinkCode
    "outbox",         // lane byte (see `lane`) + u64 BE sequence -> Parcel
    "outbox_failed",  // lane byte + u64 BE sequence -> FailedDelivery
    "discord_routes", // Discord's channel state: "user:{id}" -> route JSON; "thread:{id}" -> user id
    "api_keys",       // key id -> ApiKeyRecord (the key's SHA-256, never the key)
    "sessions",       // agent session id -> SessionRecord
    "audit",          // u64 BE nanoseconds since 1970 -> AuditLine (no personal data)
    "link_attempts",  // guarded key ("channel:user", "order:N", "shop:ID", ...) -> failure times
    "inbound",        // "channel:user" \0 message id -> SeenInbound (exactly-once intake)
    "awaiting",       // conversation id -> "" : a customer message whose LLM answer is due
    "channel_state",  // channel \0 key -> value, for channels other than Discord
    "settings",       // name -> value every node agrees on (one node here)
    "versions",       // kind \t 20-digit id -> ConfigVersion
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
const INBOUND: usize = 15;
const AWAITING: usize = 16;
const CHANNEL_STATE: usize = 17;
const SETTINGS: usize = 18;
const VERSIONS: usize = 19;

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
    /// Versions are numbered one writer at a time.
    versions_lock: tokio::sync::Mutex<()>,
    /// The next outbox sequence number (one counter for both platforms' lanes).
    next_outbox: AtomicU64,
    /// Outbox keys are taken and committed under this lock, so every sequence number below
    /// its value is committed (not just allocated).
    outbox_commit: std::sync::Mutex<u64>,
    /// Every outbox sequence number below this is on disk: couriers send nothing above it,
    /// so a customer never gets a reply whose turn a crash could still undo.
    durable_outbox: AtomicU64,
    /// Woken when a change queued records for a channel (by lane, see `outbox::lane`).
    outbox_wake: [tokio::sync::Notify; 4],
    /// The leases this (only) node holds, for `/health`.
    leases: std::sync::Mutex<std::collections::HashMap<String, DateTime<Utc>>>,
    /// Never sent on: no other node publishes here.
    published: tokio::sync::broadcast::Sender<String>,
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

/// Keeps the `limit` most recently updated records, newest first (ties by id).
fn newest_first(records: &mut Vec<ConversationRecord>, limit: usize) {
    records.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.id.0.cmp(&b.id.0)));
    records.truncate(limit);
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        what: what.to_string(),
        source,
    })
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    /// A store closed a moment ago in this process may still be finishing a flush on a
    /// blocking thread: its lock is waited for up to 3 s. Held longer, the folder belongs to
    /// another running frontdesk, and the error says so.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            match sled::Config::new()
                .path(dir)
                .cache_capacity(64 * 1024 * 1024)
                .open()
            {
                Ok(db) => return SledStore::with_trees(db),
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                    return Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(
                        format!(
                            "{} is in use by another running frontdesk: stop it first, or \
                             give this one another data folder ({e})",
                            dir.display()
                        ),
                    ))));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn with_trees(db: sled::Db) -> Result<SledStore, StoreError> {
        let trees = TREES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<Result<Vec<_>, _>>()?;
        let next_outbox = first_free_sequence([&trees[OUTBOX], &trees[OUTBOX_FAILED]])?;
        Ok(SledStore {
            db,
            trees,
            applied: AtomicU64::new(0),
            flushed: tokio::sync::Mutex::new(0),
            versions_lock: tokio::sync::Mutex::new(()),
            next_outbox: AtomicU64::new(next_outbox),
            outbox_commit: std::sync::Mutex::new(next_outbox),
            durable_outbox: AtomicU64::new(next_outbox),
            outbox_wake: Default::default(),
            leases: Default::default(),
            published: tokio::sync::broadcast::channel(1).0,
        })
    }

    /// Counts a write made outside `apply`, so the next [`Store::flush`] covers it.
    fn note_write(&self) {
        self.applied.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether every change applied so far is known to be on disk (no flush running).
    pub fn everything_on_disk(&self) -> bool {
        let applied = self.applied.load(Ordering::SeqCst);
        self.flushed.try_lock().is_ok_and(|f| *f >= applied)
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

#[async_trait]
impl Store for SledStore {
    fn engine(&self) -> &'static str {
        "sled"
    }

    async fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
        self.get(CUSTOMERS, id.as_bytes())
    }

    async fn customer_of(&self, identity: &Identity) -> Result<Option<String>, StoreError> {
        self.get_string(IDENTITIES, identity.key().as_bytes())
    }

    async fn open_conversation(
        &self,
        identity: &Identity,
    ) -> Result<Option<ConversationId>, StoreError> {
        Ok(self
            .get_string(OPEN, identity.key().as_bytes())?
            .map(ConversationId))
    }

    async fn conversation(
        &self,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        self.get(CONVERSATIONS, id.0.as_bytes())
    }

    async fn messages(&self, id: &ConversationId) -> Result<Vec<StoredMessage>, StoreError> {
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

    async fn recent_messages(
        &self,
        id: &ConversationId,
        n: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut prefix = id.0.as_bytes().to_vec();
        prefix.push(0);
        let mut out = self.trees[MESSAGES]
            .scan_prefix(prefix)
            .rev()
            .take(n)
            .map(|kv| {
                let (_, v) = kv?;
                decode("messages", &v)
            })
            .collect::<Result<Vec<StoredMessage>, StoreError>>()?;
        out.reverse();
        Ok(out)
    }

    async fn queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.trees[QUEUE]
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                decode("queue", &v)
            })
            .collect()
    }

    async fn assignments(&self) -> Result<Vec<(String, ConversationId)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.trees[ASSIGNMENTS].iter() {
            let (k, _) = kv?;
            if let Some((agent, conv)) = split_pair(&k) {
                out.push((agent, ConversationId(conv)));
            }
        }
        Ok(out)
    }

    async fn conversation_count(&self) -> Result<usize, StoreError> {
        Ok(self.trees[CONVERSATIONS].len())
    }

    async fn conversations_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        // The tree is keyed by id: a scan, kept to `limit` newest as it goes.
        let mut out: Vec<ConversationRecord> = Vec::new();
        for kv in self.trees[CONVERSATIONS].iter() {
            let (_, v) = kv?;
            let record: ConversationRecord = decode("conversation", &v)?;
            if record.updated >= since {
                out.push(record);
                if out.len() > limit.saturating_mul(2).max(1024) {
                    newest_first(&mut out, limit);
                }
            }
        }
        newest_first(&mut out, limit);
        Ok(out)
    }

    async fn awaiting_answers(&self) -> Result<Vec<ConversationId>, StoreError> {
        self.trees[AWAITING]
            .iter()
            .keys()
            .map(|k| Ok(ConversationId(String::from_utf8_lossy(&k?).into_owned())))
            .collect()
    }

    async fn insert_link_code(&self, code: &str, link: &LinkCode) -> Result<bool, StoreError> {
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

    async fn take_link_code(&self, code: &str) -> Result<Option<LinkCode>, StoreError> {
        match self.trees[LINK_CODES].remove(code.as_bytes())? {
            Some(v) => {
                self.applied.fetch_add(1, Ordering::SeqCst);
                Ok(Some(decode("link_codes", &v)?))
            }
            None => Ok(None),
        }
    }

    async fn failures(&self, key: &str, since: DateTime<Utc>) -> Result<usize, StoreError> {
        let times: Vec<DateTime<Utc>> =
            self.get(LINK_ATTEMPTS, key.as_bytes())?.unwrap_or_default();
        Ok(times.iter().filter(|t| **t >= since).count())
    }

    async fn note_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        self.trees[LINK_ATTEMPTS].fetch_and_update(key.as_bytes(), |old| {
            let mut times: Vec<DateTime<Utc>> = old
                .and_then(|v| serde_json::from_slice(v).ok())
                .unwrap_or_default();
            times.retain(|t| *t >= since);
            times.push(now);
            if times.len() > MAX_NOTED_FAILURES {
                times.drain(..times.len() - MAX_NOTED_FAILURES);
            }
            count = times.len();
            Some(encode(&times))
        })?;
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(count)
    }

    async fn purge_link_codes(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
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
        // Failure records older than the longest window count for nothing: drop them, so
        // keys that once failed do not pile up for ever.
        let attempts = &self.trees[LINK_ATTEMPTS];
        let window_start = now - chrono::Duration::from_std(ATTEMPT_MEMORY).unwrap_or_default();
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

    async fn seen_inbound(
        &self,
        identity: &Identity,
        message_id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let seen: Option<SeenInbound> =
            self.get(INBOUND, &pair_key(&identity.key(), message_id))?;
        Ok(seen.map(|s| s.outcome))
    }

    async fn purge_inbound(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let tree = &self.trees[INBOUND];
        let mut purged = 0;
        for kv in tree.iter() {
            let (k, v) = kv?;
            let old = serde_json::from_slice::<SeenInbound>(&v).map_or(true, |s| s.time < before);
            if old && tree.remove(&k)?.is_some() {
                purged += 1;
            }
        }
        if purged > 0 {
            self.applied.fetch_add(1, Ordering::SeqCst);
        }
        Ok(purged)
    }

    async fn apply(&self, change: Change) -> Result<(), StoreError> {
        self.apply_change(change)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        {
            let mine = self.applied.load(Ordering::SeqCst);
            let mut flushed = self.flushed.lock().await;
            if *flushed >= mine {
                return Ok(());
            }
            let covered = self.applied.load(Ordering::SeqCst);
            // every outbox entry below this mark is committed now, so this flush covers it
            let outbox_mark = *self.outbox_commit.lock().unwrap_or_else(|e| e.into_inner());
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || db.flush())
                .await
                .map_err(StoreError::Flush)??;
            *flushed = covered;
            if self.durable_outbox.fetch_max(outbox_mark, Ordering::SeqCst) < outbox_mark {
                for wake in &self.outbox_wake {
                    wake.notify_one();
                }
            }
            Ok(())
        }
    }

    async fn records(&self) -> Result<Vec<Record>, StoreError> {
        self.all_records()
    }

    async fn load(&self, records: &[Record]) -> Result<(), StoreError> {
        self.load_records(records)
    }
}

#[cfg(test)]
pub(super) mod tests;
