//! The optional LLM layer: an OpenAI-compatible endpoint (`[llm]`, off while `llm.url` is
//! unset) that may propose answers, never show them unchecked.
//!
//! - `client`: the endpoint (timeout, retries honouring `Retry-After`, concurrency slots,
//!   token budgets, streaming, metrics).
//! - `tasks`: what the desk can ask for (the answer task, end to end).
//! - `answer`: the answer's strict JSON shape (`answer`, `cited`, `handoff`).
//! - `guard`: the guardrails every answer passes before a customer sees it (pure).
//! - `pii`: personal data masked before text leaves the machine, unmasked locally.
//! - `prompts`: the minijinja prompt files, reloaded when they change.
//! - `budget`: tokens per conversation and per day.
//!
//! Not wired into the conversation turn yet: nothing calls [`Llm::answer`] outside tests.

pub mod answer;
pub mod budget;
pub mod client;
pub mod guard;
pub mod pii;
pub mod prompts;
pub mod tasks;

pub use answer::{Passage, ProposedAnswer};
pub use budget::BudgetScope;
pub use client::{Completion, Llm, LlmError, TextStream};
pub use guard::Blocked;
pub use pii::Masking;
pub use prompts::{PromptName, Prompts};
pub use tasks::{AnswerInput, CheckedAnswer, CustomerFacts, Line, Speaker};
