//! The server's store: the desk's sled store with group commit in front of `flush`.
//!
//! Every acknowledged message waits for a flush. Concurrent `sled::Tree::flush_async` calls
//! can deadlock in sled 0.34 (spacejam/sled#1308: seen here as a server that stops answering
//! under load), and one fsync per message caps throughput anyway. So flushes go one at a
//! time, and each covers every write applied before it started: a caller whose write is
//! already covered by a finished flush returns at once. The acknowledgement rule is
//! unchanged: `flush` returns only after a flush that began after the caller's `apply`.

use crate::config::Config;
use crate::desk::{Desk, DeskError, DeskParts, Understand};
use crate::message::{ConversationId, Identity};
use crate::store::{
    Change, ConversationRecord, Customer, QueueEntry, SledStore, Store, StoreError, StoredMessage,
};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct GroupCommit<S> {
    inner: S,
    /// Tickets handed to callers of `flush`, each after its caller's writes were applied.
    issued: AtomicU64,
    /// Highest ticket whose writes are known to be on disk; the lock also serialises flushes.
    flushed: tokio::sync::Mutex<u64>,
}

impl<S: Store> GroupCommit<S> {
    pub fn new(inner: S) -> Self {
        GroupCommit {
            inner,
            issued: AtomicU64::new(0),
            flushed: tokio::sync::Mutex::new(0),
        }
    }
}

impl<S: Store> Store for GroupCommit<S> {
    fn customer(&self, id: &str) -> Result<Option<Customer>, StoreError> {
        self.inner.customer(id)
    }
    fn customer_of(&self, identity: &Identity) -> Result<Option<String>, StoreError> {
        self.inner.customer_of(identity)
    }
    fn open_conversation(&self, identity: &Identity) -> Result<Option<ConversationId>, StoreError> {
        self.inner.open_conversation(identity)
    }
    fn conversation(&self, id: &ConversationId) -> Result<Option<ConversationRecord>, StoreError> {
        self.inner.conversation(id)
    }
    fn messages(&self, id: &ConversationId) -> Result<Vec<StoredMessage>, StoreError> {
        self.inner.messages(id)
    }
    fn queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.inner.queue_entries()
    }
    fn assignments(&self) -> Result<Vec<(String, ConversationId)>, StoreError> {
        self.inner.assignments()
    }
    fn conversation_count(&self) -> Result<usize, StoreError> {
        self.inner.conversation_count()
    }
    fn apply(&self, change: Change) -> Result<(), StoreError> {
        self.inner.apply(change)
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let ticket = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
            let mut flushed = self.flushed.lock().await;
            if *flushed >= ticket {
                return Ok(());
            }
            // Every ticket issued so far belongs to a write already applied.
            let covers = self.issued.load(Ordering::SeqCst);
            self.inner.flush().await?;
            *flushed = covers;
            Ok(())
        })
    }
}

/// `Desk::open` with the group-commit store.
pub async fn open_desk(config: &Config, nlu: impl Understand) -> Result<Desk, DeskError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| DeskError::Setup(format!("{what}: {e}"));
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| setup(&format!("data dir {}", dir.display()), &e))?;
    let store = SledStore::open(&dir.join("store")).map_err(|e| setup("store", &e))?;
    let rules = crate::policy::Rules::load(&config.engine.rules).map_err(|e| setup("rules", &e))?;
    let shop = crate::commerce::from_config(&config.commerce).map_err(|e| setup("commerce", &e))?;
    let dialogue = crate::dialogue::Dialogue::load(&config.engine.intents_dir, shop)
        .map_err(|e| setup("intents", &e))?;
    Ok(Desk::open_with(DeskParts {
        store: Arc::new(GroupCommit::new(store)),
        nlu: Arc::new(nlu),
        dialogue,
        rules,
        agents: config.agents.clone(),
        engine: config.engine.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts flushes; each takes a while, like an fsync. Only `flush` is ever called here.
    struct SlowDisk {
        flushes: Arc<AtomicUsize>,
        release: Arc<tokio::sync::Semaphore>,
    }

    impl Store for SlowDisk {
        fn customer(&self, _: &str) -> Result<Option<Customer>, StoreError> {
            unreachable!()
        }
        fn customer_of(&self, _: &Identity) -> Result<Option<String>, StoreError> {
            unreachable!()
        }
        fn open_conversation(&self, _: &Identity) -> Result<Option<ConversationId>, StoreError> {
            unreachable!()
        }
        fn conversation(
            &self,
            _: &ConversationId,
        ) -> Result<Option<ConversationRecord>, StoreError> {
            unreachable!()
        }
        fn messages(&self, _: &ConversationId) -> Result<Vec<StoredMessage>, StoreError> {
            unreachable!()
        }
        fn queue_entries(&self) -> Result<Vec<QueueEntry>, StoreError> {
            unreachable!()
        }
        fn assignments(&self) -> Result<Vec<(String, ConversationId)>, StoreError> {
            unreachable!()
        }
        fn conversation_count(&self) -> Result<usize, StoreError> {
            unreachable!()
        }
        fn apply(&self, _: Change) -> Result<(), StoreError> {
            unreachable!()
        }
        fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            Box::pin(async move {
                self.release.acquire().await.expect("open").forget();
                self.flushes.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        }
    }

    fn disk() -> (
        Arc<GroupCommit<SlowDisk>>,
        Arc<AtomicUsize>,
        Arc<tokio::sync::Semaphore>,
    ) {
        let flushes = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let store = GroupCommit::new(SlowDisk {
            flushes: flushes.clone(),
            release: release.clone(),
        });
        (Arc::new(store), flushes, release)
    }

    #[tokio::test]
    async fn waiting_callers_share_one_flush() {
        let (store, flushes, release) = disk();
        let first = tokio::spawn({
            let s = store.clone();
            async move { s.flush().await }
        });
        tokio::task::yield_now().await;
        // 50 more arrive while the first flush is on disk.
        let rest: Vec<_> = (0..50)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { s.flush().await })
            })
            .collect();
        tokio::task::yield_now().await;
        release.add_permits(100);
        first.await.unwrap().unwrap();
        for r in rest {
            r.await.unwrap().unwrap();
        }
        // The first flush, then one for everybody who waited behind it.
        assert_eq!(flushes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_write_after_a_flush_began_is_not_acknowledged_by_it() {
        let (store, flushes, release) = disk();
        let first = tokio::spawn({
            let s = store.clone();
            async move { s.flush().await }
        });
        tokio::task::yield_now().await;
        let second = tokio::spawn({
            let s = store.clone();
            async move { s.flush().await }
        });
        tokio::task::yield_now().await;
        release.add_permits(1);
        first.await.unwrap().unwrap();
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
        assert!(
            !second.is_finished(),
            "the second caller waits for a flush of its own"
        );
        release.add_permits(1);
        second.await.unwrap().unwrap();
        assert_eq!(flushes.load(Ordering::SeqCst), 2);
    }
}
