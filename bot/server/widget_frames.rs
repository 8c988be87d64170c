//! The widget socket's frames (what the page sends, what it gets), the `welcome` that
//! opens a session or answers a resync, and what a page shows already.

use super::AppState;
use crate::desk::QueueSlot;
use crate::message::{ConversationId, Speaker, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum FromPage {
    Hello {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        customer_token: Option<String>,
    },
    Message {
        #[serde(default)]
        id: Option<FrameId>,
        text: String,
    },
    /// Keeps the socket open (see `limits.socket_idle_secs`); no answer.
    Ping,
    /// A click on a survey question's stars (`score`) or its declining button (`skip`).
    Survey {
        conversation_id: String,
        survey: String,
        #[serde(default)]
        score: Option<u8>,
        #[serde(default)]
        skip: bool,
    },
}

/// A survey question as the page shows it: the text, one button per score from `min` to
/// `max`, and the button that declines (`skip`).
#[derive(Serialize)]
pub(super) struct SurveyQuestion {
    pub(super) conversation_id: ConversationId,
    pub(super) survey: crate::message::Survey,
    pub(super) text: String,
    pub(super) min: u8,
    pub(super) max: u8,
    pub(super) skip: String,
}

impl SurveyQuestion {
    pub(super) fn new(
        conversation_id: ConversationId,
        ask: crate::message::SurveyAsk,
        text: String,
    ) -> SurveyQuestion {
        let scores = ask.survey.scores();
        SurveyQuestion {
            conversation_id,
            survey: ask.survey,
            text,
            min: *scores.start(),
            max: *scores.end(),
            skip: ask.skip_label,
        }
    }
}

/// The page's id for a message frame, echoed back on its `turn`, `error` or `slow_down`; a
/// string is also the message's idempotency key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub(super) enum FrameId {
    Number(u64),
    Text(String),
}

#[derive(Serialize)]
pub(super) struct HistoryItem {
    pub(super) from: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) agent: Option<String>,
    pub(super) text: String,
    pub(super) time: DateTime<Utc>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ToPage {
    Welcome {
        token: String,
        user: String,
        conversation_id: Option<ConversationId>,
        status: Option<Status>,
        queue: Option<QueueSlot>,
        history: Vec<HistoryItem>,
        /// The socket is closed after this long without a frame from the page; `None`:
        /// never.
        idle_secs: Option<u64>,
        /// The visitor's survey question still open (after a close), to show again.
        #[serde(skip_serializing_if = "Option::is_none")]
        survey: Option<SurveyQuestion>,
    },
    Turn {
        id: Option<FrameId>,
        conversation_id: ConversationId,
        status: Status,
        replies: Vec<crate::desk::Reply>,
        queue: Option<QueueSlot>,
    },
    Bot {
        text: String,
    },
    /// The bot's answer so far, while the LLM writes it (each word already checked); the
    /// `turn` or `bot` frame that follows replaces it.
    Draft {
        text: String,
    },
    /// The draft shown is withdrawn.
    DraftCleared,
    /// A survey question with its answer buttons.
    Survey(SurveyQuestion),
    /// What became of the page's `survey` answer: `counted` false when the question was
    /// over (answered already, or not this visitor's).
    SurveyAnswered {
        counted: bool,
    },
    Agent {
        agent: String,
        text: String,
    },
    Queue {
        queue: String,
        position: usize,
    },
    Status {
        status: Status,
    },
    Error {
        id: Option<FrameId>,
        message: String,
    },
    /// The message was not handled: the visitor (or the address) sends too fast. The page
    /// shows `message` and sends the same frame again after `retry_after_secs`.
    SlowDown {
        id: Option<FrameId>,
        retry_after_secs: u64,
        message: String,
    },
}

/// Whether a text frame is the page's keep-alive (`{"type":"ping"}`), which shows the page
/// is open but not that anyone is there. Only a short frame can be one: a message is not
/// parsed twice.
pub(super) fn is_ping(text: &str) -> bool {
    text.len() <= 64 && matches!(serde_json::from_str::<FromPage>(text), Ok(FromPage::Ping))
}

/// The first frame of a socket: the conversation so far, and when its newest message was
/// written. (Takes the session's parts: the session itself holds the socket, which may not
/// be shared across an await.)
pub(super) async fn welcome(
    state: &AppState,
    conversation_id: Option<ConversationId>,
    user: String,
    token: String,
) -> (ToPage, Option<DateTime<Utc>>) {
    let conversation = match &conversation_id {
        Some(id) => state.desk.conversation(id).await.ok().flatten(),
        None => None,
    };
    let newest = conversation
        .as_ref()
        .and_then(|c| c.messages.iter().map(|m| m.time).max());
    let (status, queue, history) = match conversation {
        Some(c) => {
            let queue = state.desk.queue_slot(&c).await;
            let history = c
                .messages
                .iter()
                .map(|m| match &m.from {
                    Speaker::Customer => HistoryItem {
                        from: "customer",
                        agent: None,
                        text: m.text.clone(),
                        time: m.time,
                    },
                    Speaker::Bot => HistoryItem {
                        from: "bot",
                        agent: None,
                        text: m.text.clone(),
                        time: m.time,
                    },
                    Speaker::Agent(name) => HistoryItem {
                        from: "agent",
                        agent: Some(
                            state
                                .desk
                                .agent(name)
                                .map(|a| a.display().to_string())
                                .unwrap_or_else(|| name.clone()),
                        ),
                        text: m.text.clone(),
                        time: m.time,
                    },
                })
                .collect();
            (Some(c.status), queue, history)
        }
        None => (None, None, Vec::new()),
    };
    let identity = crate::message::Identity::new(crate::message::ChannelKind::Web, &user);
    let survey = match state.desk.open_survey(&identity).await {
        Ok(open) => open.map(|(id, ask, text)| SurveyQuestion::new(id, ask, text)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the visitor's open survey");
            None
        }
    };
    let frame = ToPage::Welcome {
        token,
        user,
        conversation_id,
        status,
        queue,
        history,
        idle_secs: state.limits.socket_idle().map(|d| d.as_secs()),
        survey,
    };
    (frame, newest)
}

/// What one page shows already: the courier's line for it is skipped. A line of a turn the
/// page showed in its `turn` frame, a line delivered again (a node died before marking it
/// sent), a line the last `welcome`'s history held (it was written before the welcome read
/// the conversation, and delivered after).
#[derive(Default)]
pub(super) struct Shown {
    /// The newest turns shown with a `turn` frame.
    turns: VecDeque<String>,
    /// The keys of the newest lines shown.
    lines: VecDeque<String>,
    /// When the newest message of the last welcome's history was written.
    pub(super) history_until: Option<DateTime<Utc>>,
}

/// How many turns and line keys a page remembers: more than a courier's pass brings late.
const REMEMBERED: usize = 32;

fn remember(list: &mut VecDeque<String>, item: String) {
    if list.len() >= REMEMBERED {
        list.pop_front();
    }
    list.push_back(item);
}

impl Shown {
    /// The page showed turn `id` in its own frame.
    pub(super) fn turn(&mut self, id: String) {
        remember(&mut self.turns, id);
    }

    /// Whether the line (of `turn`, with `key`, written at `time`) is new to the page; it
    /// counts as shown from now on.
    pub(super) fn first_time(
        &mut self,
        turn: Option<String>,
        key: String,
        time: DateTime<Utc>,
    ) -> bool {
        let seen = turn.is_some_and(|t| self.turns.contains(&t))
            || self.lines.contains(&key)
            || self.history_until.is_some_and(|until| time <= until);
        if !seen {
            remember(&mut self.lines, key);
        }
        !seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_shown_once_whichever_way_the_page_had_it() {
        let now = Utc::now();
        let mut shown = Shown::default();
        shown.turn("t1".into());
        assert!(!shown.first_time(Some("t1".into()), "k1".into(), now));
        assert!(shown.first_time(Some("t2".into()), "k2".into(), now));
        assert!(!shown.first_time(None, "k2".into(), now), "delivered again");
        shown.history_until = Some(now);
        let before = now - chrono::Duration::milliseconds(1);
        assert!(
            !shown.first_time(None, "k3".into(), before),
            "in the history"
        );
        let after = now + chrono::Duration::milliseconds(1);
        assert!(shown.first_time(None, "k4".into(), after));
    }

    #[test]
    fn a_page_remembers_a_bounded_number_of_lines() {
        let mut shown = Shown::default();
        let now = Utc::now();
        for i in 0..1_000 {
            assert!(shown.first_time(None, format!("k{i}"), now));
        }
        assert_eq!(shown.lines.len(), REMEMBERED);
        assert!(
            shown.first_time(None, "k0".into(), now),
            "forgotten long ago"
        );
        assert!(!shown.first_time(None, "k999".into(), now));
    }
}
