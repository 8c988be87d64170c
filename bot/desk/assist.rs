//! What helps the agents with a conversation: the LLM's handoff summary (written once the
//! conversation waits for a person, kept on the record, shown in the console above the
//! local summary), a draft reply from the LLM for the agent to edit, and the facts that
//! fill in the lead's canned replies (`canned.rs`, which need no LLM).
//!
//! The LLM is never called under the customer's lock: the facts are gathered and the text
//! written first, then the record is locked, read again and written with the summary.

pub mod canned;

use super::error::DeskError;
use super::grounding;
use super::inner::Inner;
use super::types::DeskEventKind;
use super::Desk;
use crate::llm::{Line, LlmError, Speaker as LlmSpeaker, SuggestInput, SummaryInput};
use crate::message::{ConversationId, Speaker};
use crate::store::Change;
use canned::ReplyFacts;

/// Why no draft reply came.
#[derive(Debug, thiserror::Error)]
pub enum AssistError {
    /// `[llm]` is off.
    #[error(
        "no LLM is configured: set [llm] url (or FRONTDESK_LLM_URL) to an OpenAI-compatible \
         endpoint to get suggested replies; canned replies work without one"
    )]
    NoLlm,
    #[error(transparent)]
    Desk(#[from] DeskError),
    #[error(transparent)]
    Llm(#[from] LlmError),
}

impl Desk {
    /// Has the LLM write the handoff summary of conversation `id` and keeps it on the
    /// conversation (`Conversation::llm_summary`), then tells the live views
    /// (`SummaryWritten`). `Ok(false)` when there is no LLM or it gave no usable summary
    /// (counted in `frontdesk_llm_fallbacks_total`; the local summary stands).
    pub async fn write_llm_summary(&self, id: &ConversationId) -> Result<bool, DeskError> {
        write_summary(&self.inner, id).await
    }

    /// [`Desk::write_llm_summary`] in the background (nothing without an LLM).
    pub fn spawn_llm_summary(&self, id: ConversationId) {
        spawn_summary(&self.inner, id);
    }

    /// A draft of the agent's next reply in conversation `id`, written by the LLM from the
    /// transcript, the shop's data and the help centre; never sent by itself.
    pub async fn suggest_reply(&self, id: &ConversationId) -> Result<String, AssistError> {
        let llm = self.inner.llm.as_ref().ok_or(AssistError::NoLlm)?;
        let g = self.grounding(id, None).await?.ok_or(DeskError::NotFound)?;
        let passages = g.passages();
        let input = SuggestInput {
            history: &g.history,
            customer_message: &g.customer_message,
            customer: &g.customer,
            shop_data: &g.shop_data,
            passages: &passages,
        };
        Ok(llm
            .llm
            .suggest_reply(&llm.prompts, id.as_str(), &input)
            .await?)
    }

    /// What canned replies may say in conversation `id` when agent `agent_name` answers:
    /// the customer's name, the order it is about (only one it may see), its tracking
    /// link (`tracking_url`, `assist.tracking_url`). `None` for an unknown conversation.
    pub async fn reply_facts(
        &self,
        id: &ConversationId,
        agent_name: Option<&str>,
        tracking_url: &str,
    ) -> Result<Option<ReplyFacts>, DeskError> {
        // An empty question: no help-centre search, which canned replies do not need.
        let Some(g) = self.grounding(id, Some("")).await? else {
            return Ok(None);
        };
        Ok(Some(ReplyFacts::new(
            g.customer.name.as_deref(),
            g.order.as_ref(),
            agent_name,
            tracking_url,
        )))
    }
}

/// Writes the LLM's summary of `id` in a task of its own (the caller does not wait for the
/// LLM); failures are logged. Nothing without an LLM.
pub(super) fn spawn_summary(inner: &Inner, id: ConversationId) {
    if inner.llm.is_none() {
        return;
    }
    let Some(inner) = inner.me.upgrade() else {
        return;
    };
    tokio::spawn(async move {
        if let Err(e) = write_summary(&inner, &id).await {
            tracing::warn!(conversation = %id, error = %e, "LLM summary not stored");
        }
    });
}

/// See [`Desk::write_llm_summary`].
pub(super) async fn write_summary(inner: &Inner, id: &ConversationId) -> Result<bool, DeskError> {
    let Some(llm) = inner.llm.as_ref() else {
        return Ok(false);
    };
    let Some(record) = inner.store.conversation(id).await? else {
        return Err(DeskError::NotFound);
    };
    let customer = inner.store.customer(&record.customer).await?;
    let g = grounding::gather(inner, &record, customer.as_ref(), Some(""), None).await?;
    // The grounding keeps the customer's latest message apart when it is the last one;
    // the summary reads the whole conversation.
    let mut conversation: Vec<Line> = g.history.clone();
    let latest_is_customer = inner
        .store
        .recent_messages(id, 1)
        .await?
        .last()
        .is_some_and(|m| matches!(m.from, Speaker::Customer));
    if latest_is_customer && !g.customer_message.is_empty() {
        conversation.push(Line {
            from: LlmSpeaker::Customer,
            text: g.customer_message.clone(),
        });
    }
    let input = SummaryInput {
        conversation: &conversation,
        customer: &g.customer,
        shop_data: &g.shop_data,
    };
    let text = match llm.llm.summarize(&llm.prompts, id.as_str(), &input).await {
        Ok(text) => text,
        // Counted and logged by the task; the local summary stands.
        Err(_) => return Ok(false),
    };
    {
        // The same lock as the customer's turns: the record is read and written whole.
        let _guard = inner.lock_customer(&record.identity().key()).await?;
        let Some(mut record) = inner.store.conversation(id).await? else {
            return Err(DeskError::NotFound);
        };
        record.llm_summary = Some(text);
        inner
            .store
            .apply(Change {
                conversations: vec![record],
                ..Change::default()
            })
            .await?;
        inner.store.flush().await?;
    }
    inner.emit(id, DeskEventKind::SummaryWritten);
    tracing::info!(conversation = %id, "LLM handoff summary written");
    Ok(true)
}
