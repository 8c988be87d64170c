//! One customer turn, from inbound text to a stored, acknowledged answer. [`handle`] reads
//! as the list of its steps; each step is a small function below it.

use chrono::{DateTime, Utc};

use super::customer;
use super::dialogue::{self, is_acknowledgement, slot_value};
use super::error::{DeskError, Unavailable};
use super::frustration;
use super::grounding;
use super::inner::Inner;
use super::llm_turn::{self, LlmJob};
use super::record::{cap_front, new_conversation, push_message, KEPT_PER_RECORD};
use super::rules::ask_rules;
use super::types::{DeskEventKind, QueueSlot, Reply, Turn};
use super::waiting;
use crate::message::{ChannelKind, ConversationId, Identity, Inbound, Speaker, Status};
use crate::nlu::{Analysis, OUT_OF_SCOPE};
use crate::store::{Change, ConversationRecord, Customer};

/// Handles one message; the caller (a router worker) guarantees per-customer order. A
/// question left to the LLM comes back as a job to finish off the worker
/// (`llm_turn::finish`): the customer's message is stored, the answer is not yet.
pub(super) async fn handle(
    inner: &Inner,
    msg: Inbound,
) -> Result<(Turn, Option<LlmJob>), DeskError> {
    let text = validate(&msg)?;
    let identity = msg.identity();
    let _conversation_guard = inner.lock_customer(&identity.key()).await?;
    // Exactly once: a message id seen before gets its first outcome back, nothing runs again.
    if let Some(id) = &msg.message_id {
        if let Some(outcome) = inner.store.seen_inbound(&identity, id).await? {
            crate::metrics::inbound_duplicate(msg.channel.as_str());
            tracing::info!(channel = %msg.channel, message_id = %id, "repeated message answered from its first outcome");
            return serde_json::from_value(outcome)
                .map(|turn| (turn, None))
                .map_err(|e| {
                    DeskError::Storage(crate::store::StoreError::Corrupt {
                        what: "inbound".into(),
                        source: e,
                    })
                });
        }
    }
    let now = Utc::now();
    let mut out = Outcome {
        message_ids: msg.message_id.clone().map(|id| {
            let mut ids = msg.merged_ids.clone();
            ids.push(id);
            (identity.clone(), ids)
        }),
        ..Outcome::default()
    };
    let mut customer = customer::customer_for(inner, &msg, &identity, &mut out.change, now).await?;
    if customer.blocked.is_some() {
        crate::metrics::message_rejected("blocked");
        return Err(DeskError::Forbidden(
            "this conversation was closed by our team and new messages are not accepted".into(),
        ));
    }
    let mut record =
        open_conversation(inner, &mut customer, &identity, &mut out.change, now).await?;
    // Queues cap anonymous chats per address for widget visitors only: a REST integration
    // relays all its customers from its own address (and answers for them with its key).
    if msg.channel == ChannelKind::Web && msg.origin.is_some() {
        record.origin = msg.origin;
    }
    // Only an identity that proved the shop customer itself speaks for them (a `/link`ed
    // one proves it again: a token, or the order check).
    let proved = customer
        .shop_customer_id
        .as_deref()
        .filter(|_| customer.shop_verified.contains(&identity));
    dialogue::trust(&mut record, proved);
    let analysis = understand(inner, &text).await?;
    record_customer_message(&mut record, &mut out, &text, msg.time, &analysis, now);
    // "stop notices", "offers on": the customer's choice about the shop's notices.
    if let Some(choice) = super::notice::preference_command(&text) {
        let said = super::notice::apply_preference(&mut customer, choice, &mut out.change);
        if record.status == Status::Bot {
            out.say(&mut record, said, now);
        }
        return Ok((commit(inner, record, out).await?, None));
    }
    gauge_frustration(inner, &mut record, &customer, &analysis, now).await?;
    match record.status {
        Status::Bot => {
            bot_turn(inner, &mut record, &customer, &analysis, &mut out, now).await?;
            if let Some(job) = &mut out.llm {
                job.identity_key = identity.key();
                job.channel = msg.channel;
                // stored with the message: a crash before the answer cannot leave it unanswered
                out.change.awaiting.push((record.id.clone(), true));
            }
        }
        Status::Queued => {
            waiting::still_waiting(inner, &mut record, &customer, &analysis, &mut out, now).await?
        }
        // An agent owns it: the bot stays silent, the agent sees the message live.
        Status::WithAgent | Status::Closed => {}
    }
    let job = out.llm.take();
    let turn = commit(inner, record, out).await?;
    Ok((turn, job))
}

/// How many recent messages the conversation's frustration is read from.
const FRUSTRATION_WINDOW: usize = 40;

/// What one turn changes and says, gathered before anything is stored.
#[derive(Default)]
pub(super) struct Outcome<'a> {
    pub(super) change: Change,
    pub(super) events: Vec<DeskEventKind>,
    pub(super) replies: Vec<String>,
    pub(super) queue: Option<QueueSlot>,
    /// Other waiting customers whose position this turn changed.
    pub(super) moved: Vec<(ConversationId, usize)>,
    /// Held from the queue decision until the change is applied, so positions stay true.
    pub(super) queue_guard: Option<super::inner::Held<'a>>,
    /// The inbound message's ids (its own and those merged into it), recorded with the
    /// turn's outcome in the same change.
    pub(super) message_ids: Option<(Identity, Vec<String>)>,
    /// The question is left to the LLM (answered after this turn is stored).
    llm: Option<LlmJob>,
    /// The conversation entered a queue in this turn.
    pub(super) entered_queue: bool,
}

impl Outcome<'_> {
    /// An outcome that records these inbound ids with what the turn becomes.
    pub(super) fn for_ids(message_ids: Option<(Identity, Vec<String>)>) -> Self {
        Outcome {
            message_ids,
            ..Outcome::default()
        }
    }

    /// The bot says `text` in the conversation.
    pub(super) fn say(
        &mut self,
        record: &mut ConversationRecord,
        text: String,
        now: DateTime<Utc>,
    ) {
        push_message(record, &mut self.change, Speaker::Bot, &text, now, None);
        self.events
            .push(DeskEventKind::BotReply { text: text.clone() });
        self.replies.push(text);
    }
}

/// The message's text, trimmed; an empty message is refused.
fn validate(msg: &Inbound) -> Result<String, DeskError> {
    let bad_id = |id: &String| id.is_empty() || id.len() > 200;
    if msg.message_id.as_ref().is_some_and(bad_id) || msg.merged_ids.iter().any(bad_id) {
        return Err(DeskError::Invalid(
            "the message id must be 1 to 200 characters: send a shorter one, or none".into(),
        ));
    }
    let text = msg.text.trim();
    if text.is_empty() {
        return Err(DeskError::Invalid(
            "the message is empty: write some text".into(),
        ));
    }
    Ok(text.to_string())
}

/// The conversation this identity writes into: the open one, or a new one (counted on
/// the customer).
async fn open_conversation(
    inner: &Inner,
    customer: &mut Customer,
    identity: &Identity,
    change: &mut Change,
    now: DateTime<Utc>,
) -> Result<ConversationRecord, DeskError> {
    let store = &inner.store;
    let open = match store.open_conversation(identity).await? {
        Some(id) => store.conversation(&id).await?,
        None => None,
    };
    Ok(match open {
        Some(r) if r.status != Status::Closed => r,
        // closed by an agent a moment ago: the same conversation, back with the bot
        Some(mut r)
            if !inner.reopen_within.is_zero()
                && r.customer.as_str() == customer.id.as_str()
                && now - r.updated <= inner.reopen_within =>
        {
            r.status = Status::Bot;
            r.assigned_agent = None;
            r.queue = None;
            r.queued_since = None;
            r.pending = None;
            r.offered_human = false;
            r.unresolved_turns = 0;
            r.note(now, crate::store::MilestoneKind::Reopened);
            tracing::info!(conversation = %r.id, "closed conversation reopened by the customer");
            r
        }
        _ => {
            let r = new_conversation(&customer.id, identity, now);
            change.open.push((identity.clone(), Some(r.id.clone())));
            customer.conversations = customer.conversations.saturating_add(1);
            change.customers.retain(|c| c.id != customer.id);
            change.customers.push(customer.clone());
            r
        }
    })
}

/// The NLU's reading of the message; a failing model makes the desk unavailable.
async fn understand(inner: &Inner, text: &str) -> Result<Analysis, DeskError> {
    Ok(inner
        .nlu
        .analyze(text.to_string())
        .await
        .map_err(Unavailable::Nlu)?)
}

/// The customer's message joins the transcript, with its analysis and sentiment.
fn record_customer_message(
    record: &mut ConversationRecord,
    out: &mut Outcome<'_>,
    text: &str,
    sent: DateTime<Utc>,
    analysis: &Analysis,
    now: DateTime<Utc>,
) {
    record
        .sentiment_trajectory
        .push(analysis.sentiment_scores.negative);
    // The record is rewritten each turn: what grows with the conversation is capped, so a
    // turn costs the same at message 500 as at message 1 (the messages themselves are
    // appended under their own keys).
    cap_front(&mut record.sentiment_trajectory, KEPT_PER_RECORD);
    record.last_customer_at = now;
    record.updated = now;
    let analysis = Some(analysis.clone());
    push_message(
        record,
        &mut out.change,
        Speaker::Customer,
        text,
        sent,
        analysis,
    );
    out.events.push(DeskEventKind::CustomerMessage {
        text: text.to_string(),
    });
}

/// How frustrated the customer is with the conversation so far (`frustration.rs`): the
/// score and its reasons are kept on the record, for the rules and the console.
async fn gauge_frustration(
    inner: &Inner,
    record: &mut ConversationRecord,
    customer: &Customer,
    analysis: &Analysis,
    now: DateTime<Utc>,
) -> Result<(), DeskError> {
    let mut said: Vec<Analysis> = inner
        .store
        .recent_messages(&record.id, FRUSTRATION_WINDOW)
        .await?
        .into_iter()
        .filter(|m| m.from == Speaker::Customer)
        .filter_map(|m| m.analysis)
        .collect();
    said.push(analysis.clone());
    let waited_secs = match (record.status, record.queued_since) {
        (Status::Queued, Some(since)) => (now - since).num_seconds().max(0) as u64,
        _ => 0,
    };
    let f = frustration::assess(&frustration::Context {
        messages: &said,
        earlier_conversations: customer.conversations.saturating_sub(1),
        waited_secs,
        unresolved_turns: record.unresolved_turns,
    });
    record.frustration = f.score;
    record.frustration_reasons = f.reasons;
    Ok(())
}

/// The bot has the conversation: the rules decide between answering and a queue.
async fn bot_turn<'a>(
    inner: &'a Inner,
    record: &mut ConversationRecord,
    customer: &Customer,
    analysis: &Analysis,
    out: &mut Outcome<'a>,
    now: DateTime<Utc>,
) -> Result<(), DeskError> {
    let intent =
        inner
            .dialogue
            .effective_intent(analysis, record.pending.as_ref(), record.offered_human);
    if let Some(n) = slot_value(analysis, "order_number") {
        record.slots.insert("order_number".into(), n);
    }
    // "ok, good to know" is out of scope but no question the bot failed to answer; nor is
    // one the help centre answers ("what's your return window for furniture?": no intent,
    // but an article), so a high-value customer is not sent away from an instant answer.
    let question = intent == OUT_OF_SCOPE && !is_acknowledgement(&analysis.text);
    let mut failed = question;
    if failed {
        if let Some(help) = inner.dialogue.help() {
            failed = help.answer(&analysis.text).await.is_none();
        }
    }
    let unresolved = record.unresolved_turns + u32::from(failed);
    let escalation =
        match ask_rules(inner, record, customer, analysis, &intent, unresolved, None).await {
            Some(e) => Some(e),
            None => super::rules::ask_judge(inner, record, customer, analysis, &intent, unresolved)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "the escalation judge's turn failed");
                    None
                }),
        };
    // asked once: a second "still not here" after the bot's answer is read with its tone
    record.late_parcel_raised |=
        intent == "track_order" || super::rules::mild_late_parcel(analysis);
    match escalation {
        Some(escalation) => {
            record.unresolved_turns = unresolved;
            waiting::escalate(inner, record, customer, escalation, out, now).await
        }
        None if question && inner.llm.is_some() => {
            let grounding =
                grounding::gather(inner, record, Some(customer), None, Some(&analysis.text))
                    .await?;
            if !llm_turn::worth_asking(inner, &grounding) {
                answer(inner, record, &intent, analysis, out, now).await;
                return Ok(());
            }
            let (token, serial) = llm_turn::start(inner, &record.id);
            out.llm = Some(LlmJob {
                conversation_id: record.id.clone(),
                identity_key: String::new(),
                channel: record.channel,
                text: analysis.text.clone(),
                analysis: analysis.clone(),
                customer: customer.clone(),
                grounding,
                message_ids: out.message_ids.clone(),
                token,
                serial,
            });
            Ok(())
        }
        None => {
            answer(inner, record, &intent, analysis, out, now).await;
            Ok(())
        }
    }
}

/// The bot answers from the intents (filling and remembering slots).
pub(super) async fn answer(
    inner: &Inner,
    record: &mut ConversationRecord,
    intent: &str,
    analysis: &Analysis,
    out: &mut Outcome<'_>,
    now: DateTime<Utc>,
) {
    let answer = inner.dialogue.answer(intent, analysis, record).await;
    record.pending = answer.pending;
    record.offered_human = answer.offered_human;
    let acknowledged = intent == OUT_OF_SCOPE && is_acknowledgement(&analysis.text);
    // failures in a row: an answered turn means the bot is back on track ("unopened" and
    // "tomorrow would be better" after answered questions are not a failing bot)
    if answer.resolved {
        record.unresolved_turns = 0;
    } else if !acknowledged {
        record.unresolved_turns += 1;
    }
    out.say(record, answer.text, now);
}

/// Stores the turn as one change, makes it durable, then tells the live views and the
/// customers whose position moved.
pub(super) async fn commit(
    inner: &Inner,
    record: ConversationRecord,
    out: Outcome<'_>,
) -> Result<Turn, DeskError> {
    let Outcome {
        mut change,
        events,
        replies,
        queue,
        moved,
        queue_guard,
        message_ids,
        llm: _,
        entered_queue,
    } = out;
    let status = record.status;
    let id = record.id.clone();
    change.conversations.push(record);
    let turn_id = super::new_turn_id();
    change.turn = Some(turn_id.clone());
    let turn = Turn {
        conversation_id: id.clone(),
        status,
        replies: replies.into_iter().map(|text| Reply { text }).collect(),
        queue,
        id: Some(turn_id),
    };
    if let Some((identity, ids)) = message_ids {
        let outcome = serde_json::to_value(&turn).expect("a turn always serializes");
        for id in ids {
            change.inbound.push((identity.clone(), id, outcome.clone()));
        }
    }
    if turn.queue.is_some() {
        change.outbox.extend(inner.position_notices(&moved).await?);
    }
    inner.store.apply(change).await?;
    drop(queue_guard);
    inner.store.flush().await?;
    for kind in events {
        inner.emit(&id, kind);
    }
    if let Some(slot) = &turn.queue {
        inner.announce(&slot.name, moved);
    }
    // With an LLM, the agent who takes it reads a written summary: in the background, so
    // the customer never waits for it.
    if entered_queue {
        super::assist::spawn_summary(inner, id);
    }
    Ok(turn)
}
