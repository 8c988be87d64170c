//! The sled engine's [`Deliveries`]: the `outbox` and `outbox_failed` trees (keys: a lane
//! byte per channel, then a sequence number, so each courier scans its own channel in queue
//! order) and the channels' state (`discord_routes` for Discord, `channel_state` keyed
//! "channel\0key" for any other).
//!
//! Sequence numbers are taken and committed under one lock (`outbox_commit`), and couriers
//! see only those below `durable_outbox`, the mark the last finished flush covered: a
//! customer never gets a reply whose turn a crash could still undo.

use super::*;

/// The lane byte of a channel in the outbox keys (the on-disk layout of older versions:
/// Telegram 0, Discord 1).
pub(super) fn lane(kind: ChannelKind) -> u8 {
    match kind {
        ChannelKind::Telegram => 0,
        ChannelKind::Discord => 1,
        ChannelKind::Web => 2,
        ChannelKind::Rest => 3,
    }
}

const LANES: usize = 4;

fn lane_kind(lane: u8) -> Option<ChannelKind> {
    ChannelKind::ALL
        .into_iter()
        .find(|k| self::lane(*k) == lane)
}

/// The sequence number in an outbox key (`[lane, u64 BE]`), if it is one.
pub fn outbox_sequence_of(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    (key.len() == 9).then(|| u64::from_be_bytes(bytes))
}

fn outbox_key(lane: u8, seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = lane;
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// One past the highest sequence number in the outbox trees, so that a new message sorts
/// after every message already queued and never takes the key of a recorded failure.
pub fn first_free_sequence(trees: [&sled::Tree; 2]) -> Result<u64, sled::Error> {
    let mut next = 0;
    for tree in trees {
        for lane in 0..LANES as u8 {
            if let Some(key) = tree.scan_prefix([lane]).keys().next_back() {
                if let Some(seq) = outbox_sequence_of(&key?) {
                    next = next.max(seq.saturating_add(1));
                }
            }
        }
    }
    Ok(next)
}

impl SledStore {
    /// A fresh outbox key in `lane`: the lane byte, then a sequence number (big-endian, so
    /// keys sort in queue order). Only under `outbox_commit`.
    pub(super) fn next_outbox_key(&self, lane: u8) -> [u8; 9] {
        outbox_key(lane, self.next_outbox.fetch_add(1, Ordering::SeqCst))
    }

    /// Counts again from the outbox trees, after entries were written into them directly
    /// (an import; every entry there is on disk).
    pub(super) fn resync_outbox(&self) -> Result<(), StoreError> {
        let mut committed = self.outbox_commit.lock().unwrap_or_else(|e| e.into_inner());
        let next = first_free_sequence([&self.trees[OUTBOX], &self.trees[OUTBOX_FAILED]])?
            .max(self.next_outbox.load(Ordering::SeqCst));
        self.next_outbox.store(next, Ordering::SeqCst);
        *committed = next;
        self.durable_outbox.fetch_max(next, Ordering::SeqCst);
        Ok(())
    }

    /// Where a channel's state lives: Discord's older tree, or `channel_state`.
    fn state_key(channel: ChannelKind, key: &str) -> (usize, Vec<u8>) {
        match channel {
            ChannelKind::Discord => (DISCORD_ROUTES, key.as_bytes().to_vec()),
            other => (CHANNEL_STATE, pair_key(other.as_str(), key)),
        }
    }
}

#[async_trait]
impl Deliveries for SledStore {
    async fn queue_outbox(&self, message: Outbound) -> Result<(), StoreError> {
        if !has_outbox(message.channel) {
            return Ok(());
        }
        let lane = lane(message.channel);
        let bytes = encode(&Parcel::new(message, Utc::now()));
        let mut committed = self.outbox_commit.lock().unwrap_or_else(|e| e.into_inner());
        let key = self.next_outbox_key(lane);
        self.trees[OUTBOX].insert(key, bytes)?;
        *committed = self.next_outbox.load(Ordering::SeqCst);
        self.note_write();
        Ok(())
    }

    async fn outbox_pending(
        &self,
        channel: ChannelKind,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let durable = self.durable_outbox.load(Ordering::SeqCst);
        let mut out = Vec::new();
        for kv in self.trees[OUTBOX].scan_prefix([lane(channel)]) {
            let (key, value) = kv?;
            let Some(id) = outbox_sequence_of(&key) else {
                continue;
            };
            // Keys sort by sequence: everything from here on is newer and not on disk yet.
            if id >= durable || out.len() >= limit {
                break;
            }
            match serde_json::from_slice::<Parcel>(&value) {
                Ok(parcel) => out.push(OutboxEntry { id, parcel }),
                Err(e) => {
                    // Cannot happen with records this code wrote; keep the bytes for a
                    // human rather than block the chat for ever.
                    tracing::error!(%channel, error = %e, "unreadable outbox record moved aside");
                    self.trees[OUTBOX_FAILED].insert(&key, value)?;
                    self.trees[OUTBOX].remove(&key)?;
                    self.note_write();
                }
            }
        }
        Ok(out)
    }

    async fn outbox_len(&self, channel: ChannelKind) -> Result<usize, StoreError> {
        Ok(self.trees[OUTBOX].scan_prefix([lane(channel)]).count())
    }

    async fn outbox_progress(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let key = outbox_key(lane(entry.parcel.message.channel), entry.id);
        self.trees[OUTBOX].insert(key, encode(&entry.parcel))?;
        self.note_write();
        Ok(())
    }

    async fn outbox_done(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let key = outbox_key(lane(entry.parcel.message.channel), entry.id);
        self.trees[OUTBOX].remove(key)?;
        self.note_write();
        Ok(())
    }

    async fn outbox_failed(
        &self,
        entry: &OutboxEntry,
        failed: &FailedDelivery,
    ) -> Result<(), StoreError> {
        let key = outbox_key(lane(entry.parcel.message.channel), entry.id);
        let bytes = encode(failed);
        (&self.trees[OUTBOX], &self.trees[OUTBOX_FAILED])
            .transaction(|(pending, failed_tree)| {
                pending.remove(&key)?;
                failed_tree.insert(&key, bytes.clone())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Sled(sled::Error::ReportableBug("aborted".into()))
                }
            })?;
        self.note_write();
        Ok(())
    }

    async fn failed_deliveries(
        &self,
        conversation: &ConversationId,
    ) -> Result<Vec<FailedDelivery>, StoreError> {
        let mut out = Vec::new();
        for value in self.trees[OUTBOX_FAILED].iter().values() {
            let failed: FailedDelivery = decode("outbox_failed", &value?)?;
            if &failed.message.conversation_id == conversation {
                out.push(failed);
            }
        }
        Ok(out)
    }

    fn outbox_wake(&self, channel: ChannelKind) -> &tokio::sync::Notify {
        &self.outbox_wake[lane(channel) as usize % LANES]
    }

    async fn channel_state(
        &self,
        channel: ChannelKind,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let (tree, key) = Self::state_key(channel, key);
        self.get_string(tree, &key)
    }

    async fn set_channel_state(
        &self,
        channel: ChannelKind,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let (tree, key) = Self::state_key(channel, key);
        match value {
            Some(v) => self.trees[tree].insert(key, v.as_bytes())?,
            None => self.trees[tree].remove(key)?,
        };
        self.note_write();
        Ok(())
    }

    async fn update_channel_state(
        &self,
        channel: ChannelKind,
        key: &str,
        update: &(dyn for<'s> Fn(Option<&'s str>) -> Option<String> + Send + Sync),
    ) -> Result<(), StoreError> {
        let (tree, key) = Self::state_key(channel, key);
        self.trees[tree].fetch_and_update(key, |old| {
            let old = old.map(|b| String::from_utf8_lossy(b).into_owned());
            update(old.as_deref()).map(String::into_bytes)
        })?;
        self.note_write();
        Ok(())
    }

    async fn channel_states(
        &self,
        channel: ChannelKind,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut out = Vec::new();
        match channel {
            ChannelKind::Discord => {
                for kv in self.trees[DISCORD_ROUTES].iter() {
                    let (k, v) = kv?;
                    out.push((text(&k), text(&v)));
                }
            }
            other => {
                for kv in self.trees[CHANNEL_STATE].scan_prefix(pair_key(other.as_str(), "")) {
                    let (k, v) = kv?;
                    if let Some((_, key)) = split_pair(&k) {
                        out.push((key, text(&v)));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The engine-neutral key of an outbox record: "channel\t20-digit sequence".
pub(super) fn neutral_outbox_key(key: &[u8]) -> Option<String> {
    let kind = lane_kind(*key.first()?)?;
    Some(format!(
        "{}\t{:020}",
        kind.as_str(),
        outbox_sequence_of(key)?
    ))
}

/// The sled key of an engine-neutral outbox key.
pub(super) fn sled_outbox_key(key: &str) -> Option<[u8; 9]> {
    let (channel, seq) = key.split_once('\t')?;
    let kind = ChannelKind::parse(channel)?;
    Some(outbox_key(lane(kind), seq.parse().ok()?))
}
