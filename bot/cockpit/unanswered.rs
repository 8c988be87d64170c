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

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::desk::copy;
use crate::message::Speaker;
use crate::nlu::{NluError, OUT_OF_SCOPE};
use crate::policy::EscalationReason;
use crate::store::{Store, StoreError, StoredMessage};

/// Two texts whose embeddings have at least this cosine similarity are neighbours. Chosen
/// with all-MiniLM-L6-v2 on the fixture `data/unanswered/threshold.txt` (groups of
/// questions written for it; see that file for the measurement): between its
/// 0.99-quantile across groups and its median within groups.
pub const SIMILAR: f32 = 0.5;
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

/// Messages the bot could not answer that are about the same thing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Stable for the same members: a hash of their normalised texts, sorted.
    pub id: String,
    /// Messages, near-duplicates included.
    pub count: usize,
    /// Up to [`EXAMPLES`] different texts, most central first.
    pub examples: Vec<String>,
    pub kinds: Vec<Failure>,
    pub last_seen: DateTime<Utc>,
    /// Every different text, most central first (the new intent's examples).
    #[serde(skip)]
    pub texts: Vec<String>,
}

/// Messages that read the same once normalised ([`normalise`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Distinct {
    pub key: String,
    /// The newest wording, its spaces folded.
    pub text: String,
    pub count: usize,
    pub last_seen: DateTime<Utc>,
    pub kinds: BTreeSet<Failure>,
}

/// Folds near-duplicates; ordered by normalised text, so the input's order does not matter.
pub fn distinct(messages: &[Unanswered]) -> Vec<Distinct> {
    let mut by_key: BTreeMap<String, Distinct> = BTreeMap::new();
    for m in messages {
        let key = normalise(&m.text);
        if key.is_empty() {
            continue;
        }
        let text = m.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let d = by_key.entry(key.clone()).or_insert_with(|| Distinct {
            key,
            text: text.clone(),
            count: 0,
            last_seen: m.time,
            kinds: BTreeSet::new(),
        });
        d.count += 1;
        if m.time > d.last_seen || (m.time == d.last_seen && text < d.text) {
            d.last_seen = m.time;
            d.text = text;
        }
        d.kinds.extend(m.kinds.iter().copied());
    }
    by_key.into_values().collect()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter().map(|x| x / n).collect()
    } else {
        v.to_vec()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Groups `items` (from [`distinct`]) whose embeddings are `vectors` (same order, same
/// length) at cosine `similar` ([`average_linkage`]); largest groups first.
pub fn group(items: &[Distinct], vectors: &[Vec<f32>], similar: f32) -> Vec<Group> {
    let n = items.len().min(vectors.len());
    let units: Vec<Vec<f32>> = vectors[..n].iter().map(|v| unit(v)).collect();
    let mut groups: Vec<Group> = average_linkage(&units, similar)
        .into_iter()
        .map(|members| make_group(items, &units, members))
        .collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.id.cmp(&b.id))
    });
    groups
}

/// Agglomerative clustering with average linkage: the two clusters whose texts are the
/// most similar on average (mean cosine over every pair across them) merge, again and
/// again, while that mean is at least `similar`. Ties go to the lowest indices, so the same
/// input always gives the same clusters. Each row's best partner is cached; a merge can
/// only lower the similarity to the merged cluster (a weighted mean of the two), so a
/// cached best that named either of them is an upper bound, refreshed only when it comes
/// out on top.
fn average_linkage(units: &[Vec<f32>], similar: f32) -> Vec<Vec<usize>> {
    let n = units.len();
    let mut sim = vec![0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let c = dot(&units[i], &units[j]);
            sim[i * n + j] = c;
            sim[j * n + i] = c;
        }
    }
    let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let mut active = vec![true; n];
    let best_of = |sim: &[f32], active: &[bool], i: usize| {
        (0..n)
            .filter(|&k| k != i && active[k])
            .map(|k| (sim[i * n + k], k))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
    };
    let mut best: Vec<Option<(f32, usize)>> = (0..n).map(|i| best_of(&sim, &active, i)).collect();
    let mut stale = vec![false; n];
    loop {
        let top = (0..n)
            .filter_map(|i| best[i].filter(|_| active[i]).map(|b| (i, b)))
            .max_by(|a, b| (a.1).0.total_cmp(&(b.1).0).then(b.0.cmp(&a.0)));
        let Some((row, (value, other))) = top else {
            break;
        };
        if stale[row] {
            best[row] = best_of(&sim, &active, row);
            stale[row] = false;
            continue;
        }
        if value < similar {
            break;
        }
        let (i, j) = (row.min(other), row.max(other));
        let (ni, nj) = (members[i].len() as f32, members[j].len() as f32);
        for k in (0..n).filter(|&k| active[k] && k != i && k != j) {
            let v = (ni * sim[i * n + k] + nj * sim[j * n + k]) / (ni + nj);
            sim[i * n + k] = v;
            sim[k * n + i] = v;
        }
        let moved = std::mem::take(&mut members[j]);
        members[i].extend(moved);
        active[j] = false;
        best[j] = None;
        best[i] = best_of(&sim, &active, i);
        stale[i] = false;
        for k in (0..n).filter(|&k| active[k] && k != i) {
            match best[k] {
                Some((_, b)) if b == i || b == j => stale[k] = true,
                Some((v, b)) => {
                    let c = sim[k * n + i];
                    if c > v || (c == v && i < b) {
                        best[k] = Some((c, i));
                    }
                }
                None => best[k] = Some((sim[k * n + i], i)),
            }
        }
    }
    members.into_iter().filter(|m| !m.is_empty()).collect()
}

fn make_group(items: &[Distinct], units: &[Vec<f32>], mut members: Vec<usize>) -> Group {
    let width = units.first().map_or(0, Vec::len);
    let mut centroid = vec![0f32; width];
    for &m in &members {
        for (c, x) in centroid.iter_mut().zip(&units[m]) {
            *c += x * items[m].count as f32;
        }
    }
    let centroid = unit(&centroid);
    members.sort_by(|&a, &b| {
        dot(&units[b], &centroid)
            .total_cmp(&dot(&units[a], &centroid))
            .then(items[a].key.cmp(&items[b].key))
    });
    let mut keys: Vec<&str> = members.iter().map(|&m| items[m].key.as_str()).collect();
    keys.sort_unstable();
    let id = hex::encode(&Sha256::digest(keys.join("\n").as_bytes())[..6]);
    let texts: Vec<String> = members.iter().map(|&m| items[m].text.clone()).collect();
    Group {
        id,
        count: members.iter().map(|&m| items[m].count).sum(),
        examples: texts.iter().take(EXAMPLES).cloned().collect(),
        kinds: members
            .iter()
            .flat_map(|&m| items[m].kinds.iter().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        last_seen: members
            .iter()
            .map(|&m| items[m].last_seen)
            .max()
            .unwrap_or_default(),
        texts,
    }
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
