//! The desk: the one handle the server and the channels use to run conversations.
//!
//! Source of truth for the engine/server contract (see /work/DESK_API.md). Differences
//! from the first draft, for the server side:
//! - `Desk::open(config, nlu)` takes any `impl Understand`; `NluService` implements it.
//!   `Desk::open_with(DeskParts)` builds one from parts (tests, replay).
//! - `Profile` has an optional `customer_id` (the shop's id, trusted like the rest).
//! - `DeskEventKind` also has `CustomerMessage { text }` (so the console sees customer
//!   messages live) and `AgentReply` carries `display_name` besides `agent`.
//! - `StoredMessage.from` serialises as `{"role":"customer"}`, `{"role":"bot"}` or
//!   `{"role":"agent","name":"ana"}`.
//! - `QueueEntryView.sentiment` is the mean negative probability of the last 3 customer
//!   messages (0..1, higher is unhappier); `QueueView` has `description`.
//! - `AgentView` is `{name, display_name, capacity, active, conversations}`.
//! - `DeskError::Unavailable(String)` when the NLU fails or the desk stops (HTTP 503, like
//!   `Busy`); `Setup(String)` when `open` cannot start; `Nlu` is kept for bad models.
//! - Also: `Desk::agent(name)` (config with password hash, for login), `flush()`,
//!   `rules()`, `reassign_idle(idle, now)` (the background watcher calls it too).
//!   `Conversation` also has `tier`, `lifetime_value`, `priority`, `created`, `updated`.
//! - `close` also works on a conversation still waiting in a queue (any agent).
//! - `SledStore::flush` is a serialised group commit itself (sled 0.34 deadlocks on
//!   concurrent `flush_async`), so a wrapper is not needed for correctness.

mod delivery;
mod identity;
pub(crate) mod turn;

use crate::commerce;
use crate::config::{AgentConfig, Config, EngineConfig};
use crate::dialogue::Dialogue;
use crate::message::{ChannelKind, ConversationId, Inbound, Status};
use crate::nlu::analysis::Analysis;
use crate::nlu::NluError;
use crate::policy::{EscalationReason, Rules};
use crate::queue;
use crate::router::{RouteError, Router};
use crate::store::{ConversationRecord, SledStore, Store, StoreError, StoredMessage};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot, Mutex};

/// Anything that turns a message into an `Analysis` (the NLU service; a script in tests).
pub trait Understand: Send + Sync + 'static {
    fn analyze(&self, text: String) -> BoxFuture<'static, Result<Analysis, NluError>>;
}

impl Understand for crate::nlu::service::NluService {
    fn analyze(&self, text: String) -> BoxFuture<'static, Result<Analysis, NluError>> {
        let service = self.clone();
        Box::pin(async move { service.analyze(text).await })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskError {
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("understanding failed: {0}")]
    Nlu(String),
    #[error("too many messages waiting; try again shortly")]
    Busy,
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("cannot start: {0}")]
    Setup(String),
}

impl From<StoreError> for DeskError {
    fn from(e: StoreError) -> Self {
        DeskError::Storage(e.to_string())
    }
}

/// What `receive` answers: where the conversation stands after this message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub conversation_id: ConversationId,
    pub status: Status,
    pub replies: Vec<Reply>,
    pub queue: Option<QueueSlot>,
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
    /// A reply could not be delivered on the customer's chat platform, for good.
    DeliveryFailed {
        channel: ChannelKind,
        error: String,
    },
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
    pub waiting_secs: u64,
    pub position: usize,
    pub sla_breached: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    pub name: String,
    pub description: Option<String>,
    pub sla_secs: u64,
    pub entries: Vec<QueueEntryView>,
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
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// Replies the customer's platform refused for good (shown to the agent).
    pub delivery_failures: Vec<crate::store::DeliveryFailure>,
}

/// Everything a desk is made of, for callers that build the parts themselves.
pub struct DeskParts {
    pub store: Arc<dyn Store>,
    pub nlu: Arc<dyn Understand>,
    pub dialogue: Dialogue,
    pub rules: Rules,
    pub agents: Vec<AgentConfig>,
    pub engine: EngineConfig,
}

/// The engine handle: cheap to clone, shared by every channel and the console.
#[derive(Clone)]
pub struct Desk {
    inner: Arc<Inner>,
}

type Job = (Inbound, oneshot::Sender<Result<Turn, DeskError>>);

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) nlu: Arc<dyn Understand>,
    pub(crate) dialogue: Dialogue,
    pub(crate) rules: Rules,
    pub(crate) agents: BTreeMap<String, AgentConfig>,
    pub(crate) events: broadcast::Sender<DeskEvent>,
    router: Router<Job>,
    /// Serialises every change to one customer's conversation (key: channel identity).
    stripes: Vec<Mutex<()>>,
    /// Serialises changes to queues and assignments, so positions and capacity hold.
    pub(crate) queue_lock: Mutex<()>,
}

const STRIPES: usize = 256;

impl Inner {
    pub(crate) fn stripe(&self, identity_key: &str) -> &Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        identity_key.hash(&mut h);
        &self.stripes[(h.finish() % STRIPES as u64) as usize]
    }

    pub(crate) fn emit(&self, conversation_id: &ConversationId, kind: DeskEventKind) {
        // Nobody listening is fine: events are a live view, the store is the record.
        let _ = self.events.send(DeskEvent {
            conversation_id: conversation_id.clone(),
            kind,
        });
    }
}

impl Desk {
    /// Opens the store under `config.server.data_dir`, the rules, the intents' answers and
    /// the shop, and starts the conversation workers and the idle-agent watcher.
    pub async fn open(config: &Config, nlu: impl Understand) -> Result<Desk, DeskError> {
        let setup =
            |what: &str, e: &dyn std::fmt::Display| DeskError::Setup(format!("{what}: {e}"));
        std::fs::create_dir_all(&config.server.data_dir).map_err(|e| {
            setup(
                &format!("data dir {}", config.server.data_dir.display()),
                &e,
            )
        })?;
        let store = SledStore::open(&config.server.data_dir.join("store"))
            .map_err(|e| setup("store", &e))?;
        let rules = Rules::load(&config.engine.rules).map_err(|e| setup("rules", &e))?;
        let shop = commerce::from_config(&config.commerce).map_err(|e| setup("commerce", &e))?;
        let dialogue =
            Dialogue::load(&config.engine.intents_dir, shop).map_err(|e| setup("intents", &e))?;
        Ok(Desk::open_with(DeskParts {
            store: Arc::new(store),
            nlu: Arc::new(nlu),
            dialogue,
            rules,
            agents: config.agents.clone(),
            engine: config.engine.clone(),
        }))
    }

    /// Starts a desk on ready-made parts. Needs a tokio runtime.
    pub fn open_with(parts: DeskParts) -> Desk {
        let engine = parts.engine;
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let weak = weak.clone();
            let router = Router::start(
                engine.workers,
                engine.worker_queue,
                Duration::from_millis(engine.busy_wait_ms),
                move |(msg, reply): Job| {
                    let weak = weak.clone();
                    async move {
                        let result = match weak.upgrade() {
                            Some(inner) => turn::handle(&inner, msg).await,
                            None => Err(DeskError::Unavailable("the desk is shutting down".into())),
                        };
                        let _ = reply.send(result);
                    }
                },
            );
            Inner {
                store: parts.store,
                nlu: parts.nlu,
                dialogue: parts.dialogue,
                rules: parts.rules,
                agents: parts
                    .agents
                    .into_iter()
                    .map(|a| (a.name.clone(), a))
                    .collect(),
                events: broadcast::channel(4096).0,
                router,
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                queue_lock: Mutex::new(()),
            }
        });
        queue::spawn_idle_watch(Arc::downgrade(&inner), engine.agent_idle_secs);
        Desk { inner }
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Desk {
        Desk { inner }
    }

    /// Handles one customer message. Returns once it is durably stored and handled (the
    /// bot's answer or the queue placement); messages of one customer are handled in order.
    pub async fn receive(&self, msg: Inbound) -> Result<Turn, DeskError> {
        let (tx, rx) = oneshot::channel();
        let key = msg.identity().key();
        self.inner
            .router
            .dispatch(&key, (msg, tx))
            .await
            .map_err(|e| match e {
                RouteError::Busy => DeskError::Busy,
                RouteError::Stopped => DeskError::Unavailable("the desk has stopped".into()),
            })?;
        rx.await
            .map_err(|_| DeskError::Unavailable("the message was dropped while handled".into()))?
    }

    /// Live events of every conversation.
    pub fn subscribe(&self) -> broadcast::Receiver<DeskEvent> {
        self.inner.events.subscribe()
    }

    pub fn queues(&self) -> Result<Vec<QueueView>, DeskError> {
        queue::views(&self.inner, Utc::now())
    }

    pub fn conversation(&self, id: &ConversationId) -> Result<Option<Conversation>, DeskError> {
        let store = &self.inner.store;
        let Some(record) = store.conversation(id)? else {
            return Ok(None);
        };
        let messages = store.messages(id)?;
        let customer = store.customer(&record.customer)?;
        Ok(Some(conversation_view(record, messages, customer.as_ref())))
    }

    /// The conversation this channel user writes into now (none once it is closed).
    pub fn conversation_of(
        &self,
        channel: ChannelKind,
        channel_user: &str,
    ) -> Result<Option<ConversationId>, DeskError> {
        let identity = crate::message::Identity::new(channel, channel_user);
        Ok(self.inner.store.open_conversation(&identity)?)
    }

    pub fn agents(&self) -> Vec<AgentView> {
        let assignments = self.inner.store.assignments().unwrap_or_default();
        self.inner
            .agents
            .values()
            .map(|a| {
                let conversations: Vec<_> = assignments
                    .iter()
                    .filter(|(agent, _)| agent == &a.name)
                    .map(|(_, c)| c.clone())
                    .collect();
                AgentView {
                    name: a.name.clone(),
                    display_name: a.display().to_string(),
                    capacity: a.capacity,
                    active: conversations.len(),
                    conversations,
                }
            })
            .collect()
    }

    /// The agent's configuration (password hash included), for the console's login.
    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        self.inner.agents.get(name)
    }

    /// Makes everything stored so far durable.
    pub async fn flush(&self) -> Result<(), DeskError> {
        Ok(self.inner.store.flush().await?)
    }

    pub fn rules(&self) -> &Rules {
        &self.inner.rules
    }
}

pub(crate) fn conversation_view(
    r: ConversationRecord,
    messages: Vec<StoredMessage>,
    customer: Option<&crate::store::Customer>,
) -> Conversation {
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
        created: r.created,
        updated: r.updated,
        delivery_failures: r.delivery_failures,
    }
}

/// The desk is shared by every connection task: it and its futures must cross threads.
#[allow(dead_code)]
fn desk_is_shareable(desk: Desk, id: ConversationId) {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    send_sync(&desk);
    send(desk.receive(Inbound::new(ChannelKind::Web, "u", "hi")));
    send(desk.claim("a", &id));
    send(desk.agent_reply("a", &id, "x"));
    send(desk.hand_back("a", &id));
    send(desk.close("a", &id));
}
