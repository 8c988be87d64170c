//! What the desk hands out and takes in: a turn's outcome, live events, the console's views
//! of queues, agents and conversations, and the parts a desk is built from.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::dialogue::Dialogue;
use crate::config::{AgentConfig, EngineConfig};
use crate::message::{ChannelKind, ConversationId, Status};
use crate::nlu::{Analysis, NluError};
use crate::policy::{EscalationReason, Rules};
use crate::store::{ConversationRecord, Customer, DeliveryFailure, Store, StoredMessage};

/// Anything that turns a message into an `Analysis` (the NLU service; a script in tests).
pub trait Understand: Send + Sync + 'static {
    fn analyze(&self, text: String) -> BoxFuture<'static, Result<Analysis, NluError>>;
    /// Puts a new set of intents in force for understanding (the real NLU trains or finds
    /// their head while the old one answers); resolves once messages are read with it. A
    /// stand-in that reads no intents (the tests' keyword reader) takes them as they are.
    fn reload_intents(
        &self,
        intents: crate::nlu::IntentSet,
    ) -> BoxFuture<'static, Result<(), NluError>> {
        let _ = intents;
        Box::pin(async { Ok(()) })
    }
}

impl Understand for crate::nlu::NluService {
    fn analyze(&self, text: String) -> BoxFuture<'static, Result<Analysis, NluError>> {
        let service = self.clone();
        Box::pin(async move { service.analyze(text).await })
    }

    fn reload_intents(
        &self,
        intents: crate::nlu::IntentSet,
    ) -> BoxFuture<'static, Result<(), NluError>> {
        let service = self.clone();
        Box::pin(async move { service.reload_intents(intents).await })
    }
}

/// Everything a desk is made of, for callers that build the parts themselves.
pub struct DeskParts {
    pub store: Arc<dyn Store>,
    pub nlu: Arc<dyn Understand>,
    pub dialogue: Dialogue,
    pub rules: Rules,
    pub agents: Vec<AgentConfig>,
    pub engine: EngineConfig,
    /// The optional LLM (`[llm]`): answers what the intents and rules leave to it.
    pub llm: Option<crate::llm::LlmHandle>,
}

/// What `receive` answers: where the conversation stands after this message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Turn {
    pub conversation_id: ConversationId,
    pub status: Status,
    pub replies: Vec<Reply>,
    pub queue: Option<QueueSlot>,
    /// The change that wrote these replies, as their outbox records name it
    /// ([`crate::message::Outbound::turn`]): a widget that shows the turn skips those lines
    /// when the courier brings them (and shows any other). Not stored, not sent.
    #[serde(skip)]
    pub id: Option<String>,
}

/// Two turns are the same answer whatever change wrote them (a repeated message gets the
/// stored one back).
impl PartialEq for Turn {
    fn eq(&self, other: &Turn) -> bool {
        (
            &self.conversation_id,
            self.status,
            &self.replies,
            &self.queue,
        ) == (
            &other.conversation_id,
            other.status,
            &other.replies,
            &other.queue,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueSlot {
    pub name: String,
    /// 1-based.
    pub position: usize,
}

/// Something that happened to a conversation, for live views (widget, console, channels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeskEvent {
    pub conversation_id: ConversationId,
    pub kind: DeskEventKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeskEventKind {
    CustomerMessage {
        text: String,
    },
    BotReply {
        text: String,
    },
    /// The LLM's answer so far, each word checked; replaced by the `BotReply` that ends
    /// it, or withdrawn by `BotDraftCleared`. Never stored.
    BotDraft {
        /// The customer's channel identity (`Identity::key`): the widget of a conversation
        /// that is new in this turn does not know its id yet.
        customer: String,
        text: String,
    },
    /// The draft shown is withdrawn (the conversation left the bot, or the model handed
    /// off).
    BotDraftCleared {
        customer: String,
    },
    AgentReply {
        agent: String,
        display_name: String,
        text: String,
    },
    QueuePosition {
        queue: String,
        position: usize,
    },
    StatusChanged {
        status: Status,
    },
    Queued {
        queue: String,
        priority: i64,
        reasons: Vec<EscalationReason>,
    },
    /// A line for the customer's own screens, brought by the widget's courier from the
    /// outbox ([`crate::message::Outbound`]): the widget shows these, not the `BotReply`
    /// and `AgentReply` events (those are the agents' live view). Sent to the customer's
    /// sockets only.
    Line {
        /// The customer's channel identity (`Identity::key`).
        customer: String,
        /// The agent's display name; `None`: the bot.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        text: String,
        /// When the line was written (a page whose history already holds it skips it).
        time: DateTime<Utc>,
        /// The customer's turn that wrote it ([`Turn::id`]): the page that showed that turn
        /// skips it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        turn: Option<String>,
        /// The same on every delivery of this piece: a repeat after a crash is skipped.
        key: String,
        /// A survey question: the page shows its answers as buttons (`desk/survey.rs`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        survey: Option<crate::message::SurveyAsk>,
    },
    /// A reply could not be delivered on the customer's chat platform, for good.
    DeliveryFailed {
        channel: ChannelKind,
        error: String,
    },
    /// The LLM wrote the conversation's handoff summary (`Conversation::llm_summary`).
    SummaryWritten,
    /// Events of other nodes may have been missed (this node's listener lost its
    /// connection): every live view reads its state again. Goes to every socket; its
    /// conversation id is empty.
    Resync,
}

/// One waiting conversation as the console lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntryView {
    pub conversation_id: ConversationId,
    pub customer: String,
    pub channel: ChannelKind,
    pub priority: i64,
    pub reasons: Vec<EscalationReason>,
    /// Mean negative-sentiment probability of the last 3 customer messages.
    pub sentiment: f32,
    /// The conversation's frustration score (0..1) and its reasons ("third time asking").
    pub frustration: f32,
    pub frustration_reasons: Vec<String>,
    pub waiting_secs: u64,
    pub position: usize,
    /// Waited longer than the SLA, counted in business time (`waiting_business_secs`).
    pub sla_breached: bool,
    /// The part of `waiting_secs` the queue was open: what its SLA counts.
    #[serde(default)]
    pub waiting_business_secs: u64,
    /// The customer left it while the queue was closed (a message for the team): it is
    /// served first at opening.
    #[serde(default)]
    pub left_out_of_hours: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    pub name: String,
    pub description: Option<String>,
    pub sla_secs: u64,
    pub entries: Vec<QueueEntryView>,
    /// Its people work now (a queue without `hours` is always open).
    #[serde(default = "always")]
    pub open: bool,
    /// While closed, its next opening (None while open, or when it never opens).
    #[serde(default)]
    pub opens_at: Option<DateTime<Utc>>,
    /// The time zone of its hours (IANA name), when it has hours.
    #[serde(default)]
    pub timezone: Option<String>,
}

fn always() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub name: String,
    pub display_name: String,
    pub capacity: usize,
    pub active: usize,
    pub conversations: Vec<ConversationId>,
}

/// A conversation with its full transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub customer: String,
    pub tier: Option<String>,
    pub lifetime_value: Option<f64>,
    pub channel: ChannelKind,
    pub channel_user: String,
    pub status: Status,
    pub assigned_agent: Option<String>,
    pub queue: Option<String>,
    pub priority: i64,
    pub messages: Vec<StoredMessage>,
    pub sentiment_trajectory: Vec<f32>,
    pub slots: BTreeMap<String, String>,
    pub escalation: Vec<EscalationReason>,
    /// The conversation's frustration score (0..1) after the latest customer message, and
    /// its reasons.
    pub frustration: f32,
    pub frustration_reasons: Vec<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// Replies the customer's platform refused for good (shown to the agent).
    pub delivery_failures: Vec<DeliveryFailure>,
    /// What an agent reads first: wants, order numbers, mood, why it reached a person.
    pub summary: super::summary::HandoffSummary,
    /// The handoff summary the LLM wrote (`[llm]` on), shown above `summary` when present.
    pub llm_summary: Option<String>,
    /// What the customer answered to the survey after the close (`desk/survey.rs`).
    #[serde(default)]
    pub rating: Rating,
}

/// A conversation's satisfaction answers: CSAT 1-5, NPS 0-10 (`None`: not given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub csat: Option<u8>,
    pub nps: Option<u8>,
}

impl Conversation {
    /// The view of a stored conversation, its transcript and its customer.
    pub(super) fn from_record(
        r: ConversationRecord,
        messages: Vec<StoredMessage>,
        customer: Option<&Customer>,
    ) -> Conversation {
        let summary = super::summary::summarize(&messages, &r.slots, &r.escalation);
        Conversation {
            id: r.id,
            customer: r.customer,
            tier: customer.and_then(|c| c.tier.clone()),
            lifetime_value: customer.and_then(|c| c.lifetime_value),
            channel: r.channel,
            channel_user: r.channel_user,
            status: r.status,
            assigned_agent: r.assigned_agent,
            queue: r.queue,
            priority: r.priority,
            messages,
            sentiment_trajectory: r.sentiment_trajectory,
            slots: r.slots,
            escalation: r.escalation,
            frustration: r.frustration,
            frustration_reasons: r.frustration_reasons,
            created: r.created,
            updated: r.updated,
            delivery_failures: r.delivery_failures,
            summary,
            llm_summary: r.llm_summary,
            rating: Rating {
                csat: r.csat,
                nps: r.nps,
            },
        }
    }
}
