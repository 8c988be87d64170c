//! The sled trees as engine-neutral [`Record`]s (what `store copy` moves), and back.

use super::outbox::{neutral_outbox_key, sled_outbox_key};
use super::*;

/// A tree's key as the neutral text of [`TABLES`], or `None` for a key this version never
/// writes (left behind, not copied).
fn neutral_key(tree: usize, key: &[u8]) -> Option<(&'static str, String)> {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    let pair = |b: &[u8]| split_pair(b).map(|(a, b)| format!("{a}\t{b}"));
    Some(match tree {
        MESSAGES => {
            let pos = key.iter().position(|b| *b == 0)?;
            let seq: [u8; 8] = key.get(pos + 1..)?.try_into().ok()?;
            let id = text(&key[..pos])?;
            ("messages", format!("{id}\t{:020}", u64::from_be_bytes(seq)))
        }
        QUEUE | ASSIGNMENTS | INBOUND => (TREES[tree], pair(key)?),
        OUTBOX | OUTBOX_FAILED => (TREES[tree], neutral_outbox_key(key)?),
        DISCORD_ROUTES => ("channel_state", format!("discord\t{}", text(key)?)),
        CHANNEL_STATE => ("channel_state", pair(key)?),
        AUDIT => {
            let n: [u8; 8] = key.try_into().ok()?;
            ("audit", format!("{:020}", u64::from_be_bytes(n)))
        }
        _ => (TREES[tree], text(key)?),
    })
}

/// The tree and sled key of a neutral record key.
fn sled_key(table: &str, key: &str) -> Option<(usize, Vec<u8>)> {
    let tree = TREES.iter().position(|t| *t == table)?;
    let pair = |k: &str| k.split_once('\t').map(|(a, b)| pair_key(a, b));
    Some(match tree {
        MESSAGES => {
            let (id, seq) = key.split_once('\t')?;
            (
                tree,
                message_key(&ConversationId(id.into()), seq.parse().ok()?),
            )
        }
        QUEUE | ASSIGNMENTS | INBOUND => (tree, pair(key)?),
        OUTBOX | OUTBOX_FAILED => (tree, sled_outbox_key(key)?.to_vec()),
        CHANNEL_STATE => match key.split_once('\t')? {
            ("discord", k) => (DISCORD_ROUTES, k.as_bytes().to_vec()),
            (channel, k) => (tree, pair_key(channel, k)),
        },
        AUDIT => (tree, key.parse::<u64>().ok()?.to_be_bytes().to_vec()),
        DISCORD_ROUTES => return None,
        _ => (tree, key.as_bytes().to_vec()),
    })
}

impl SledStore {
    pub(super) fn all_records(&self) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        for (i, tree) in self.trees.iter().enumerate() {
            for kv in tree.iter() {
                let (k, v) = kv?;
                let Some((table, key)) = neutral_key(i, &k) else {
                    tracing::warn!(
                        tree = TREES[i],
                        "a key this version does not write; not copied"
                    );
                    continue;
                };
                out.push(Record {
                    table: table.to_string(),
                    key,
                    value: String::from_utf8_lossy(&v).into_owned(),
                });
            }
        }
        out.sort_by(|a, b| (&a.table, &a.key).cmp(&(&b.table, &b.key)));
        Ok(out)
    }

    pub(super) fn load_records(&self, records: &[Record]) -> Result<(), StoreError> {
        for r in records {
            let Some((tree, key)) = sled_key(&r.table, &r.key) else {
                return Err(StoreError::Corrupt {
                    what: format!("record {}/{:?}", r.table, r.key),
                    source: serde::de::Error::custom("not a key of this table"),
                });
            };
            self.trees[tree].insert(key, r.value.as_bytes())?;
        }
        self.resync_outbox()?;
        self.note_write();
        Ok(())
    }
}
