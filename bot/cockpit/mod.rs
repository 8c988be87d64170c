//! The support lead's cockpit. First part: the escalation rules and queues (`rules.toml`)
//! reload while the server runs. A change of the file is checked and, when valid, put in
//! force for the next turn and kept as a version in the store (who, when, what changed);
//! an invalid one is refused with the file, the line and the reason, and the version in
//! force stays. `/health` (`components.rules`) and the console show both. On a store other
//! nodes share, every node puts the newest version in force, whichever node's file made it.
//! Any version can be put back (`rollback`): it becomes the newest version, and the file
//! is written with it, so a restart keeps it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::desk::Desk;
use crate::policy::{Rules, RulesError};
use crate::store::{ConfigVersion, Store, StoreError};

/// How often the rules file (and, on a shared store, the newest version) is looked at.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The kind of the rules file's versions in the store.
pub const RULES: &str = "rules";

/// A change that was not put in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refused {
    pub file: String,
    /// 1-based, when it can be told.
    pub line: Option<usize>,
    pub reason: String,
    pub sha256: String,
    pub at: DateTime<Utc>,
}

/// Where the rules stand on this node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RulesState {
    /// The version in force (its id in the store).
    pub version: Option<u64>,
    pub sha256: Option<String>,
    pub applied_at: Option<DateTime<Utc>>,
    /// The newest change refused since the version in force, if any.
    pub refused: Option<Refused>,
}

#[derive(Debug, thiserror::Error)]
pub enum CockpitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no version {0} of the rules is stored: `frontdesk rules versions` lists them")]
    NoSuchVersion(u64),
    #[error("version {id} of the rules no longer reads as rules ({reason}); it was not put back")]
    Unreadable { id: u64, reason: String },
    #[error("the rules file {path} could not be written: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Lines added and removed from `old` to `new`: "+3 -1".
pub fn summary(old: &str, new: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    format!("+{added} -{removed}")
}

/// A unified diff of two versions' texts, for the console and the CLI.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .header(old_name, new_name)
        .to_string()
}

/// Version `id` of the rules and its unified diff against the version before it.
pub async fn with_diff(
    store: &dyn Store,
    id: u64,
) -> Result<Option<(ConfigVersion, String)>, StoreError> {
    let Some(version) = store.version(RULES, id).await? else {
        return Ok(None);
    };
    let before = match id {
        0 | 1 => None,
        _ => store.version(RULES, id - 1).await?,
    };
    let diff = unified(
        before.as_ref().map_or("", |b| b.text.as_str()),
        &version.text,
        &format!("version {}", id.saturating_sub(1)),
        &format!("version {id}"),
    );
    Ok(Some((version, diff)))
}

/// The live rules of one node: the desk they are in force on, the store of versions, the
/// file. Cheap to clone.
#[derive(Clone)]
pub struct LiveRules {
    desk: Desk,
    store: Arc<dyn Store>,
    path: PathBuf,
    state: Arc<Mutex<RulesState>>,
    /// The file's hash when last read (a change is looked at once).
    file_sha: Arc<Mutex<Option<String>>>,
}

impl LiveRules {
    /// The rules of `desk` (loaded from `path` at start) as version of the store: the
    /// file's text becomes a version unless it is the newest already; on a shared store
    /// whose newest version differs, that one is put in force instead (every node runs the
    /// same version) and the difference is logged.
    pub async fn start(
        desk: Desk,
        store: Arc<dyn Store>,
        path: &Path,
    ) -> Result<LiveRules, CockpitError> {
        let live = LiveRules {
            desk,
            store,
            path: path.to_path_buf(),
            state: Arc::default(),
            file_sha: Arc::default(),
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        *live.file_sha.lock().expect("rules lock") = Some(sha(&text));
        let newest = live.store.versions(RULES, 1).await?.into_iter().next();
        match newest {
            Some(newest) if live.store.shared() && newest.sha256 != sha(&text) => {
                tracing::warn!(version = newest.id, file = %path.display(),
                    "this node's rules file differs from the version in force on the other nodes; that version is used here too (edit the file on one node, or copy it to all)");
                live.put_in_force(&newest)?;
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

    pub fn state(&self) -> RulesState {
        self.state.lock().expect("rules lock").clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `text` as the newest version (or finds it is that already).
    async fn record(&self, text: &str, author: String) -> Result<ConfigVersion, StoreError> {
        let previous = self.store.versions(RULES, 1).await?.into_iter().next();
        self.store
            .add_version(ConfigVersion {
                id: 0,
                kind: RULES.into(),
                text: text.to_string(),
                sha256: sha(text),
                author,
                time: Utc::now(),
                summary: summary(previous.as_ref().map_or("", |p| p.text.as_str()), text),
            })
            .await
    }

    fn mark(&self, version: &ConfigVersion) {
        let mut state = self.state.lock().expect("rules lock");
        state.version = Some(version.id);
        state.sha256 = Some(version.sha256.clone());
        state.applied_at = Some(Utc::now());
        state.refused = None;
    }

    /// Puts a stored version in force here.
    fn put_in_force(&self, version: &ConfigVersion) -> Result<(), CockpitError> {
        let rules =
            Rules::parse(&version.text, &self.path).map_err(|e| CockpitError::Unreadable {
                id: version.id,
                reason: e.reason(),
            })?;
        self.apply(rules, version);
        Ok(())
    }

    /// Puts `rules`, read from `version`, in force here.
    fn apply(&self, rules: Rules, version: &ConfigVersion) {
        self.desk.set_rules(rules);
        self.mark(version);
        crate::metrics::rules_version(version.id);
        tracing::info!(version = version.id, author = %version.author, summary = %version.summary,
            "rules in force");
    }

    /// Looks at the file once (and, on a shared store, at the newest version): what
    /// changed is checked and put in force, or refused. Returns whether the rules in
    /// force changed.
    pub async fn look(&self) -> Result<bool, CockpitError> {
        let mut changed = false;
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => Some(text),
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e,
                    "cannot read the rules file; the rules in force stay");
                None
            }
        };
        if let Some(text) = text {
            let now = sha(&text);
            let new = self
                .file_sha
                .lock()
                .expect("rules lock")
                .replace(now.clone())
                != Some(now.clone());
            let in_force = self.state().sha256.as_deref() == Some(now.as_str());
            if new && in_force {
                // Put back as it was (after a refused edit, say): nothing is refused now.
                self.state.lock().expect("rules lock").refused = None;
            } else if new {
                match Rules::parse(&text, &self.path) {
                    Ok(rules) => {
                        let version = self
                            .record(&text, format!("file on {}", self.store.node()))
                            .await?;
                        self.apply(rules, &version);
                        changed = true;
                    }
                    Err(e) => self.refuse(&e, &text, now),
                }
            }
        }
        if self.store.shared() {
            if let Some(newest) = self.store.versions(RULES, 1).await?.into_iter().next() {
                if self.state().sha256.as_deref() != Some(newest.sha256.as_str()) {
                    self.put_in_force(&newest)?;
                    changed = true;
                }
            }
        }
        Ok(changed)
    }

    fn refuse(&self, error: &RulesError, text: &str, sha256: String) {
        let refused = Refused {
            file: self.path.display().to_string(),
            line: error.line(text),
            reason: error.reason(),
            sha256,
            at: Utc::now(),
        };
        tracing::error!(file = %refused.file, line = refused.line, reason = %refused.reason,
            "rules change refused; the rules in force stay (fix the file: it is read again when it changes)");
        crate::metrics::rules_refused();
        self.state.lock().expect("rules lock").refused = Some(refused);
    }

    /// Puts version `id` back: it becomes the newest version (by `who`), is put in force,
    /// and the file is written with it.
    pub async fn rollback(&self, id: u64, who: &str) -> Result<ConfigVersion, CockpitError> {
        // The file is written by `rollback_in_store`: not a change to take again.
        let version = rollback_in_store(self.store.as_ref(), &self.path, id, who).await?;
        *self.file_sha.lock().expect("rules lock") = Some(version.sha256.clone());
        self.put_in_force(&version)?;
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
                    tracing::warn!(error = %e, "rules reload failed; the rules in force stay");
                }
            }
        });
    }
}

/// Makes a copy of version `id` the newest version (by `who`) and writes it to the rules
/// file at `path`; servers watching the file or the store put it in force. Refused when the
/// version no longer reads as rules (a later binary's checks).
pub async fn rollback_in_store(
    store: &dyn Store,
    path: &Path,
    id: u64,
    who: &str,
) -> Result<ConfigVersion, CockpitError> {
    let old = store
        .version(RULES, id)
        .await?
        .ok_or(CockpitError::NoSuchVersion(id))?;
    Rules::parse(&old.text, path).map_err(|e| CockpitError::Unreadable {
        id,
        reason: e.reason(),
    })?;
    let newest = store.versions(RULES, 1).await?;
    let version = store
        .add_version(ConfigVersion {
            id: 0,
            author: format!("rollback to {id} by {who}"),
            time: Utc::now(),
            summary: summary(newest.first().map_or("", |n| n.text.as_str()), &old.text),
            ..old.clone()
        })
        .await?;
    std::fs::write(path, &version.text).map_err(|source| CockpitError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    store.flush().await?;
    Ok(version)
}
