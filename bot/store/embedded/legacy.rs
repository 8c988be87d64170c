//! One-time carry-over of the chat platforms' state from the database older versions kept
//! beside the store (`DATA/channels`) into the store's own trees, so an upgrade loses no
//! reply waiting for delivery, no failed-delivery record and no Discord route.
//!
//! [`import_legacy`] copies the `outbox`, `outbox_failed` and `discord_routes` trees with
//! their keys unchanged (link codes are dropped: they live ten minutes, and the customer
//! asks for a new one), flushes the store, then renames the old folder to
//! `channels.migrated`. A crash before the rename repeats the copy at the next start, which
//! changes nothing already copied.

use std::path::{Path, PathBuf};

use super::outbox::{first_free_sequence, outbox_sequence_of as sequence_of};
use super::{SledStore, DISCORD_ROUTES, OUTBOX, OUTBOX_FAILED};
use crate::store::{Store, StoreError};

/// The folder of the old database, under the data folder.
pub const LEGACY_DIR: &str = "channels";
/// What it is renamed to once carried over (`.1`, `.2`... appended if that is taken).
pub const MIGRATED_DIR: &str = "channels.migrated";

/// What [`import_legacy`] carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Replies still to deliver.
    pub outbox: usize,
    /// Failed-delivery records.
    pub outbox_failed: usize,
    /// Discord route entries (users and threads).
    pub discord_routes: usize,
    /// Where the old database now lies.
    pub moved_to: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot open the old channel database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("cannot copy the old channel database's {tree} tree into the store: {source}")]
    Copy {
        tree: &'static str,
        #[source]
        source: sled::Error,
    },
    #[error("cannot write the carried-over channel state to disk: {0}")]
    Flush(#[from] StoreError),
    #[error("cannot rename {} to {}: {source}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Carries `data_dir/channels` (if it exists) over into `store`; `None` when there is
/// nothing to carry over. Run it once at start, before the platforms start.
pub async fn import_legacy(
    data_dir: &Path,
    store: &SledStore,
) -> Result<Option<Imported>, MigrateError> {
    let path = data_dir.join(LEGACY_DIR);
    if !path.is_dir() {
        return Ok(None);
    }
    let (outbox, outbox_failed, discord_routes) = {
        let old = sled::Config::new()
            .path(&path)
            .open()
            .map_err(|source| MigrateError::Open {
                path: path.clone(),
                source,
            })?;
        copy_trees(&old, store)?
        // `old` closes here, before its folder is renamed.
    };
    store.note_write();
    store.flush().await?;
    let moved_to = free_name(data_dir);
    std::fs::rename(&path, &moved_to).map_err(|source| MigrateError::Rename {
        from: path.clone(),
        to: moved_to.clone(),
        source,
    })?;
    tracing::info!(
        from = %path.display(),
        moved_to = %moved_to.display(),
        outbox,
        outbox_failed,
        discord_routes,
        "carried the chat platforms' outbox, failed deliveries and Discord routes over into the store"
    );
    Ok(Some(Imported {
        outbox,
        outbox_failed,
        discord_routes,
        moved_to,
    }))
}

/// `channels.migrated`, or the first of `channels.migrated.1`, `.2`... that is free.
fn free_name(data_dir: &Path) -> PathBuf {
    let mut candidate = data_dir.join(MIGRATED_DIR);
    let mut n = 1;
    while candidate.exists() {
        candidate = data_dir.join(format!("{MIGRATED_DIR}.{n}"));
        n += 1;
    }
    candidate
}

/// Copies the three trees; returns how many entries each had.
fn copy_trees(old: &sled::Db, store: &SledStore) -> Result<(usize, usize, usize), MigrateError> {
    let pending = store.trees[OUTBOX].clone();
    let failed = store.trees[OUTBOX_FAILED].clone();
    let routes = store.trees[DISCORD_ROUTES].clone();
    let err = |tree: &'static str| move |source| MigrateError::Copy { tree, source };
    // A key the store already uses for something else (never in practice: the store starts
    // its outbox after every key here) gets a fresh key at the end of its lane.
    let mut next = first_free_sequence([&pending, &failed]).map_err(err("outbox"))?;
    let mut copy = |name: &'static str, into: &sled::Tree, rekey: bool| {
        let from = old.open_tree(name).map_err(err(name))?;
        let mut n = 0;
        for entry in from.iter() {
            let (key, value) = entry.map_err(err(name))?;
            let mut key = key.to_vec();
            loop {
                let swapped = into
                    .compare_and_swap(&key, None as Option<&[u8]>, Some(value.clone()))
                    .map_err(err(name))?;
                match swapped {
                    Ok(()) => break,
                    Err(current) if current.current.as_deref() == Some(&value[..]) => break,
                    // Kept: the store's own entry is the newer one.
                    Err(_) if !rekey => break,
                    Err(_) => {
                        let lane = key.first().copied().unwrap_or(0);
                        let seq = next.max(sequence_of(&key).unwrap_or(0) + 1);
                        next = seq + 1;
                        key = [&[lane][..], &seq.to_be_bytes()].concat();
                    }
                }
            }
            n += 1;
        }
        Ok::<usize, MigrateError>(n)
    };
    let outbox = copy("outbox", &pending, true)?;
    let outbox_failed = copy("outbox_failed", &failed, true)?;
    let discord_routes = copy("discord_routes", &routes, false)?;
    store.resync_outbox().map_err(|e| match e {
        crate::store::StoreError::Sled(source) => MigrateError::Copy {
            tree: "outbox",
            source,
        },
        other => MigrateError::Copy {
            tree: "outbox",
            source: sled::Error::Unsupported(other.to_string()),
        },
    })?;
    Ok((outbox, outbox_failed, discord_routes))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::message::{ChannelKind, ConversationId, Outbound, Speaker};
    use crate::store::{Deliveries, FailedDelivery, Parcel};

    fn outbound(channel: ChannelKind, user: &str, text: &str) -> Outbound {
        Outbound {
            conversation_id: ConversationId::from(format!("conv-{user}").as_str()),
            channel,
            channel_user: user.to_string(),
            text: text.to_string(),
            from: Speaker::Bot,
            time: Utc::now(),
            turn: None,
            survey: None,
        }
    }

    fn parcel(channel: ChannelKind, user: &str, text: &str) -> Vec<u8> {
        serde_json::to_vec(&Parcel {
            message: outbound(channel, user, text),
            pieces_sent: 0,
            attempts: 3,
            last_error: Some("502 Bad Gateway".into()),
            queued_at: Utc::now(),
            bot_answer: false,
        })
        .unwrap()
    }

    fn key(lane: u8, seq: u64) -> Vec<u8> {
        [&[lane][..], &seq.to_be_bytes()].concat()
    }

    /// Writes what an older version left in `DATA/channels`.
    fn write_legacy(data: &Path) {
        let old = sled::open(data.join(LEGACY_DIR)).unwrap();
        let outbox = old.open_tree("outbox").unwrap();
        outbox
            .insert(
                key(0, 7),
                parcel(ChannelKind::Telegram, "42", "telegram, first"),
            )
            .unwrap();
        outbox
            .insert(
                key(0, 9),
                parcel(ChannelKind::Telegram, "42", "telegram, second"),
            )
            .unwrap();
        outbox
            .insert(key(1, 8), parcel(ChannelKind::Discord, "555", "discord"))
            .unwrap();
        let failed = FailedDelivery {
            message: outbound(ChannelKind::Telegram, "blocked", "never arrived"),
            error: "Forbidden: bot was blocked by the user".into(),
            time: Utc::now(),
        };
        old.open_tree("outbox_failed")
            .unwrap()
            .insert(key(0, 3), serde_json::to_vec(&failed).unwrap())
            .unwrap();
        let routes = old.open_tree("discord_routes").unwrap();
        routes
            .insert("user:555", br#"{"kind":"thread","channel":900}"#.to_vec())
            .unwrap();
        routes.insert("thread:900", b"555".to_vec()).unwrap();
        old.open_tree("link_codes")
            .unwrap()
            .insert("123456", b"{}".to_vec())
            .unwrap();
        old.flush().unwrap();
    }

    #[tokio::test]
    async fn an_old_channel_database_is_carried_into_the_store_once() {
        let data = tempfile::tempdir().unwrap();
        write_legacy(data.path());
        {
            let store = SledStore::open(&data.path().join("store")).unwrap();
            let imported = import_legacy(data.path(), &store).await.unwrap().unwrap();
            assert_eq!(
                (
                    imported.outbox,
                    imported.outbox_failed,
                    imported.discord_routes
                ),
                (3, 1, 2)
            );
            assert_eq!(imported.moved_to, data.path().join(MIGRATED_DIR));
            assert!(!data.path().join(LEGACY_DIR).exists());
            assert!(data.path().join(MIGRATED_DIR).is_dir());
            // Nothing left to do at the next start.
            assert_eq!(import_legacy(data.path(), &store).await.unwrap(), None);
        }

        // On disk: a fresh process sees it all, keys unchanged.
        let store = Arc::new(SledStore::open(&data.path().join("store")).unwrap());
        assert_eq!(
            store
                .channel_state(ChannelKind::Discord, "user:555")
                .await
                .unwrap()
                .as_deref(),
            Some(r#"{"kind":"thread","channel":900}"#)
        );
        assert_eq!(
            store
                .channel_state(ChannelKind::Discord, "thread:900")
                .await
                .unwrap()
                .as_deref(),
            Some("555")
        );
        let texts = |entries: Vec<crate::store::OutboxEntry>| -> Vec<String> {
            entries.into_iter().map(|e| e.parcel.message.text).collect()
        };
        let telegram = store
            .outbox_pending(ChannelKind::Telegram, 100)
            .await
            .unwrap();
        assert_eq!(texts(telegram), ["telegram, first", "telegram, second"]);
        assert_eq!(
            store
                .outbox_pending(ChannelKind::Discord, 100)
                .await
                .unwrap()
                .len(),
            1
        );
        let failures = store
            .failed_deliveries(&ConversationId::from("conv-blocked"))
            .await
            .unwrap();
        assert_eq!(failures.len(), 1);
        assert!(failures[0].error.contains("blocked"));

        // A reply queued now goes after the carried-over ones.
        store
            .queue_outbox(outbound(ChannelKind::Telegram, "42", "after the upgrade"))
            .await
            .unwrap();
        store.flush().await.unwrap();
        let pending = store
            .outbox_pending(ChannelKind::Telegram, 100)
            .await
            .unwrap();
        assert_eq!(texts(pending).pop().unwrap(), "after the upgrade");
    }

    #[tokio::test]
    async fn nothing_to_carry_over_without_an_old_database() {
        let data = tempfile::tempdir().unwrap();
        let store = SledStore::temporary().unwrap();
        assert_eq!(import_legacy(data.path(), &store).await.unwrap(), None);
        assert!(!data.path().join(MIGRATED_DIR).exists());
    }

    #[tokio::test]
    async fn a_taken_name_is_not_overwritten() {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(data.path().join(MIGRATED_DIR)).unwrap();
        write_legacy(data.path());
        let store = SledStore::temporary().unwrap();
        let imported = import_legacy(data.path(), &store).await.unwrap().unwrap();
        assert_eq!(
            imported.moved_to,
            data.path().join(format!("{MIGRATED_DIR}.1"))
        );
        assert_eq!(store.trees[OUTBOX].len(), 3);
    }
}
