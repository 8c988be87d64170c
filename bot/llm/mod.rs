//! The optional LLM layer: an OpenAI-compatible endpoint (`[llm]`, off while `llm.url` is
//! unset) that may propose answers, never show them unchecked.
//!
//! - `client`: the endpoint (timeout, retries honouring `Retry-After`, concurrency slots,
//!   token budgets, streaming, metrics).
//! - `tasks`: what the desk can ask for (the answer task, end to end).
//! - `assist`: what helps the agents: a handoff summary, a draft reply to edit.
//! - `answer`: the answer's strict JSON shape (`answer`, `cited`, `handoff`).
//! - `judge`: the escalation judge (a person or not, for messages the local reading is
//!   unsure about).
//! - `guard`: the guardrails every answer passes before a customer sees it (pure).
//! - `pii`: personal data masked before text leaves the machine, unmasked locally.
//! - `prompts`: the minijinja prompt files, reloaded when they change.
//! - `budget`: tokens per conversation and per day.
//!
//! [`LlmHandle`] is what the rest of the product holds: the client and the prompts.

pub mod answer;
pub mod assist;
pub mod budget;
pub mod client;
pub mod guard;
pub mod judge;
pub mod pii;
pub mod prompts;
pub mod tasks;

pub use answer::{Passage, ProposedAnswer};
pub use assist::{SuggestInput, SummaryInput};
pub use budget::BudgetScope;
pub use client::{Completion, Llm, LlmError, TextStream};
pub use guard::Blocked;
pub use judge::{Judgement, Verdict};
pub use pii::Masking;
pub use prompts::{PromptName, Prompts};
pub use tasks::{AnswerInput, CheckedAnswer, CustomerFacts, Line, Speaker};

use std::sync::Arc;

/// The LLM as the desk and the console hold it: the client and the prompt files.
#[derive(Debug, Clone)]
pub struct LlmHandle {
    pub llm: Arc<Llm>,
    pub prompts: Arc<Prompts>,
}

impl LlmHandle {
    /// The handle for `[llm]`; `None` while `llm.url` is unset (the product runs without).
    pub fn from_config(config: &crate::config::LlmConfig) -> Result<Option<LlmHandle>, LlmError> {
        if !config.enabled() {
            return Ok(None);
        }
        Ok(Some(LlmHandle {
            llm: Arc::new(Llm::new(config)?),
            prompts: Arc::new(Prompts::from_config(config.prompts_dir.as_deref())),
        }))
    }
}
