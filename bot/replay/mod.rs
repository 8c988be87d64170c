//! Replaying recorded customer messages through the full desk (NLU, policy, routine
//! answers, queues) on a temporary store, so a support lead sees what a rule change does
//! before deploying it. The command around it is `frontdesk replay` (`cli/replay.rs`).
//!
//! Input, one object per line: `{"conversation", "user_id", "text"}` and optionally
//! `"profile": {"tier", "lifetime_value", "customer_id"}` (the shop's customer id makes the
//! conversation a verified one, who may hear about their own orders; labelled files for `eval escalation` add
//! `"expected"` and `"why"`, which replay ignores). Output, one [`Outcome`] per conversation in order
//! of first appearance, and a [`Summary`].

//!
//! `whatif.rs`: the same conversations under a baseline and a change, and what differs
//! (as a page: `evaluation::report::whatif_page`). The desks they run on are built by the composition
//! root (`app::temporary_desk`, `app::desk_maker`).

pub mod day;
pub mod whatif;

use crate::desk::{Desk, DeskError};
use crate::message::{ChannelKind, Inbound, Profile, Status};
use crate::policy::EscalationReason;
use crate::store::StoreError;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read replay file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected {{\"conversation\", \"user_id\", \"text\"}} (and optional \"profile\"): {source}")]
    Line {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("conversation {conversation}, message {text:?}: {source}")]
    Turn {
        conversation: String,
        text: String,
        #[source]
        source: DeskError,
    },
    #[error("a temporary store for the replay: {0}")]
    Store(#[from] StoreError),
    /// The desk to replay on could not be built (its intents, shop or rules).
    #[error("the desk to replay on: {0}")]
    Desk(String),
}

/// One recorded customer message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    pub conversation: String,
    pub user_id: String,
    pub text: String,
    #[serde(default)]
    pub profile: Option<RecordedProfile>,
    /// A label for `frontdesk eval escalation` (`"escalate"` or `"bot"`); replay ignores it.
    #[serde(default)]
    pub expected: Option<String>,
    /// The label's category ("sarcasm", "vip routine"), for per-category recall.
    #[serde(default)]
    pub why: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedProfile {
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub lifetime_value: Option<f64>,
    /// The shop's customer id, as a shop-signed token would vouch for it.
    #[serde(default)]
    pub customer_id: Option<String>,
}

/// What became of one recorded conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub conversation: String,
    pub status: Status,
    pub queue: Option<String>,
    pub reasons: Vec<EscalationReason>,
    pub replies: Vec<String>,
}

/// Counts for the summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub conversations: usize,
    pub messages: usize,
    pub answered: usize,
    pub escalated: usize,
    /// Escalated conversations per fired rule.
    pub by_reason: BTreeMap<String, usize>,
}

impl Summary {
    pub fn of(outcomes: &[Outcome], messages: usize) -> Summary {
        let mut s = Summary {
            conversations: outcomes.len(),
            messages,
            ..Default::default()
        };
        for o in outcomes {
            if o.status == Status::Bot {
                s.answered += 1;
            } else {
                s.escalated += 1;
                let mut rules: Vec<&str> = o.reasons.iter().map(|r| r.rule.as_str()).collect();
                rules.dedup();
                for r in rules {
                    *s.by_reason.entry(r.to_string()).or_default() += 1;
                }
            }
        }
        s
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "replayed {} messages in {} conversations: answered by the bot {}, escalated {}\n",
            self.messages, self.conversations, self.answered, self.escalated
        );
        for (rule, n) in &self.by_reason {
            out.push_str(&format!("  {n:>5}  {rule}\n"));
        }
        out
    }
}

impl Recorded {
    /// The message as a REST customer sends it (with `text`, the recorded one or another),
    /// from one identity per recorded conversation, even when a user has several.
    pub fn inbound(&self, text: &str) -> Inbound {
        let user = format!("{}/{}", self.user_id, self.conversation);
        let mut msg = Inbound::new(ChannelKind::Rest, user, text);
        if let Some(p) = &self.profile {
            msg.profile = Some(Profile {
                tier: p.tier.clone(),
                lifetime_value: p.lifetime_value,
                customer_id: p.customer_id.clone(),
                ..Default::default()
            });
        }
        msg
    }
}

/// Reads a replay file; a bad line is an error naming its line number.
pub fn read_records(path: &Path) -> Result<Vec<Recorded>, ReplayError> {
    let read = |source| ReplayError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut records = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(read)?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Recorded = serde_json::from_str(&line).map_err(|source| ReplayError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        records.push(r);
    }
    Ok(records)
}

/// Runs the records through `desk`: conversations in parallel, each one's messages in order.
/// `progress` is called once per handled message.
pub async fn replay(
    desk: &Desk,
    records: Vec<Recorded>,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<Outcome>, ReplayError> {
    let mut order: Vec<String> = Vec::new();
    let mut by_conversation: BTreeMap<String, Vec<Recorded>> = BTreeMap::new();
    for r in records {
        if !by_conversation.contains_key(&r.conversation) {
            order.push(r.conversation.clone());
        }
        by_conversation
            .entry(r.conversation.clone())
            .or_default()
            .push(r);
    }
    let runs = order.into_iter().map(|name| {
        let messages = by_conversation.remove(&name).unwrap_or_default();
        async move {
            let mut replies = Vec::new();
            let mut last = None;
            for m in messages {
                let msg = m.inbound(&m.text);
                let turn = desk
                    .receive(msg)
                    .await
                    .map_err(|source| ReplayError::Turn {
                        conversation: name.clone(),
                        text: m.text.clone(),
                        source,
                    })?;
                replies.extend(turn.replies.into_iter().map(|r| r.text));
                last = Some(turn.conversation_id);
                progress();
            }
            let record = match &last {
                Some(id) => desk
                    .conversation(id)
                    .await
                    .map_err(|source| ReplayError::Turn {
                        conversation: name.clone(),
                        text: String::new(),
                        source,
                    })?,
                None => None,
            };
            Ok::<_, ReplayError>(Outcome {
                conversation: name,
                status: record.as_ref().map_or(Status::Bot, |c| c.status),
                queue: record
                    .as_ref()
                    .filter(|c| c.status != Status::Bot)
                    .and_then(|c| c.queue.clone()),
                reasons: record.map(|c| c.escalation).unwrap_or_default(),
                replies,
            })
        }
    });
    // Enough conversations at once for the NLU to batch; results keep the input order.
    futures::stream::iter(runs)
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}
