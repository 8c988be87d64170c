//! The widget socket's frames (what the page sends, what it gets) and the `welcome` that
//! opens a session or answers a resync.

use super::AppState;
use crate::desk::QueueSlot;
use crate::message::{ConversationId, Speaker, Status};
use serde::{Deserialize, Serialize};

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
    pub(super) time: chrono::DateTime<chrono::Utc>,
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

/// The first frame of a socket: the conversation so far. (Takes the session's parts:
/// the session itself holds the socket, which may not be shared across an await.)
pub(super) async fn welcome(
    state: &AppState,
    conversation_id: Option<ConversationId>,
    user: String,
    token: String,
) -> ToPage {
    let conversation = match &conversation_id {
        Some(id) => state.desk.conversation(id).await.ok().flatten(),
        None => None,
    };
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
    ToPage::Welcome {
        token,
        user,
        conversation_id,
        status,
        queue,
        history,
        idle_secs: state.limits.socket_idle().map(|d| d.as_secs()),
    }
}
