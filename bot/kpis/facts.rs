//! What one conversation says about the KPIs: when the customer first wrote and who answered
//! first, when it reached a queue and when a person answered, each agent's handling spans,
//! whether the customer came back, the survey answers. Read once from its record and
//! messages, then counted by `figures.rs`.

use chrono::{DateTime, Duration, Utc};

use crate::message::{ChannelKind, Speaker};
use crate::store::{ConversationRecord, MilestoneKind, StoredMessage};

/// Seconds of a queue's business time between two instants (its opening hours; wall time
/// for a queue open around the clock).
pub type BusinessClock<'a> = &'a (dyn Fn(&str, DateTime<Utc>, DateTime<Utc>) -> i64 + Sync);

/// One agent's time with a conversation: from taking it to closing, handing back or losing
/// it. A reopened conversation's second handling is a span of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub agent: String,
    pub secs: i64,
}

/// How a person answered after the first escalation.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonAnswer {
    /// The queue it was escalated to.
    pub queue: String,
    pub escalated_at: DateTime<Utc>,
    /// Wall-clock and business seconds to the first message a person wrote; `None` while
    /// nobody has (or never did).
    pub wall_secs: Option<i64>,
    pub business_secs: Option<i64>,
    /// Business seconds from the escalation to `now` (or to the answer).
    pub business_so_far: i64,
    /// Wall-clock seconds from the escalation to the first claim.
    pub wait_secs: Option<i64>,
}

/// The facts of one conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub id: String,
    pub customer: String,
    pub created: DateTime<Utc>,
    pub channel: ChannelKind,
    /// The intent of the customer's first understood message (what they came for).
    pub intent: Option<String>,
    /// Queues it was escalated to and the rules that sent it there, first escalation first.
    pub queues: Vec<String>,
    pub rules: Vec<String>,
    /// Agents who took it, in order; the last is the one who handled it in the end.
    pub agents: Vec<String>,
    pub escalated: bool,
    /// A person wrote in it or took it.
    pub person: bool,
    /// Seconds (to the millisecond) from the customer's first message to the bot's first
    /// answer after it.
    pub bot_first_response_secs: Option<f64>,
    pub person_answer: Option<PersonAnswer>,
    pub spans: Vec<Span>,
    pub closed_by_agent: bool,
    /// The customer wrote again within the reopen window (same conversation).
    pub reopened: bool,
    /// Time of its last message: the recontact window starts there.
    pub last_activity: DateTime<Utc>,
    pub csat: Option<u8>,
    pub nps: Option<u8>,
    /// Negative-sentiment probability of the first and the last customer message.
    pub sentiment_start: Option<f32>,
    pub sentiment_end: Option<f32>,
}

impl Facts {
    /// Reads `record` and its `messages` (oldest first) as of `now`.
    pub fn read(
        record: &ConversationRecord,
        messages: &[StoredMessage],
        now: DateTime<Utc>,
        business: BusinessClock<'_>,
    ) -> Facts {
        let first_customer = messages.iter().find(|m| m.from == Speaker::Customer);
        let bot_first_response_secs = first_customer.and_then(|c| {
            messages
                .iter()
                .find(|m| m.from == Speaker::Bot && m.time >= c.time)
                .map(|b| (b.time - c.time).num_milliseconds().max(0) as f64 / 1000.0)
        });
        let intent = messages
            .iter()
            .filter(|m| m.from == Speaker::Customer)
            .find_map(|m| m.analysis.as_ref().map(|a| a.intent.clone()));
        let mut queues = Vec::new();
        let mut rules = Vec::new();
        let mut agents: Vec<String> = Vec::new();
        let mut spans = Vec::new();
        let mut open_claim: Option<(String, DateTime<Utc>)> = None;
        let mut first_escalation: Option<(String, DateTime<Utc>)> = None;
        let mut first_claim_after: Option<DateTime<Utc>> = None;
        let mut closed_by_agent = false;
        let mut reopened = false;
        for m in &record.timeline {
            match &m.kind {
                MilestoneKind::Escalated {
                    queue,
                    rules: fired,
                } => {
                    push_new(&mut queues, queue);
                    for r in fired {
                        push_new(&mut rules, r);
                    }
                    if first_escalation.is_none() {
                        first_escalation = Some((queue.clone(), m.at));
                    }
                }
                MilestoneKind::Claimed { agent, .. } => {
                    agents.retain(|a| a != agent);
                    agents.push(agent.clone());
                    if first_escalation.is_some() && first_claim_after.is_none() {
                        first_claim_after = Some(m.at);
                    }
                    open_claim = Some((agent.clone(), m.at));
                }
                MilestoneKind::HandedBack { .. } | MilestoneKind::Requeued { .. } => {
                    end_span(&mut open_claim, &mut spans, m.at);
                }
                MilestoneKind::Closed { by } => {
                    if open_claim.is_some() || by.starts_with("agent:") {
                        closed_by_agent = true;
                    }
                    end_span(&mut open_claim, &mut spans, m.at);
                }
                MilestoneKind::Reopened => reopened = true,
                MilestoneKind::Rated { .. } => {}
            }
        }
        let person_wrote = messages.iter().any(|m| matches!(m.from, Speaker::Agent(_)));
        let person_answer = first_escalation.map(|(queue, at)| {
            let answer = messages
                .iter()
                .find(|m| matches!(m.from, Speaker::Agent(_)) && m.time >= at)
                .map(|m| m.time);
            let business_so_far = business(&queue, at, answer.unwrap_or(now));
            PersonAnswer {
                wall_secs: answer.map(|t| secs(t - at)),
                business_secs: answer.map(|_| business_so_far),
                business_so_far,
                wait_secs: first_claim_after.map(|t| secs(t - at)),
                queue,
                escalated_at: at,
            }
        });
        let trajectory = &record.sentiment_trajectory;
        Facts {
            id: record.id.0.clone(),
            customer: record.customer.clone(),
            created: record.created,
            channel: record.channel,
            intent,
            escalated: !queues.is_empty(),
            person: person_wrote || !agents.is_empty(),
            queues,
            rules,
            agents,
            bot_first_response_secs,
            person_answer,
            spans,
            closed_by_agent,
            reopened,
            last_activity: messages.last().map_or(record.updated, |m| m.time),
            csat: record.csat.filter(|s| (1..=5).contains(s)),
            nps: record.nps.filter(|s| *s <= 10),
            sentiment_start: trajectory.first().copied(),
            sentiment_end: trajectory.last().copied(),
        }
    }

    /// Whether the customer came back within `window` after this conversation's last
    /// message: the same conversation reopened, or another conversation of theirs started
    /// (`others`: every conversation read, this one included).
    pub fn recontacted(&self, others: &[Facts], window: Duration) -> bool {
        self.reopened
            || others.iter().any(|o| {
                o.customer == self.customer
                    && o.id != self.id
                    && o.created > self.last_activity
                    && o.created <= self.last_activity + window
            })
    }
}

fn push_new(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|i| i == item) {
        list.push(item.to_string());
    }
}

fn end_span(open: &mut Option<(String, DateTime<Utc>)>, spans: &mut Vec<Span>, at: DateTime<Utc>) {
    if let Some((agent, from)) = open.take() {
        spans.push(Span {
            agent,
            secs: secs(at - from),
        });
    }
}

fn secs(d: Duration) -> i64 {
    d.num_seconds().max(0)
}
