//! `[llm]`: the optional OpenAI-compatible endpoint and what the product may ask of it.

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The optional LLM layer (`bot/llm/`): an OpenAI-compatible endpoint used only where the
/// desk asks for it, behind guardrails. Off while `url` is unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// Base URL of the endpoint, with `/v1` (as async-openai takes it). Unset: no LLM.
    pub url: Option<String>,
    /// Model name sent with each request.
    pub model: String,
    /// Bearer key for the endpoint; never logged (its `Debug` is redacted).
    pub api_key: Option<ApiKey>,
    /// Longest one call may take, retries and waits included (at most 15000).
    pub timeout_ms: u64,
    /// Further tries after a 429, a 5xx or a failed connection.
    pub max_retries: u32,
    /// Calls in flight at once; more wait for a free slot.
    pub max_concurrent: usize,
    /// Tokens (prompt + completion) one conversation may spend.
    pub tokens_per_conversation: u64,
    /// Tokens all conversations together may spend per UTC day.
    pub tokens_per_day: u64,
    /// Replace emails, phone numbers, card numbers and street addresses with placeholders
    /// before any text leaves the machine.
    pub mask_personal_data: bool,
    /// The only link prefixes an answer may contain.
    pub link_allow_list: Vec<String>,
    /// Longest answer a customer may be shown, in characters.
    pub max_answer_chars: usize,
    /// The least help-centre score (`kb` scoring) a question's best passage needs before it
    /// goes to the LLM: a question about nothing the shop wrote down costs no tokens.
    pub min_passage_score: f32,
    /// Folder with `system.md`, `answer.md`, `summary.md`, `suggest_reply.md`,
    /// `escalation_judge.md` (minijinja), reloaded when they change. Unset: the prompts built
    /// into the binary.
    pub prompts_dir: Option<PathBuf>,
    /// The escalation judge (`bot/llm/judge.rs`): for a message the local stakes reading is
    /// unsure about and the rules keep with the bot, the LLM is asked whether a person should
    /// see it, within this many milliseconds of the turn (then the local decision stands).
    /// 0: no judge.
    pub judge_ms: u64,
}

/// A secret that prints as `[redacted]` in `Debug`, so logging a config never leaks it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    /// The key itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// The most `llm.timeout_ms` may be: a customer should not wait longer for the bot.
pub const LLM_MAX_TIMEOUT_MS: u64 = 15_000;

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            url: None,
            model: "gpt-4o-mini".into(),
            api_key: None,
            timeout_ms: 12_000,
            max_retries: 2,
            max_concurrent: 4,
            tokens_per_conversation: 4_000,
            tokens_per_day: 200_000,
            mask_personal_data: true,
            link_allow_list: vec!["https://shop.example/".into()],
            max_answer_chars: 1_200,
            min_passage_score: 0.35,
            prompts_dir: None,
            judge_ms: 1_500,
        }
    }
}

impl LlmConfig {
    /// Whether the LLM layer is on (`url` set).
    pub fn enabled(&self) -> bool {
        self.url.as_deref().is_some_and(|u| !u.trim().is_empty())
    }

    /// The `[llm]` checks, run with [`Config`]'s own validation.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: format!("llm.{key}"),
            message: message.into(),
        };
        if let Some(url) = self.url.as_deref().filter(|u| !u.trim().is_empty()) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("url", "must start with http:// or https://"));
            }
            if self.model.trim().is_empty() {
                return Err(invalid("model", "must name a model when llm.url is set"));
            }
        }
        if self.timeout_ms == 0 || self.timeout_ms > LLM_MAX_TIMEOUT_MS {
            return Err(invalid("timeout_ms", "must be between 1 and 15000"));
        }
        if self.judge_ms > self.timeout_ms {
            return Err(invalid(
                "judge_ms",
                "must be at most llm.timeout_ms (0 turns the judge off)",
            ));
        }
        if self.max_concurrent == 0 {
            return Err(invalid("max_concurrent", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.min_passage_score) {
            return Err(invalid("min_passage_score", "must be between 0 and 1"));
        }
        if self.max_answer_chars == 0 {
            return Err(invalid("max_answer_chars", "must be at least 1"));
        }
        if self
            .link_allow_list
            .iter()
            .any(|l| !l.starts_with("https://") && !l.starts_with("http://"))
        {
            return Err(invalid(
                "link_allow_list",
                "entries must start with https:// or http://",
            ));
        }
        Ok(())
    }
}
