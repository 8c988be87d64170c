//! The LLM's part of a turn, when `[llm]` is configured: a question the intents cannot
//! answer (and the rules did not send to a person) goes to the model with the help
//! centre's best passages, outside the customer's worker so nobody else waits for it.
//!
//! The rules stay in charge:
//! - the turn that asks has already stored the customer's message and let the escalation
//!   rules speak; an angry, high-value or person-asking turn never gets here;
//! - the answer is stored only if the bot still owns the conversation when it arrives
//!   (under the customer's lock, like every turn); a queue or an agent taking over cancels
//!   it (`Inner::cancel_llm`), drafts already shown are withdrawn;
//! - a hand-off is the structured `handoff` field, and the rules choose the queue (as for a
//!   request for a person); the model never acts on an order: its only output is text that
//!   passed the guardrails (`crate::llm::guard`);
//! - any failure (timeout, outage, budget, a blocked answer) falls back to the local answer:
//!   the help centre's passage when it is confident, else the out-of-scope answer.
//!
//! On the widget the answer streams: each checked prefix is a `BotDraft` event.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::copy;
use super::dialogue::HUMAN_REQUEST;
use super::error::DeskError;
use super::grounding::Grounding;
use super::inner::Inner;
use super::rules::ask_rules;
use super::turn::{answer, commit, Outcome};
use super::types::{DeskEventKind, Turn};
use super::waiting::escalate;
use crate::llm::{AnswerInput, CheckedAnswer, LlmError};
use crate::message::{ChannelKind, ConversationId, Identity, Status};
use crate::nlu::{Analysis, OUT_OF_SCOPE};
use crate::store::Customer;

/// A question handed to the LLM by the turn that stored it.
pub(super) struct LlmJob {
    pub conversation_id: ConversationId,
    /// The customer's lock key (their channel identity).
    pub identity_key: String,
    pub channel: ChannelKind,
    pub text: String,
    pub analysis: Analysis,
    pub customer: Customer,
    pub grounding: Grounding,
    /// The inbound ids, recorded again with the final outcome.
    pub message_ids: Option<(Identity, Vec<String>)>,
    /// Cancelled when the conversation leaves the bot (a queue, an agent).
    pub token: CancellationToken,
    /// This job's registration in `Inner::llm_in_flight`.
    pub serial: u64,
}

/// Whether the LLM should try this question: one is configured, and the help centre has a
/// passage that is at least about the subject (`llm.min_passage_score`); a question about
/// nothing the shop wrote down ("write me a poem") costs no tokens.
pub(super) fn worth_asking(inner: &Inner, grounding: &Grounding) -> bool {
    inner.llm.as_ref().is_some_and(|h| {
        !grounding.hits.is_empty() && grounding.best_score() >= h.llm.config().min_passage_score
    })
}

/// Registers the answer about to be written for `id`, so an agent can cancel it; returns
/// its token and serial.
pub(super) fn start(inner: &Inner, id: &ConversationId) -> (CancellationToken, u64) {
    static SERIAL: AtomicU64 = AtomicU64::new(1);
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    // An earlier question of the same conversation still being answered goes on (each
    // answer checks ownership when it arrives) and shares the token, so one cancel stops
    // them all; the entry goes when the newest ends.
    let mut in_flight = inner.llm_in_flight.lock().expect("llm_in_flight lock");
    let token = match in_flight.get(id) {
        Some((_, older)) if !older.is_cancelled() => older.clone(),
        _ => CancellationToken::new(),
    };
    in_flight.insert(id.clone(), (serial, token.clone()));
    (token, serial)
}

/// Asks the model, then stores what the customer is told (or nothing, when the
/// conversation is no longer the bot's); returns the turn as the customer's caller sees it.
pub(super) async fn finish(inner: &Inner, job: LlmJob) -> Result<Turn, DeskError> {
    let id = job.conversation_id.clone();
    let mut drafted = false;
    let result = {
        let asked = ask(inner, &job, &mut drafted);
        tokio::select! {
            r = asked => Some(r),
            _ = job.token.cancelled() => None,
        }
    };
    {
        let mut in_flight = inner.llm_in_flight.lock().expect("llm_in_flight lock");
        if in_flight
            .get(&id)
            .is_some_and(|(serial, _)| *serial == job.serial)
        {
            in_flight.remove(&id);
        }
    }
    let _guard = inner.lock_customer(&job.identity_key).await?;
    let mut record = inner
        .store
        .conversation(&id)
        .await?
        .ok_or(DeskError::NotFound)?;
    let now = Utc::now();
    let mut out = Outcome::for_ids(job.message_ids.clone());
    out.change.awaiting.push((id.clone(), false));
    let result = match result {
        Some(r) if record.status == Status::Bot => r,
        _ => {
            crate::metrics::llm_answer("dropped");
            tracing::info!(conversation = %id, status = %record.status,
                "LLM answer dropped: the conversation left the bot while it was written");
            if drafted {
                out.events.push(DeskEventKind::BotDraftCleared {
                    customer: job.identity_key.clone(),
                });
            }
            return commit(inner, record, out).await;
        }
    };
    let customer = inner
        .store
        .customer(&record.customer)
        .await?
        .unwrap_or_else(|| job.customer.clone());
    match result {
        Ok(CheckedAnswer {
            text,
            handoff: false,
            cited,
        }) => {
            crate::metrics::llm_answer("answered");
            tracing::info!(conversation = %id, ?cited, "LLM answer given");
            record.unresolved_turns = 0;
            record.offered_human = false;
            out.say(&mut record, text, now);
        }
        Ok(_) => {
            // The model asks for a person: the rules choose the queue, as for a customer
            // who asks for one; without such a rule the customer is offered one.
            crate::metrics::llm_answer("handoff");
            let unresolved = record.unresolved_turns + 1;
            record.unresolved_turns = unresolved;
            let rules = ask_rules(
                inner,
                &record,
                &customer,
                &job.analysis,
                HUMAN_REQUEST,
                unresolved,
                None,
            )
            .await;
            if drafted {
                out.events.push(DeskEventKind::BotDraftCleared {
                    customer: job.identity_key.clone(),
                });
            }
            match rules {
                Some(escalation) => {
                    escalate(inner, &mut record, &customer, escalation, &mut out, now).await?
                }
                None => {
                    record.offered_human = true;
                    out.say(&mut record, copy::llm_handoff(), now);
                }
            }
        }
        Err(e) => {
            crate::metrics::llm_answer("fallback");
            tracing::info!(conversation = %id, reason = e.reason(), "LLM gave no usable answer; the local answer instead");
            answer(
                inner,
                &mut record,
                OUT_OF_SCOPE,
                &job.analysis,
                &mut out,
                now,
            )
            .await;
        }
    }
    commit(inner, record, out).await
}

/// The model's checked answer for `job` (streamed on the widget: drafts as they pass).
async fn ask(inner: &Inner, job: &LlmJob, drafted: &mut bool) -> Result<CheckedAnswer, LlmError> {
    let handle = inner.llm.as_ref().ok_or(LlmError::Off)?;
    let passages = job.grounding.passages();
    let input = AnswerInput {
        conversation_id: job.conversation_id.as_str(),
        history: &job.grounding.history,
        customer_message: &job.text,
        customer: &job.grounding.customer,
        shop_data: &job.grounding.shop_data,
        passages: &passages,
    };
    if job.channel != ChannelKind::Web {
        return handle.llm.answer(&handle.prompts, input).await;
    }
    let id = &job.conversation_id;
    handle
        .llm
        .answer_streaming(&handle.prompts, input, |text| {
            *drafted = true;
            inner.emit(
                id,
                DeskEventKind::BotDraft {
                    customer: job.identity_key.clone(),
                    text: text.to_string(),
                },
            );
        })
        .await
}

/// See [`super::Desk::answer_stranded`]: the bot's own answer (the confident passage, or the
/// out-of-scope answer) for each question left waiting for the LLM by a crash.
pub(super) async fn answer_stranded(inner: &Inner) -> Result<usize, DeskError> {
    let mut answered = 0;
    for id in inner.store.awaiting_answers().await? {
        let mut out = Outcome::for_ids(None);
        out.change.awaiting.push((id.clone(), false));
        let Some(first) = inner.store.conversation(&id).await? else {
            inner.store.apply(out.change).await?;
            continue;
        };
        let _guard = inner.lock_customer(&first.identity().key()).await?;
        let Some(mut record) = inner.store.conversation(&id).await? else {
            continue;
        };
        let asked = inner
            .store
            .recent_messages(&id, 1)
            .await?
            .into_iter()
            .filter(|m| m.from == crate::message::Speaker::Customer)
            .find_map(|m| m.analysis);
        if let (Status::Bot, Some(analysis)) = (record.status, asked) {
            answer(
                inner,
                &mut record,
                OUT_OF_SCOPE,
                &analysis,
                &mut out,
                Utc::now(),
            )
            .await;
            answered += 1;
            tracing::info!(conversation = %id, "question left unanswered by a stop answered at start");
        }
        commit(inner, record, out).await?;
    }
    Ok(answered)
}
