//! The desk's face to agents (the console calls these): claims, replies, hand-backs,
//! closes, blocks and marks, availability for auto-assignment, search, and the idle
//! watcher's sweep. Each hands over to the module that does the work.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{agent, availability, feedback, idle, presence};
use super::{Availability, Conversation, Desk, DeskError};
use crate::message::ConversationId;

impl Desk {
    /// Whether `agent` is available for auto-assignment.
    pub async fn availability(&self, agent: &str) -> Result<Availability, DeskError> {
        presence::availability(&self.inner, agent).await
    }

    /// `agent` is available (while console session `session` lasts, when given: see
    /// `presence.rs`) or away (their conversations go back to their queues).
    pub async fn set_availability(
        &self,
        agent: &str,
        available: bool,
        session: Option<&str>,
    ) -> Result<Availability, DeskError> {
        availability::set_availability(&self.inner, agent, available, session).await
    }

    /// Agents whose console session ended go away, and waiting conversations nobody was
    /// given are handed out (a background watcher does this every few seconds). Returns who
    /// went away.
    pub async fn check_availability(&self) -> Result<Vec<String>, DeskError> {
        availability::sweep(&self.inner).await
    }

    /// Conversations matching `query` (any agent may search every conversation); a query
    /// with a problem is `Invalid`, with what to change.
    pub async fn search(
        &self,
        query: &crate::store::SearchQuery,
    ) -> Result<crate::store::SearchResults, DeskError> {
        if let Some(problem) = query.problem() {
            return Err(DeskError::Invalid(problem));
        }
        Ok(self.inner.store.search_conversations(query).await?)
    }

    /// An agent takes a waiting conversation, if they have room for one more.
    pub async fn claim(&self, agent: &str, id: &ConversationId) -> Result<Conversation, DeskError> {
        agent::claim(&self.inner, agent, id).await
    }

    /// The owning agent writes to the customer.
    pub async fn agent_reply(
        &self,
        agent: &str,
        id: &ConversationId,
        text: &str,
    ) -> Result<(), DeskError> {
        agent::agent_reply(&self.inner, agent, id, text).await
    }

    /// The owning agent gives the conversation back to the bot.
    pub async fn hand_back(&self, agent: &str, id: &ConversationId) -> Result<(), DeskError> {
        agent::hand_back(&self.inner, agent, id).await
    }

    /// The owning agent checks order `order` with the email or postcode the customer gave
    /// (`proof`); when the shop confirms, the conversation may speak about that order.
    pub async fn verify_customer(
        &self,
        agent: &str,
        id: &ConversationId,
        order: &str,
        proof: &str,
    ) -> Result<(), DeskError> {
        agent::verify_customer(&self.inner, agent, id, order, proof).await
    }

    /// Ends the conversation (one the agent owns, or one still waiting in a queue). The
    /// customer's next message starts a new conversation.
    pub async fn close(&self, agent: &str, id: &ConversationId) -> Result<(), DeskError> {
        agent::close(&self.inner, agent, id).await
    }

    /// Blocks the customer of conversation `id` (see `agent::block_customer`); returns the
    /// customer id.
    pub async fn block_customer(
        &self,
        agent: &str,
        id: &ConversationId,
        reason: &str,
    ) -> Result<String, DeskError> {
        agent::block_customer(&self.inner, agent, id, reason).await
    }

    /// `agent` marks conversation `id` (`feedback.rs`): its escalation needed or not, or a
    /// bot answer wrong (`message`, else the bot's latest answer). Returns its marks.
    pub async fn mark(
        &self,
        agent: &str,
        id: &ConversationId,
        mark: crate::store::MarkKind,
        reason: Option<&str>,
        message: Option<u64>,
    ) -> Result<Vec<crate::store::Mark>, DeskError> {
        feedback::mark(&self.inner, agent, id, mark, reason, message).await
    }

    /// Lets a blocked customer write again.
    pub async fn unblock_customer(&self, agent: &str, customer_id: &str) -> Result<(), DeskError> {
        agent::unblock_customer(&self.inner, agent, customer_id).await
    }

    /// Puts back in their queue the conversations whose agent has not acted for `idle`
    /// while the customer waits for an answer. Returns the conversations moved. (A
    /// background watcher calls it too.)
    pub async fn reassign_idle(
        &self,
        idle: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<ConversationId>, DeskError> {
        idle::reassign_idle(&self.inner, idle, now).await
    }
}
