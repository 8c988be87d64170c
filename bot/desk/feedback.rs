//! Agents' feedback on a conversation: its escalation was needed or not, or a bot answer was
//! wrong. A mark is kept on the conversation's record (`ConversationRecord::feedback`) with
//! an audit line, in one store change, under the conversation's lock: a turn running at the
//! same moment cannot write the record back without it.
//!
//! Who may mark: a lead or an admin, any conversation; an agent, a conversation that waits in
//! a queue (they may claim it), that is theirs now, or that they took part in (they wrote in
//! it, or its transcript shows them joining). The console shows every agent the queues and
//! their own conversations: what they could judge.
//!
//! A later mark by the same agent replaces theirs: one escalation mark per agent, and one
//! wrong-answer mark per agent and bot message.

use chrono::Utc;

use super::copy;
use super::error::DeskError;
use super::inner::Inner;
use crate::config::AgentConfig;
use crate::message::{ConversationId, Speaker, Status};
use crate::store::{AuditLine, Change, ConversationRecord, Mark, MarkKind, StoredMessage};

/// Longest reason an agent may give, in characters.
pub const MAX_REASON_CHARS: usize = 300;

/// Most marks one conversation keeps (agents × answers marked wrong stays far below).
pub const MAX_MARKS: usize = 64;

/// `agent` marks conversation `id`; returns the conversation's marks after it.
pub(super) async fn mark(
    inner: &Inner,
    agent: &str,
    id: &ConversationId,
    kind: MarkKind,
    reason: Option<&str>,
    message: Option<u64>,
) -> Result<Vec<Mark>, DeskError> {
    let who = inner
        .agents
        .get(agent)
        .ok_or_else(|| DeskError::Forbidden(format!("{agent} is not an agent of this desk")))?;
    let reason = clean_reason(reason)?;
    if kind.is_escalation() && message.is_some() {
        return Err(DeskError::Invalid(
            "`message` names a bot answer: send it with \"mark\": \"wrong_answer\" only".into(),
        ));
    }
    let first = inner
        .store
        .conversation(id)
        .await?
        .ok_or(DeskError::NotFound)?;
    let _guard = inner.lock_customer(&first.identity().key()).await?;
    let mut record = inner
        .store
        .conversation(id)
        .await?
        .ok_or(DeskError::NotFound)?;
    let messages = inner.store.messages(id).await?;
    may_mark(who, &record, &messages)?;
    let mut new = Mark {
        by: agent.to_string(),
        at: Utc::now(),
        mark: kind,
        reason,
        escalation: Vec::new(),
        message: None,
        intent: None,
    };
    if kind.is_escalation() {
        if record.escalation.is_empty() {
            return Err(DeskError::Conflict(
                "this conversation never went to a person: only an escalated conversation is \
                 marked needed or not needed (a wrong bot answer is marked wrong_answer)"
                    .into(),
            ));
        }
        new.escalation = record.escalation.clone();
    } else {
        let index = match message {
            Some(i) => check_bot_message(&messages, i)?,
            None => latest_answer(&record, &messages).ok_or_else(|| {
                DeskError::Conflict("the bot has not answered in this conversation".into())
            })?,
        };
        new.message = Some(index);
        new.intent = answered_intent(&messages, index as usize);
    }
    record.feedback.retain(|m| !replaced_by(m, &new));
    if record.feedback.len() >= MAX_MARKS {
        return Err(DeskError::Conflict(format!(
            "this conversation already holds {MAX_MARKS} marks: no more are kept"
        )));
    }
    let action = match new.message {
        Some(i) => format!("feedback: {} (message {i})", kind.as_str()),
        None => format!("feedback: {}", kind.as_str()),
    };
    record.feedback.push(new);
    let marks = record.feedback.clone();
    let change = Change {
        audit: vec![AuditLine {
            time: Utc::now(),
            action,
            subject: crate::store::subject_hash(&record.customer),
            actor: format!("agent:{agent}"),
        }],
        conversations: vec![record],
        ..Change::default()
    };
    inner.store.apply(change).await?;
    inner.store.flush().await?;
    tracing::info!(agent, conversation = %id, mark = kind.as_str(), "conversation marked");
    Ok(marks)
}

/// The reason as kept: trimmed, one line, at most [`MAX_REASON_CHARS`]; blank is none.
fn clean_reason(reason: Option<&str>) -> Result<Option<String>, DeskError> {
    let Some(text) = reason.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let chars = text.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(DeskError::Invalid(format!(
            "the reason has {chars} characters; keep it under {MAX_REASON_CHARS} (a short \
             line the lead reads beside the figures)"
        )));
    }
    // control characters (new lines included) and the marks that reorder text on screen
    let reorders =
        |c: char| matches!(c as u32, 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069);
    let hidden = |c: char| c.is_control() || reorders(c);
    if text.chars().any(hidden) {
        return Err(DeskError::Invalid(
            "the reason may not hold control characters or new lines: write it as one line \
             of plain text"
                .into(),
        ));
    }
    Ok(Some(text.to_string()))
}

/// Whether `agent` may mark this conversation (see the module's comment).
fn may_mark(
    agent: &AgentConfig,
    record: &ConversationRecord,
    messages: &[StoredMessage],
) -> Result<(), DeskError> {
    let name = agent.name.as_str();
    let joined = copy::agent_joined(agent.display());
    let took_part = messages.iter().any(|m| match &m.from {
        Speaker::Agent(a) => a == name,
        Speaker::Bot => m.text == joined,
        Speaker::Customer => false,
    });
    if agent.is_lead()
        || record.status == Status::Queued
        || record.assigned_agent.as_deref() == Some(name)
        || took_part
    {
        return Ok(());
    }
    Err(DeskError::Forbidden(match &record.assigned_agent {
        Some(owner) => format!("the conversation is with {owner}: they, or a lead, may mark it"),
        None => "only the agents who handled this conversation, or a lead, may mark it".into(),
    }))
}

/// `index` if it is one of the bot's messages.
fn check_bot_message(messages: &[StoredMessage], index: u64) -> Result<u64, DeskError> {
    match messages.get(index as usize) {
        Some(m) if m.from == Speaker::Bot => Ok(index),
        Some(_) => Err(DeskError::Invalid(format!(
            "message {index} is not the bot's: give the index of a bot answer"
        ))),
        None => Err(DeskError::Invalid(format!(
            "there is no message {index}: the conversation has {} (counted from 0)",
            messages.len()
        ))),
    }
}

/// The bot's latest answer: its latest message written before the conversation last joined a
/// queue (after that come the queue's and the agents' notices), else its latest message.
fn latest_answer(record: &ConversationRecord, messages: &[StoredMessage]) -> Option<u64> {
    let before = record.queued_since;
    messages
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, m)| m.from == Speaker::Bot)
        .find(|(_, m)| before.is_none_or(|t| m.time < t))
        .map(|(i, _)| i as u64)
}

/// The intent of the customer message the bot message at `index` answered.
fn answered_intent(messages: &[StoredMessage], index: usize) -> Option<String> {
    messages[..index.min(messages.len())]
        .iter()
        .rev()
        .find(|m| m.from == Speaker::Customer)
        .and_then(|m| m.analysis.as_ref())
        .map(|a| a.intent.clone())
}

/// Whether `old` gives way to `new`: the same agent's escalation mark, or their mark of the
/// same bot message.
fn replaced_by(old: &Mark, new: &Mark) -> bool {
    old.by == new.by
        && match (old.mark.is_escalation(), new.mark.is_escalation()) {
            (true, true) => true,
            (false, false) => old.message == new.message,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(from: Speaker, text: &str, minute: i64) -> StoredMessage {
        StoredMessage {
            from,
            text: text.into(),
            time: chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(minute),
            analysis: None,
        }
    }

    #[test]
    fn a_reason_is_one_bounded_line() {
        assert_eq!(clean_reason(Some("  ")).unwrap(), None);
        assert_eq!(
            clean_reason(Some(" just asking ")).unwrap().as_deref(),
            Some("just asking")
        );
        assert!(clean_reason(Some(&"x".repeat(MAX_REASON_CHARS + 1))).is_err());
        assert!(clean_reason(Some("two\nlines")).is_err());
        assert!(clean_reason(Some("bell\u{7}")).is_err());
        assert!(clean_reason(Some("evil \u{202e}txt.exe")).is_err());
    }

    #[test]
    fn the_latest_answer_comes_before_the_queue_notices() {
        let record: ConversationRecord = serde_json::from_value(serde_json::json!({
            "id": "c", "customer": "c1", "channel": "rest", "channel_user": "u",
            "status": "with_agent", "assigned_agent": "ana", "queue": "general",
            "priority": 0, "message_count": 5, "sentiment_trajectory": [], "slots": {},
            "pending": null, "offered_human": false, "unresolved_turns": 0, "escalation": [],
            "queued_since": chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(3),
            "created": chrono::DateTime::UNIX_EPOCH, "updated": chrono::DateTime::UNIX_EPOCH,
            "last_customer_at": chrono::DateTime::UNIX_EPOCH, "last_agent_at": null
        }))
        .unwrap();
        let messages = vec![
            said(Speaker::Customer, "where is 12345", 1),
            said(Speaker::Bot, "it is in Leeds", 1),
            said(Speaker::Customer, "a person please", 3),
            said(Speaker::Bot, "you are number 1", 3),
            said(
                Speaker::Bot,
                "Ana from our team has joined the conversation.",
                4,
            ),
        ];
        assert_eq!(latest_answer(&record, &messages), Some(1));
        assert!(check_bot_message(&messages, 0).is_err());
        assert!(check_bot_message(&messages, 9).is_err());
        assert_eq!(check_bot_message(&messages, 3).unwrap(), 3);
    }
}
