//! What-if on real history: the same conversations replayed under a baseline (the rules or
//! intents in force) and a change, and what differs: which conversations would now escalate
//! or not, to which queue and by which rule, the change in each queue's load by hour of day,
//! and how the conversations agents labelled (feedback marks) fare under each. The input is
//! a recorded file or the store's own conversations ([`from_store`]); the command is
//! `frontdesk replay --baseline` (`cli/replay.rs`), the console's is the lead's what-if.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Timelike, Utc};
use futures::future::BoxFuture;
use serde::Serialize;

use super::{Outcome, Recorded, RecordedProfile};
use crate::desk::Understand;
use crate::message::{Speaker, Status};
use crate::nlu::{Analysis, IntentSet, NluError};
use crate::store::{MarkKind, Store, StoreError};

/// What the conversations read from the store carry besides their messages.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub records: Vec<Recorded>,
    /// Conversation -> hour of day (0..24, UTC) of its first customer message.
    pub hours: HashMap<String, u32>,
    /// Conversation -> what the agents' marks say: escalate (needed) or not.
    pub labels: HashMap<String, bool>,
}

/// The store's conversations changed since `since` (at most `limit`, newest first), those
/// that sat in `queue` only when one is given: their customer messages in order, with the
/// customer's tier and value, the hour they started, and the agents' marks.
pub async fn from_store(
    store: &dyn Store,
    since: DateTime<Utc>,
    queue: Option<&str>,
    limit: usize,
) -> Result<History, StoreError> {
    let mut history = History::default();
    for record in store.conversations_since(since, limit).await? {
        if queue.is_some_and(|q| record.queue.as_deref() != Some(q)) {
            continue;
        }
        let customer = store.customer(&record.customer).await?;
        let profile = customer.as_ref().map(|c| RecordedProfile {
            tier: c.tier.clone(),
            lifetime_value: c.lifetime_value,
            customer_id: c.shop_customer_id.clone(),
        });
        let id = record.id.0.clone();
        let mut first = None;
        for m in store.messages(&record.id).await? {
            if m.from != Speaker::Customer {
                continue;
            }
            first.get_or_insert(m.time);
            history.records.push(Recorded {
                conversation: id.clone(),
                user_id: record.channel_user.clone(),
                text: m.text,
                profile: profile.clone(),
                expected: None,
                why: None,
            });
        }
        if let Some(t) = first {
            history.hours.insert(id.clone(), t.hour());
        }
        // The newest escalation mark of each agent; a conversation is labelled when they agree.
        let marks: Vec<bool> = record
            .feedback
            .iter()
            .filter(|m| m.mark.is_escalation())
            .map(|m| m.mark == MarkKind::Needed)
            .collect();
        if let Some(&first_mark) = marks.first() {
            if marks.iter().all(|&m| m == first_mark) {
                history.labels.insert(id, first_mark);
            }
        }
    }
    Ok(history)
}

/// Labels carried by a recorded file (`"expected": "escalate" | "bot"`).
pub fn labels_of(records: &[Recorded]) -> HashMap<String, bool> {
    records
        .iter()
        .filter_map(|r| {
            let e = r.expected.as_deref()?;
            Some((r.conversation.clone(), e == "escalate"))
        })
        .collect()
}

/// One conversation whose fate differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed {
    pub conversation: String,
    /// `newly_escalated`, `no_longer_escalated` or `other_queue`.
    pub change: &'static str,
    pub before_queue: Option<String>,
    pub after_queue: Option<String>,
    /// The rules that fired, before and after.
    pub before_rules: Vec<String>,
    pub after_rules: Vec<String>,
    /// The agents' label, when there is one: escalate (`true`) or not.
    pub label: Option<bool>,
    /// The first customer message, to recognise it by.
    pub first_message: String,
}

/// How the labelled conversations fare under one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LabelScore {
    pub labelled: usize,
    pub right: usize,
    /// Escalated though the label says the bot could go on.
    pub false_escalations: usize,
    /// Left with the bot though the label says a person was needed.
    pub missed: usize,
}

/// The difference between a baseline and a change over the same conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WhatIf {
    pub conversations: usize,
    pub escalated_before: usize,
    pub escalated_after: usize,
    pub changed: Vec<Changed>,
    /// Queue -> escalations per hour of day (24 values), before and after.
    pub load_before: BTreeMap<String, Vec<usize>>,
    pub load_after: BTreeMap<String, Vec<usize>>,
    pub labels_before: LabelScore,
    pub labels_after: LabelScore,
}

fn escalated(o: &Outcome) -> bool {
    o.status != Status::Bot
}

fn rules_of(o: &Outcome) -> Vec<String> {
    let mut r: Vec<String> = o.reasons.iter().map(|r| r.rule.clone()).collect();
    r.dedup();
    r
}

fn score(outcomes: &[Outcome], labels: &HashMap<String, bool>) -> LabelScore {
    let mut s = LabelScore::default();
    for o in outcomes {
        let Some(&wanted) = labels.get(&o.conversation) else {
            continue;
        };
        s.labelled += 1;
        match (wanted, escalated(o)) {
            (true, true) | (false, false) => s.right += 1,
            (false, true) => s.false_escalations += 1,
            (true, false) => s.missed += 1,
        }
    }
    s
}

fn load(outcomes: &[Outcome], hours: &HashMap<String, u32>) -> BTreeMap<String, Vec<usize>> {
    let mut load: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| escalated(o)) {
        let queue = o.queue.clone().unwrap_or_else(|| "(none)".into());
        let hour = hours.get(&o.conversation).copied().unwrap_or(0) as usize % 24;
        load.entry(queue).or_insert_with(|| vec![0; 24])[hour] += 1;
    }
    load
}

/// Compares the outcomes of the same conversations under a baseline and a change (both in
/// the records' order of first appearance).
pub fn compare(
    records: &[Recorded],
    before: &[Outcome],
    after: &[Outcome],
    hours: &HashMap<String, u32>,
    labels: &HashMap<String, bool>,
) -> WhatIf {
    let first: HashMap<&str, &str> = records
        .iter()
        .rev()
        .map(|r| (r.conversation.as_str(), r.text.as_str()))
        .collect();
    let after_by: HashMap<&str, &Outcome> =
        after.iter().map(|o| (o.conversation.as_str(), o)).collect();
    let mut changed = Vec::new();
    for b in before {
        let Some(a) = after_by.get(b.conversation.as_str()) else {
            continue;
        };
        let change = match (escalated(b), escalated(a)) {
            (false, true) => "newly_escalated",
            (true, false) => "no_longer_escalated",
            (true, true) if b.queue != a.queue => "other_queue",
            _ => continue,
        };
        changed.push(Changed {
            conversation: b.conversation.clone(),
            change,
            before_queue: b.queue.clone(),
            after_queue: a.queue.clone(),
            before_rules: rules_of(b),
            after_rules: rules_of(a),
            label: labels.get(&b.conversation).copied(),
            first_message: first
                .get(b.conversation.as_str())
                .map(|t| t.to_string())
                .unwrap_or_default(),
        });
    }
    WhatIf {
        conversations: before.len(),
        escalated_before: before.iter().filter(|o| escalated(o)).count(),
        escalated_after: after.iter().filter(|o| escalated(o)).count(),
        changed,
        load_before: load(before, hours),
        load_after: load(after, hours),
        labels_before: score(before, labels),
        labels_after: score(after, labels),
    }
}

impl WhatIf {
    /// The change for a terminal: counts, then each changed conversation.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} conversations: escalated {} before, {} after ({:+})\n",
            self.conversations,
            self.escalated_before,
            self.escalated_after,
            self.escalated_after as i64 - self.escalated_before as i64
        );
        let (b, a) = (self.labels_before, self.labels_after);
        if b.labelled > 0 {
            out.push_str(&format!(
                "labelled by agents: {} — right {} -> {}, false escalations {} -> {}, missed {} -> {}\n",
                b.labelled, b.right, a.right, b.false_escalations, a.false_escalations, b.missed, a.missed
            ));
        }
        for (queue, before_n, after_n) in self.queue_totals() {
            out.push_str(&format!("  queue {queue}: {before_n} -> {after_n}\n"));
        }
        for c in &self.changed {
            let side = |q: &Option<String>, r: &[String]| match q {
                Some(q) => format!("{q} ({})", r.join(", ")),
                None => "bot".to_string(),
            };
            let label = match c.label {
                Some(true) => "  [label: escalate]",
                Some(false) => "  [label: bot]",
                None => "",
            };
            out.push_str(&format!(
                "  {:<20} {}: {} -> {}{label}\n      {:?}\n",
                c.change,
                c.conversation,
                side(&c.before_queue, &c.before_rules),
                side(&c.after_queue, &c.after_rules),
                c.first_message
            ));
        }
        out
    }

    /// (queue, escalations before, after) for every queue either side uses.
    pub fn queue_totals(&self) -> Vec<(String, usize, usize)> {
        let mut queues: Vec<&String> = self
            .load_before
            .keys()
            .chain(self.load_after.keys())
            .collect();
        queues.sort();
        queues.dedup();
        let sum =
            |m: &BTreeMap<String, Vec<usize>>, q: &str| m.get(q).map_or(0, |v| v.iter().sum());
        queues
            .into_iter()
            .map(|q| {
                (
                    q.clone(),
                    sum(&self.load_before, q),
                    sum(&self.load_after, q),
                )
            })
            .collect()
    }
}

/// An NLU that reads each distinct text once for both sides of a what-if (the rules
/// change; the understanding of a message does not).
pub struct Remembering {
    inner: Arc<dyn Understand>,
    seen: Arc<Mutex<HashMap<String, Analysis>>>,
}

impl Remembering {
    pub fn new(inner: Arc<dyn Understand>) -> Arc<Remembering> {
        Arc::new(Remembering {
            inner,
            seen: Arc::default(),
        })
    }
}

impl Understand for Remembering {
    fn analyze(&self, text: String) -> BoxFuture<'static, Result<Analysis, NluError>> {
        if let Some(a) = self.seen.lock().expect("what-if lock").get(&text) {
            let a = a.clone();
            return Box::pin(async move { Ok(a) });
        }
        let inner = self.inner.analyze(text.clone());
        let seen = self.seen.clone();
        Box::pin(async move {
            let a = inner.await?;
            seen.lock().expect("what-if lock").insert(text, a.clone());
            Ok(a)
        })
    }

    fn reload_intents(&self, intents: IntentSet) -> BoxFuture<'static, Result<(), NluError>> {
        self.inner.reload_intents(intents)
    }
}

/// One side of a what-if: the rules, the NLU and (when not the configured ones) the
/// intents folder whose answers it gives.
pub struct Side {
    pub rules: crate::policy::Rules,
    pub nlu: Arc<dyn Understand>,
    pub intents_dir: Option<std::path::PathBuf>,
}

/// Builds the desk one side replays on (a temporary store; `app::desk_maker`).
pub type DeskMaker = Arc<dyn Fn(Side) -> Result<crate::desk::Desk, String> + Send + Sync>;

/// Replays `history` under `before` and `after`, each on a desk `make` builds, and compares.
/// `progress` is called once per replayed message (twice the messages in all).
pub async fn what_if(
    make: &DeskMaker,
    before: Side,
    after: Side,
    history: &History,
    progress: &(dyn Fn() + Sync),
) -> Result<WhatIf, super::ReplayError> {
    let mut outcomes = Vec::new();
    for side in [before, after] {
        let desk = make(side).map_err(super::ReplayError::Desk)?;
        outcomes.push(super::replay(&desk, history.records.clone(), progress).await?);
    }
    Ok(compare(
        &history.records,
        &outcomes[0],
        &outcomes[1],
        &history.hours,
        &history.labels,
    ))
}

#[cfg(test)]
#[path = "whatif_tests.rs"]
mod tests;
