//! The support lead's cockpit: what a lead changes takes effect while the server runs, is
//! kept, and can be put back.
//!
//! - `source.rs`: [`Source`], one kind of configuration (read, check, put in force, write),
//!   and folders as one text. `sources.rs`: the rules file, the intents folder (their head
//!   retrained in the background), the canned replies, the prompts, the help centre.
//! - `live.rs`: [`Live`], one source watched on one node: a change is checked and put in
//!   force within seconds and kept as a version in the store (who, when, what changed), or
//!   refused with its file, line and reason while the version in force stays. `/health`
//!   (`components.config`) and the console show both. On a store other nodes share, every
//!   node puts the newest version in force. Any version can be put back ([`Live::rollback`]).
//! - [`Cockpit`] (here): the sources a server watches, by kind.
//! - `unanswered.rs`: what the bot could not answer, grouped for the lead.

pub mod feedback;
mod live;
pub mod source;
pub mod sources;
pub mod unanswered;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use feedback::{parse_since, BadSince};
pub use live::Live;
pub use source::{Problem, Source};
pub use sources::{
    CannedSource, HelpCentreSource, IntentsSource, PromptsSource, RulesSource, CANNED, HELP_CENTRE,
    INTENTS, PROMPTS, RULES,
};

use crate::store::{ConfigVersion, Store, StoreError};

/// How often each source (and, on a shared store, the newest version) is looked at.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

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

/// Where one kind of configuration stands on this node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConfigState {
    /// The version in force (its id in the store).
    pub version: Option<u64>,
    pub sha256: Option<String>,
    pub applied_at: Option<DateTime<Utc>>,
    /// The newest change refused since the version in force, if any.
    pub refused: Option<Refused>,
}

/// The rules' state went by this name first.
pub type RulesState = ConfigState;

#[derive(Debug, thiserror::Error)]
pub enum CockpitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no version {id} of the {kind} is stored: the console's history (or `frontdesk rules versions`) lists them")]
    NoSuchVersion { kind: &'static str, id: u64 },
    #[error(
        "version {id} of the {kind} no longer passes the checks ({reason}); it was not put back"
    )]
    Unreadable {
        kind: &'static str,
        id: u64,
        reason: String,
    },
    #[error("refused, nothing changed: {0}")]
    Refused(Problem),
    #[error("{path} could not be written: {source}")]
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

/// Version `id` of `kind` and its unified diff against the version before it.
pub async fn with_diff(
    store: &dyn Store,
    kind: &str,
    id: u64,
) -> Result<Option<(ConfigVersion, String)>, StoreError> {
    let Some(version) = store.version(kind, id).await? else {
        return Ok(None);
    };
    let before = match id {
        0 | 1 => None,
        _ => store.version(kind, id - 1).await?,
    };
    let diff = unified(
        before.as_ref().map_or("", |b| b.text.as_str()),
        &version.text,
        &format!("version {}", id.saturating_sub(1)),
        &format!("version {id}"),
    );
    Ok(Some((version, diff)))
}

/// Makes a copy of version `id` of the source's kind the newest version (by `who`) and
/// writes it to the source's file or folder; servers watching it or the store put it in
/// force. Refused when the version no longer passes the checks (a later binary's).
pub async fn rollback_in_store(
    store: &dyn Store,
    source: &dyn Source,
    id: u64,
    who: &str,
) -> Result<ConfigVersion, CockpitError> {
    let kind = source.kind();
    let old = store
        .version(kind, id)
        .await?
        .ok_or(CockpitError::NoSuchVersion { kind, id })?;
    source
        .check(&old.text)
        .map_err(|p| CockpitError::Unreadable {
            kind,
            id,
            reason: p.to_string(),
        })?;
    let newest = store.versions(kind, 1).await?;
    let version = store
        .add_version(ConfigVersion {
            id: 0,
            author: format!("rollback to {id} by {who}"),
            time: Utc::now(),
            summary: summary(newest.first().map_or("", |n| n.text.as_str()), &old.text),
            ..old.clone()
        })
        .await?;
    source
        .write(&version.text)
        .map_err(|e| CockpitError::Write {
            path: source.place().to_path_buf(),
            source: e,
        })?;
    store.flush().await?;
    Ok(version)
}

/// The sources a server watches, by kind (the rules and the intents always; the canned
/// replies, prompts and help centre when the config names a file or folder of the lead's).
#[derive(Clone, Default)]
pub struct Cockpit {
    live: BTreeMap<&'static str, Live>,
    /// Kinds that run built-in text (not a file of the lead's): shown, not written.
    built_in: Vec<&'static str>,
}

impl Cockpit {
    /// Starts watching each source until `stopping` turns true; `built_in` lists the kinds
    /// whose text is the binary's own (a rollback or an edit is refused for them).
    pub async fn start(
        sources: Vec<Arc<dyn Source>>,
        built_in: Vec<&'static str>,
        store: Arc<dyn Store>,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Cockpit, CockpitError> {
        let mut live = BTreeMap::new();
        for source in sources {
            let one = Live::start(source, store.clone()).await?;
            one.watch(stopping.clone());
            live.insert(one.kind(), one);
        }
        Ok(Cockpit { live, built_in })
    }

    /// The watched source of `kind`.
    pub fn get(&self, kind: &str) -> Option<&Live> {
        self.live.get(kind)
    }

    /// Every watched source, by kind.
    pub fn all(&self) -> impl Iterator<Item = &Live> {
        self.live.values()
    }

    /// Whether `kind` runs the binary's built-in text.
    pub fn is_built_in(&self, kind: &str) -> bool {
        self.built_in.contains(&kind)
    }

    /// The state of `kind` (default when it is not watched).
    pub fn state(&self, kind: &str) -> ConfigState {
        self.get(kind).map(Live::state).unwrap_or_default()
    }
}
