//! The records the store keeps: customers, conversations, messages, queue entries, link
//! codes, API keys, sessions, audit lines, and the `Change` one event writes.

use crate::message::{ChannelKind, ConversationId, Identity, Outbound, Speaker, Status};
use crate::nlu::Analysis;
use crate::policy::EscalationReason;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A person, whatever channels they write from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub tier: Option<String>,
    pub lifetime_value: Option<f64>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The shop's id for this customer, when the shop told us.
    pub shop_customer_id: Option<String>,
    pub identities: Vec<Identity>,
    pub created: DateTime<Utc>,
    /// Conversations this customer has started, this one included (the frustration score
    /// counts earlier contacts). Customers stored before it existed read as 0.
    #[serde(default)]
    pub conversations: u32,
    /// Set by an agent: the customer's messages are refused (not stored, not read by the
    /// NLU, never queued) until an agent unblocks them.
    #[serde(default)]
    pub blocked: Option<Block>,
    /// The identities that proved `shop_customer_id` themselves (a token the shop signed,
    /// a trusted integration's profile). Only their conversations speak about the shop
    /// customer's orders: an identity filed here by `/link` proves it again first.
    #[serde(default)]
    pub shop_verified: Vec<Identity>,
    /// The shop's notices to this customer (`crate::notices`): their choices and what was
    /// sent lately (for the daily cap).
    #[serde(default)]
    pub notices: NoticeState,
}

/// A customer's notices from the shop: whether they want them, and when the last ones went
/// out (the per-customer cap counts these).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoticeState {
    /// They said "stop notices": no service notice (delay, shipped, refund) is sent.
    #[serde(default)]
    pub opted_out: bool,
    /// They said "offers on": promotional notices (back in stock) may be sent. Off unless
    /// they asked.
    #[serde(default)]
    pub offers: bool,
    /// When notices were sent (or held for the end of quiet hours) lately, oldest first;
    /// only the last day is kept.
    #[serde(default)]
    pub sent: Vec<DateTime<Utc>>,
}

/// Who blocked a customer, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// One message of a conversation, with what the NLU made of it (customer messages only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub from: Speaker,
    pub text: String,
    pub time: DateTime<Utc>,
    pub analysis: Option<Analysis>,
}

/// The slot the bot asked for and is waiting to hear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSlot {
    pub intent: String,
    pub slot: String,
}

/// A conversation without its messages (those are stored one key each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub id: ConversationId,
    /// The network address a widget visitor last wrote from (anonymous chats are capped per
    /// address in the queues).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<std::net::IpAddr>,
    /// It waits (or waited) in a queue as an anonymous customer (`QueueEntry::anonymous`).
    #[serde(default)]
    pub anonymous_in_queue: bool,
    pub customer: String,
    pub channel: ChannelKind,
    pub channel_user: String,
    pub status: Status,
    pub assigned_agent: Option<String>,
    /// The queue it waits in, or last waited in.
    pub queue: Option<String>,
    pub priority: i64,
    pub message_count: u64,
    /// Negative-sentiment probability of each customer message, oldest first.
    pub sentiment_trajectory: Vec<f32>,
    pub slots: BTreeMap<String, String>,
    pub pending: Option<PendingSlot>,
    /// The bot offered a human on its last answer; a "yes" takes it up.
    pub offered_human: bool,
    /// Customer turns in a row the bot could not resolve (out of scope, unknown order...);
    /// an answered turn starts the count again.
    pub unresolved_turns: u32,
    pub escalation: Vec<EscalationReason>,
    /// When it joined its current queue; kept when an idle agent loses it, so it does not
    /// lose its place.
    pub queued_since: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// When the customer last wrote, and when an agent last acted (claim or reply).
    pub last_customer_at: DateTime<Utc>,
    pub last_agent_at: Option<DateTime<Utc>>,
    /// Replies a chat platform refused for good (bot blocked, chat gone), oldest first.
    #[serde(default)]
    pub delivery_failures: Vec<DeliveryFailure>,
    /// The conversation's frustration after the customer's latest message (0..1,
    /// `desk/frustration.rs`) and its reasons ("third time asking", "all caps").
    #[serde(default)]
    pub frustration: f32,
    #[serde(default)]
    pub frustration_reasons: Vec<String>,
    /// The customer has already asked after a late parcel here: a second mild "still not
    /// here" after the bot's answer is read with its tone (`desk/rules.rs`).
    #[serde(default)]
    pub late_parcel_raised: bool,
    /// Who the customer is known to be, and the order actions waiting for a yes
    /// (`desk/dialogue.rs`).
    #[serde(default)]
    pub access: Access,
    /// The handoff summary the LLM wrote for the agents (`[llm]` on), once it has.
    #[serde(default)]
    pub llm_summary: Option<String>,
    /// What agents said of it: its escalation needed or not, a bot answer wrong
    /// (`desk/feedback.rs`); at most one escalation mark per agent, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feedback: Vec<Mark>,
    /// What happened to it and when (escalated, claimed, handed back, closed, reopened,
    /// rated), oldest first, at most [`TIMELINE_KEPT`]: what the KPIs are computed from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Milestone>,
    /// The customer's answers to the satisfaction survey after it closed: CSAT 1-5, NPS 0-10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csat: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nps: Option<u8>,
}

/// Milestones kept per conversation; the oldest go first (a conversation reopened hundreds
/// of times keeps its latest story).
pub const TIMELINE_KEPT: usize = 200;

/// One step in a conversation's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: MilestoneKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MilestoneKind {
    /// It joined `queue` because of `rules` (the rule names that fired).
    Escalated { queue: String, rules: Vec<String> },
    /// An agent took it (`auto`: given by auto-assignment rather than claimed).
    Claimed {
        agent: String,
        #[serde(default)]
        auto: bool,
    },
    /// The agent gave it back to the bot.
    HandedBack { agent: String },
    /// Back in its queue from an agent (idle, went away).
    Requeued { agent: String },
    /// Closed by `by` (`agent:NAME`, `blocked:NAME`, `idle`).
    Closed { by: String },
    /// The customer wrote again within the reopen window.
    Reopened,
    /// A survey answer: `survey` is `csat` or `nps`.
    Rated { survey: String, score: u8 },
}

/// How sure the desk is of who writes in a conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityLevel {
    /// Nobody vouched for them: the bot tells them nothing about any order.
    #[default]
    Anonymous,
    /// A shop-signed customer token, a platform identity the shop vouched for, or the
    /// bot's own check (email or postcode of one order).
    Verified,
    /// A person from the team checked who they are.
    AgentVerified,
}

/// The conversation's identity level and what the bot is waiting to hear about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Access {
    #[serde(default)]
    pub level: IdentityLevel,
    /// The shop's customer id the conversation is verified as (token or agent).
    #[serde(default)]
    pub shop_customer_id: Option<String>,
    /// Orders the bot's check (email or postcode) covered.
    #[serde(default)]
    pub verified_orders: Vec<String>,
    /// Wrong answers to the bot's check so far in this conversation.
    #[serde(default)]
    pub failed_checks: u32,
    /// The order the bot asked the email or postcode of, and the intent to answer then.
    #[serde(default)]
    pub checking: Option<PendingCheck>,
    /// An action restated to the customer, done only on a yes.
    #[serde(default)]
    pub pending_action: Option<PendingAction>,
}

/// The bot asked for the email or postcode of `order` to answer `intent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCheck {
    pub intent: String,
    pub order: String,
}

/// An order action waiting for the customer's yes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAction {
    /// The intent's action (`cancel_order`, `refund_request`).
    pub action: String,
    pub intent: String,
    pub order: String,
    /// The message index of the confirmation question: with the conversation, action and
    /// order, the idempotency key the shop gets, so a repeated yes never acts twice.
    pub asked_at: u64,
}

/// A reply that never reached the customer: the platform refused it for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryFailure {
    pub channel: ChannelKind,
    /// The platform's refusal, as it gave it.
    pub error: String,
    /// The text that was not delivered.
    pub text: String,
    pub time: DateTime<Utc>,
}

/// One agent's judgement of a conversation: its escalation was needed or not, or one of the
/// bot's answers was wrong. Read by the cockpit (precision per rule, wrong answers per intent),
/// the what-if replay (labelled conversations) and `train --feedback`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// The agent's name.
    pub by: String,
    pub at: DateTime<Utc>,
    pub mark: MarkKind,
    /// Why, in the agent's words (one line, bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Escalation marks: the escalation's reasons when it was marked (rule, observed value,
    /// threshold), so precision per rule stays computable after the rules change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalation: Vec<EscalationReason>,
    /// Wrong-answer marks: the bot message's index in the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<u64>,
    /// Wrong-answer marks: the intent of the customer message it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
}

/// What an agent marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// The escalation was right: a person had to see it.
    Needed,
    /// The bot could have gone on: nobody needed to see it.
    NotNeeded,
    /// A bot answer was wrong (marked when the agent took over).
    WrongAnswer,
}

impl MarkKind {
    /// The name the API and the files use (`needed`, `not_needed`, `wrong_answer`).
    pub fn as_str(self) -> &'static str {
        match self {
            MarkKind::Needed => "needed",
            MarkKind::NotNeeded => "not_needed",
            MarkKind::WrongAnswer => "wrong_answer",
        }
    }

    /// A judgement of the escalation (needed or not), not of one answer.
    pub fn is_escalation(self) -> bool {
        matches!(self, MarkKind::Needed | MarkKind::NotNeeded)
    }
}

/// A one-time `/link` code: who asked for it and until when it may be used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkCode {
    pub identity: Identity,
    pub expires: DateTime<Utc>,
}

/// An API key as stored: its id, name, scope and the SHA-256 of its secret part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    /// `messages`, `agent`, `lead` or `admin`.
    pub scope: String,
    /// Hex SHA-256 of the key's secret part.
    pub hash: String,
    pub created: DateTime<Utc>,
}

/// An agent's console session, kept on the server so it can be revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub agent: String,
    pub expires: DateTime<Utc>,
    /// A fingerprint of the agent's password hash at login: a changed password ends it.
    pub fingerprint: String,
}

/// One line of the privacy audit: what was done, when, to whom (a hash of the id only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLine {
    pub time: DateTime<Utc>,
    pub action: String,
    /// Hex SHA-256 of the customer id.
    pub subject: String,
    /// Who did it: `agent:NAME`, `key:ID` (an API key), `cli` (a command on the server's
    /// machine). Lines written before actors were recorded read as empty.
    #[serde(default)]
    pub actor: String,
}

/// The hash of a customer id that the audit keeps instead of the id.
pub fn subject_hash(id: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(id.as_bytes()))
}

/// Everything stored about one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerExport {
    pub customer: Customer,
    /// Further records of the same shop customer (an identity that presented the shop's
    /// token before it was linked has its own).
    #[serde(default)]
    pub other_records: Vec<Customer>,
    pub conversations: Vec<ExportedConversation>,
    /// Replies waiting for or refused by a chat platform.
    pub outbox: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedConversation {
    pub record: ConversationRecord,
    pub messages: Vec<StoredMessage>,
}

/// How much an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Erased {
    pub conversations: usize,
    pub messages: usize,
    pub identities: usize,
    pub other: usize,
}

impl ConversationRecord {
    /// Notes `kind` at `at` on the timeline (the oldest go past [`TIMELINE_KEPT`]).
    pub fn note(&mut self, at: DateTime<Utc>, kind: MilestoneKind) {
        self.timeline.push(Milestone { at, kind });
        if self.timeline.len() > TIMELINE_KEPT {
            let extra = self.timeline.len() - TIMELINE_KEPT;
            self.timeline.drain(..extra);
        }
    }

    pub fn identity(&self) -> Identity {
        Identity::new(self.channel, &self.channel_user)
    }
}

/// A conversation waiting for a human in one named queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub queue: String,
    pub conversation_id: ConversationId,
    pub customer: String,
    pub channel: ChannelKind,
    pub priority: i64,
    pub enqueued_at: DateTime<Utc>,
    pub reasons: Vec<EscalationReason>,
    /// Nobody knows who waits here (an anonymous, unchecked customer of no tier): such
    /// entries are capped per address and expire (see `desk::queue`).
    #[serde(default)]
    pub anonymous: bool,
    /// The network address of a widget visitor (see `ConversationRecord::origin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<std::net::IpAddr>,
    /// Left while the queue was closed: the opening it waits for (9999-12-31 when the queue
    /// had none ahead). Such entries are served first, earliest opening first, ahead of
    /// whatever arrives once it is open (`desk::queue::ordered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_for_opening: Option<DateTime<Utc>>,
}

/// Everything one event changes, written atomically by `Store::apply`.
#[derive(Debug, Default)]
pub struct Change {
    pub customers: Vec<Customer>,
    pub identities: Vec<(Identity, String)>,
    pub conversations: Vec<ConversationRecord>,
    /// (conversation, sequence number, message)
    pub messages: Vec<(ConversationId, u64, StoredMessage)>,
    /// The conversation an identity currently writes into; `None` once it is closed.
    pub open: Vec<(Identity, Option<ConversationId>)>,
    pub enqueue: Vec<QueueEntry>,
    pub dequeue: Vec<(String, ConversationId)>,
    pub assign: Vec<(String, ConversationId)>,
    pub unassign: Vec<(String, ConversationId)>,
    /// Inbound message ids handled by this change, with the outcome a repeat gets back
    /// (exactly-once intake: the id is recorded in the same transaction as the message).
    pub inbound: Vec<(Identity, String, serde_json::Value)>,
    /// Replies for chat-platform customers, queued for delivery in the same transaction as
    /// the turn (or agent action) that produced them: a crash can lose neither without the
    /// other.
    pub outbox: Vec<Outbound>,
    /// (agent name, display name): how the agents who speak in this change sign on a chat
    /// platform.
    pub display_names: Vec<(String, String)>,
    /// (conversation, due): an LLM answer is now due for the conversation's latest message
    /// (`true`), or no longer (`false`).
    pub awaiting: Vec<(ConversationId, bool)>,
    /// Audit lines written with the change (an agent's verification, say).
    pub audit: Vec<AuditLine>,
    /// The customer's turn this change stores, when it is one: its replies name it.
    pub turn: Option<String>,
}

impl Change {
    /// Every bot or agent message this change stores in a conversation whose channel has
    /// couriers (Telegram, Discord, the widget), as the outbound message the customer must
    /// get: the store queues them in the same transaction, so every reply it holds reaches
    /// the customer (none lost, none twice).
    pub fn platform_replies(&self) -> Vec<Outbound> {
        self.messages
            .iter()
            .filter(|(_, _, m)| m.from != Speaker::Customer)
            .filter_map(|(id, _, m)| {
                let c = self.conversations.iter().rev().find(|c| &c.id == id)?;
                super::has_outbox(c.channel).then(|| Outbound {
                    conversation_id: id.clone(),
                    channel: c.channel,
                    channel_user: c.channel_user.clone(),
                    text: m.text.clone(),
                    from: match &m.from {
                        Speaker::Agent(name) => Speaker::Agent(
                            self.display_names
                                .iter()
                                .find(|(n, _)| n == name)
                                .map_or_else(|| name.clone(), |(_, d)| d.clone()),
                        ),
                        other => other.clone(),
                    },
                    time: m.time,
                    turn: self.turn.clone(),
                    survey: None,
                })
            })
            .collect()
    }
}

/// A message waiting in the outbox for a chat platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parcel {
    pub message: Outbound,
    /// Rendered pieces the platform already accepted.
    pub pieces_sent: usize,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub queued_at: DateTime<Utc>,
    /// A bot answer queued while the bot owned the conversation: not sent once an agent
    /// has taken the conversation since (notices of agents' actions are never held back).
    #[serde(default)]
    pub bot_answer: bool,
}

impl Parcel {
    /// A message not tried yet.
    pub fn new(message: Outbound, now: DateTime<Utc>) -> Parcel {
        Parcel {
            message,
            pieces_sent: 0,
            attempts: 0,
            last_error: None,
            queued_at: now,
            bot_answer: false,
        }
    }
}

/// What a handled inbound message id keeps: the outcome a repeat gets back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenInbound {
    pub outcome: serde_json::Value,
    pub time: DateTime<Utc>,
}

/// A message the platform refused for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedDelivery {
    pub message: Outbound,
    pub error: String,
    pub time: DateTime<Utc>,
}
