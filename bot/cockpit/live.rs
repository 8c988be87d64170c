//! One watched [`Source`] on one node: its text on disk is looked at every
//! [`WATCH_EVERY`]; a change is checked and put in force, then kept as the newest version in
//! the store (who, when, what changed), or refused with its file, line and reason while the
//! version in force stays. On a store other nodes share, every node puts the newest version
//! in force, whichever node made it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;

use super::source::{Problem, Source};
use super::{sha, summary, CockpitError, ConfigState, Refused, WATCH_EVERY};
use crate::store::{ConfigVersion, Store, StoreError};

/// A watched source of one node. Cheap to clone.
#[derive(Clone)]
pub struct Live {
    source: Arc<dyn Source>,
    store: Arc<dyn Store>,
    state: Arc<Mutex<ConfigState>>,
    /// The text's hash when last read (a change is looked at once).
    seen: Arc<Mutex<Option<String>>>,
    /// Held while a text is being put in force (an intents change trains a head), so
    /// two changes are never put in force at once.
    busy: Arc<tokio::sync::Mutex<()>>,
}

impl Live {
    /// The source as loaded at start (the server read the same text): it becomes a
    /// version unless it is the newest already. On a shared store whose newest version
    /// differs, that version is put in force here instead (every node runs the same one)
    /// and the difference is logged.
    pub async fn start(
        source: Arc<dyn Source>,
        store: Arc<dyn Store>,
    ) -> Result<Live, CockpitError> {
        let live = Live {
            source,
            store,
            state: Arc::default(),
            seen: Arc::default(),
            busy: Arc::default(),
        };
        let text = live.source.read().unwrap_or_default();
        *live.seen.lock().expect("cockpit lock") = Some(sha(&text));
        let kind = live.kind();
        let newest = live.store.versions(kind, 1).await?.into_iter().next();
        match newest {
            Some(newest) if live.store.shared() && newest.sha256 != sha(&text) => {
                tracing::warn!(kind, version = newest.id, place = %live.source.place().display(),
                    "this node's copy differs from the version in force on the other nodes; that version is used here too (edit it on one node, or copy it to all)");
                live.put_in_force(&newest).await?;
            }
            _ => {
                let version = live
                    .record(&text, format!("start of {}", live.store.node()))
                    .await?;
                live.mark(&version);
            }
        }
        Ok(live)
    }

    pub fn kind(&self) -> &'static str {
        self.source.kind()
    }

    pub fn state(&self) -> ConfigState {
        self.state.lock().expect("cockpit lock").clone()
    }

    pub fn place(&self) -> &Path {
        self.source.place()
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// Stores `text` as the newest version (or finds it is that already).
    async fn record(&self, text: &str, author: String) -> Result<ConfigVersion, StoreError> {
        let previous = self
            .store
            .versions(self.kind(), 1)
            .await?
            .into_iter()
            .next();
        self.store
            .add_version(ConfigVersion {
                id: 0,
                kind: self.kind().into(),
                text: text.to_string(),
                sha256: sha(text),
                author,
                time: Utc::now(),
                summary: summary(previous.as_ref().map_or("", |p| p.text.as_str()), text),
            })
            .await
    }

    fn mark(&self, version: &ConfigVersion) {
        let mut state = self.state.lock().expect("cockpit lock");
        state.version = Some(version.id);
        state.sha256 = Some(version.sha256.clone());
        state.applied_at = Some(Utc::now());
        state.refused = None;
        drop(state);
        crate::metrics::config_version(self.kind(), version.id);
        tracing::info!(kind = self.kind(), version = version.id, author = %version.author,
            summary = %version.summary, "configuration in force");
    }

    /// Puts a stored version in force here.
    async fn put_in_force(&self, version: &ConfigVersion) -> Result<(), CockpitError> {
        let _busy = self.busy.lock().await;
        self.source
            .put_in_force(&version.text)
            .await
            .map_err(|p| CockpitError::Unreadable {
                kind: self.kind(),
                id: version.id,
                reason: p.to_string(),
            })?;
        self.mark(version);
        Ok(())
    }

    /// Looks at the text on disk once (and, on a shared store, at the newest version):
    /// what changed is checked and put in force, or refused. Returns whether what is in
    /// force changed.
    pub async fn look(&self) -> Result<bool, CockpitError> {
        let mut changed = false;
        let text = match self.source.read() {
            Ok(text) => Some(text),
            Err(e) => {
                tracing::warn!(kind = self.kind(), place = %self.place().display(), error = %e,
                    "cannot read it; the version in force stays");
                None
            }
        };
        if let Some(text) = text {
            let now = sha(&text);
            let new =
                self.seen.lock().expect("cockpit lock").replace(now.clone()) != Some(now.clone());
            let in_force = self.state().sha256.as_deref() == Some(now.as_str());
            if new && in_force {
                // Put back as it was (after a refused edit, say): nothing is refused now.
                self.state.lock().expect("cockpit lock").refused = None;
            } else if new {
                let _busy = self.busy.lock().await;
                match self.source.put_in_force(&text).await {
                    Ok(()) => {
                        let version = self
                            .record(&text, format!("file on {}", self.store.node()))
                            .await?;
                        self.mark(&version);
                        changed = true;
                    }
                    Err(problem) => self.refuse(problem, now),
                }
            }
        }
        if self.store.shared() {
            if let Some(newest) = self
                .store
                .versions(self.kind(), 1)
                .await?
                .into_iter()
                .next()
            {
                if self.state().sha256.as_deref() != Some(newest.sha256.as_str()) {
                    self.put_in_force(&newest).await?;
                    changed = true;
                }
            }
        }
        Ok(changed)
    }

    fn refuse(&self, problem: Problem, sha256: String) {
        tracing::error!(kind = self.kind(), file = %problem.file, line = problem.line,
            reason = %problem.reason,
            "change refused; the version in force stays (fix it: it is read again when it changes)");
        crate::metrics::config_refused(self.kind());
        self.state.lock().expect("cockpit lock").refused = Some(Refused {
            file: problem.file,
            line: problem.line,
            reason: problem.reason,
            sha256,
            at: Utc::now(),
        });
    }

    /// A lead's edit (the console): `text` is checked, written to disk and put in force
    /// as the newest version, by `who`. A text that does not pass is refused with its
    /// problem and nothing is written.
    pub async fn edit(&self, text: &str, who: &str) -> Result<ConfigVersion, CockpitError> {
        self.source.check(text).map_err(CockpitError::Refused)?;
        let _busy = self.busy.lock().await;
        // Written first, so nothing is in force that a restart would lose; put back as it
        // was when it cannot be put in force (an intent head that cannot be trained).
        let before = self.source.read().ok();
        let write = |t: &str| {
            self.source.write(t).map_err(|source| CockpitError::Write {
                path: self.place().to_path_buf(),
                source,
            })
        };
        write(text)?;
        *self.seen.lock().expect("cockpit lock") = Some(sha(text));
        if let Err(problem) = self.source.put_in_force(text).await {
            if let Some(before) = before {
                write(&before)?;
                *self.seen.lock().expect("cockpit lock") = Some(sha(&before));
            }
            return Err(CockpitError::Refused(problem));
        }
        let version = self.record(text, format!("edit by {who}")).await?;
        self.store.flush().await?;
        self.mark(&version);
        Ok(version)
    }

    /// Puts version `id` back: it becomes the newest version (by `who`), is put in force,
    /// and is written to disk.
    pub async fn rollback(&self, id: u64, who: &str) -> Result<ConfigVersion, CockpitError> {
        // What is written is not a change to take again.
        let version =
            super::rollback_in_store(self.store.as_ref(), self.source.as_ref(), id, who).await?;
        *self.seen.lock().expect("cockpit lock") = Some(version.sha256.clone());
        self.put_in_force(&version).await?;
        Ok(version)
    }

    /// Looks every [`WATCH_EVERY`] until `stopping` turns true.
    pub fn watch(&self, mut stopping: tokio::sync::watch::Receiver<bool>) {
        let live = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(WATCH_EVERY) => {}
                    _ = stopping.changed() => if *stopping.borrow() { return },
                }
                if let Err(e) = live.look().await {
                    tracing::warn!(kind = live.kind(), error = %e,
                        "reload failed; the version in force stays");
                }
            }
        });
    }
}
