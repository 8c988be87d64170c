//! The unanswered inbox: the customers' messages the bot could not answer, grouped by what
//! they are about, so a lead sees the largest gaps first and turns a group into a new
//! intent or a help-centre article draft (`drafts.rs`).
//!
//! A customer message is unanswered ([`unanswered_in`], read from the stored transcript):
//! - [`Failure::OutOfScope`]: the intent head put it out of scope and the bot's reply was
//!   its cannot-help answer (`_out_of_scope.yaml`'s, or the built-in one), so the help
//!   centre had no passage good enough either;
//! - [`Failure::LlmDeclined`]: with `[llm]` on, the model handed it off (the bot said
//!   `copy::llm_handoff`), or the question never reached the model or got nothing usable
//!   from it (its gate, `llm.min_passage_score`, let it through to the cannot-help answer);
//! - [`Failure::RepeatedFailure`]: the conversation went to a person by a `repeated_failure`
//!   rule; its customer messages that made the run (the last `count` written by the time it
//!   joined its queue, and before an agent wrote) are kept.
//!
//! Grouping ([`group`]) is pure and deterministic: messages that read the same once case
//! and spaces are normalised count once among the examples but fully in the count; the
//! different texts' sentence embeddings (the local encoder, behind [`Embed`]) are clustered
//! bottom-up with average linkage, merging while two clusters' mean cosine is at least
//! [`SIMILAR`]. Examples are ordered by closeness to their group's centroid (most central
//! first); groups by size. The whole read is bounded ([`MAX_CONVERSATIONS`],
//! [`MESSAGES_PER_CONVERSATION`], [`MAX_MESSAGES`]): at most [`MAX_MESSAGES`]² similarities.

pub mod drafts;
mod grouping;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;

use crate::desk::copy;
use crate::message::Speaker;
use crate::nlu::{NluError, OUT_OF_SCOPE};
use crate::policy::EscalationReason;
use crate::store::{Store, StoreError, StoredMessage};
pub use grouping::{distinct, group, Distinct, Group};

/// Two clusters merge while the mean cosine between their texts' embeddings is at least
/// this. Chosen with all-MiniLM-L6-v2 on the fixture `data/unanswered/threshold.txt` (47
/// questions on 9 subjects, written for it; no test uses them): pairwise F1 of "same group"
/// against "same subject" is best, 0.929 (precision 0.939, recall 0.920, 10 groups), from
/// 0.24 to 0.28; this is the middle. 0.30 gives 0.913, 0.35 0.809, 0.20 0.810 (subjects
/// merge). The measurement: `cargo test --release -p frontdesk --test model
/// unanswered_threshold -- --ignored --nocapture`.
pub const SIMILAR: f32 = 0.26;
/// Conversations read, newest changed first.
pub const MAX_CONVERSATIONS: usize = 1000;
/// The newest messages read of each conversation.
pub const MESSAGES_PER_CONVERSATION: usize = 200;
/// Unanswered messages kept, newest conversations first.
pub const MAX_MESSAGES: usize = 2000;
/// Examples a group shows.
pub const EXAMPLES: usize = 5;
/// How the bot's reply quoting the help centre begins (`crate::kb::Hit::answer_text`).
pub const HELP_CENTRE_REPLY: &str = "From our help centre — ";
/// The `when` of the escalation rules that fire on turns the bot could not resolve.
pub const REPEATED_FAILURE: &str = "repeated_failure";

/// Why a message counts as unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    OutOfScope,
    LlmDeclined,
    RepeatedFailure,
}

/// One customer message the bot could not answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Unanswered {
    pub text: String,
    pub time: DateTime<Utc>,
    pub kinds: BTreeSet<Failure>,
}

/// The bot's replies that say it could not help, to tell them from answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Replies {
    /// The cannot-help answers (the intents folder's out-of-scope answer, the built-in one).
    pub cannot_help: Vec<String>,
    /// The model's hand-off sentence.
    pub llm_handoff: String,
    /// `[llm]` is on: a reply that is none of these may be the model's answer.
    pub llm: bool,
}

impl Replies {
    /// The built-in sentences, plus `out_of_scope_answer` (`_out_of_scope.yaml`'s) when the
    /// intents folder has one.
    pub fn new(out_of_scope_answer: Option<String>, llm: bool) -> Replies {
        let mut cannot_help = vec![copy::out_of_scope()];
        cannot_help.extend(out_of_scope_answer.filter(|t| !t.trim().is_empty()));
        Replies {
            cannot_help,
            llm_handoff: copy::llm_handoff(),
            llm,
        }
    }
}

/// Case and runs of white space folded: texts equal under it are one example.
pub fn normalise(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The unanswered customer messages of one conversation, written at or after `since`: its
/// messages oldest first, its escalation reasons and when it joined its queue
/// (`ConversationRecord::escalation`, `queued_since`).
pub fn unanswered_in(
    messages: &[StoredMessage],
    escalation: &[EscalationReason],
    queued_since: Option<DateTime<Utc>>,
    replies: &Replies,
    since: DateTime<Utc>,
) -> Vec<Unanswered> {
    let run = repeated_failure_run(messages, escalation, queued_since);
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if m.from != Speaker::Customer || m.time < since {
            continue;
        }
        let mut kinds = BTreeSet::new();
        if run.contains(&i) {
            kinds.insert(Failure::RepeatedFailure);
        }
        let out_of_scope = m
            .analysis
            .as_ref()
            .is_some_and(|a| a.intent == OUT_OF_SCOPE);
        if let Some(reply) = reply_to(messages, i).filter(|_| out_of_scope) {
            if reply.contains(&replies.llm_handoff) {
                kinds.insert(Failure::LlmDeclined);
            } else if !reply.starts_with(HELP_CENTRE_REPLY)
                && replies
                    .cannot_help
                    .iter()
                    .any(|c| reply.contains(c.as_str()))
            {
                kinds.insert(Failure::OutOfScope);
                if replies.llm {
                    kinds.insert(Failure::LlmDeclined);
                }
            }
        }
        if !kinds.is_empty() {
            out.push(Unanswered {
                text: m.text.clone(),
                time: m.time,
                kinds,
            });
        }
    }
    out
}

/// The bot's first reply after message `i`, before the customer wrote again.
fn reply_to(messages: &[StoredMessage], i: usize) -> Option<&str> {
    messages[i + 1..]
        .iter()
        .take_while(|m| m.from != Speaker::Customer)
        .find(|m| m.from == Speaker::Bot)
        .map(|m| m.text.as_str())
}

/// The indices of the customer messages behind a `repeated_failure` escalation: the last
/// `count` (the unresolved turns observed when it fired) written by the time the
/// conversation joined its queue and before an agent first wrote.
fn repeated_failure_run(
    messages: &[StoredMessage],
    escalation: &[EscalationReason],
    queued_since: Option<DateTime<Utc>>,
) -> BTreeSet<usize> {
    let Some(reason) = escalation.iter().find(|r| r.when == REPEATED_FAILURE) else {
        return BTreeSet::new();
    };
    let count = reason.value.as_u64().unwrap_or(u64::MAX) as usize;
    let bots_part = messages
        .iter()
        .position(|m| matches!(m.from, Speaker::Agent(_)))
        .unwrap_or(messages.len());
    let customers: Vec<usize> = (0..bots_part)
        .filter(|&i| messages[i].from == Speaker::Customer)
        .filter(|&i| queued_since.is_none_or(|q| messages[i].time <= q))
        .collect();
    customers[customers.len().saturating_sub(count)..]
        .iter()
        .copied()
        .collect()
}

/// Sentence embeddings of `texts`, L2-normalised, in input order: the local encoder in the
/// product, known vectors in tests.
pub trait Embed: Send + Sync {
    fn embed<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<Vec<f32>>, NluError>>;
}

/// The help centre's encoder (the NLU's, in the product).
impl Embed for crate::kb::HelpCentre {
    fn embed<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<Vec<f32>>, NluError>> {
        Box::pin(self.embed_texts(texts))
    }
}

/// Why the inbox could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("embedding the unanswered messages failed: {0}")]
    Embed(#[from] NluError),
    #[error("the encoder gave {got} embeddings for {asked} texts")]
    Embeddings { asked: usize, got: usize },
    #[error("grouping the unanswered messages stopped: {0}")]
    Panicked(String),
}

/// The unanswered messages read, grouped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inbox {
    /// Largest first.
    pub groups: Vec<Group>,
    /// Unanswered messages read (at most [`MAX_MESSAGES`]).
    pub read: usize,
    /// Conversations read (at most [`MAX_CONVERSATIONS`]).
    pub conversations: usize,
}

/// The unanswered messages of the conversations changed since `since`, newest first,
/// within the bounds; and how many conversations were read.
pub async fn read(
    store: &dyn Store,
    since: DateTime<Utc>,
    replies: &Replies,
) -> Result<(Vec<Unanswered>, usize), StoreError> {
    let conversations = store.conversations_since(since, MAX_CONVERSATIONS).await?;
    let mut out = Vec::new();
    for c in &conversations {
        let messages = store
            .recent_messages(&c.id, MESSAGES_PER_CONVERSATION)
            .await?;
        let mut found = unanswered_in(&messages, &c.escalation, c.queued_since, replies, since);
        found.truncate(MAX_MESSAGES - out.len());
        out.extend(found);
        if out.len() >= MAX_MESSAGES {
            break;
        }
    }
    Ok((out, conversations.len()))
}

/// The inbox since `since`: read, embedded with `embed`, grouped at [`SIMILAR`].
pub async fn inbox(
    store: &dyn Store,
    since: DateTime<Utc>,
    replies: &Replies,
    embed: &dyn Embed,
) -> Result<Inbox, InboxError> {
    let (messages, conversations) = read(store, since, replies).await?;
    let items = distinct(&messages);
    let texts: Vec<String> = items.iter().map(|d| d.text.clone()).collect();
    let vectors = embed.embed(&texts).await?;
    if vectors.len() != texts.len() {
        return Err(InboxError::Embeddings {
            asked: texts.len(),
            got: vectors.len(),
        });
    }
    // Up to MAX_MESSAGES² products: off the async threads.
    let groups = tokio::task::spawn_blocking(move || group(&items, &vectors, SIMILAR))
        .await
        .map_err(|e| InboxError::Panicked(e.to_string()))?;
    Ok(Inbox {
        groups,
        read: messages.len(),
        conversations,
    })
}

#[cfg(test)]
mod tests;
