//! The connection to an OpenAI-compatible endpoint: one call bounded by `llm.timeout_ms`
//! (retries and waits included), at most `llm.max_concurrent` calls in flight, retries with
//! exponential backoff that honour a 429's `Retry-After`, token budgets, metrics.
//!
//! Requests and replies are async-openai's types. Streaming goes through async-openai's
//! client. Plain calls are sent with the same `reqwest::Client` (the one handed to
//! async-openai with `with_http_client`) but by us, because async-openai 0.29 retries a 429
//! itself and drops its `Retry-After` header (`retry_after: None` in its `execute_raw`): an
//! endpoint that asks for 3 s would be hit again after its own backoff instead.

use super::budget::{BudgetScope, TokenBudget};
use crate::config::LlmConfig;
use async_openai::config::OpenAIConfig;
use async_openai::types::{
    ChatCompletionStreamOptions, CreateChatCompletionRequest, CreateChatCompletionResponse,
};
use backoff::backoff::Backoff;
use futures::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Why an LLM call gave no usable text.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the LLM layer is off (llm.url is unset)")]
    Off,
    #[error("no answer from the LLM endpoint within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the LLM endpoint: {0}")]
    Unreachable(String),
    #[error("the LLM endpoint is rate limiting: {0}")]
    RateLimited(String),
    #[error("the LLM endpoint failed with HTTP {status}: {message}")]
    Server { status: u16, message: String },
    #[error("the LLM endpoint refused the request with HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the LLM endpoint's reply cannot be read: {0}")]
    BadReply(String),
    #[error("the LLM stream broke: {0}")]
    Stream(String),
    #[error("token budget spent: {0}")]
    BudgetSpent(BudgetScope),
    #[error(transparent)]
    Malformed(#[from] super::answer::MalformedAnswer),
    #[error("answer blocked: {0}")]
    Blocked(super::guard::Blocked),
    #[error(transparent)]
    Prompt(#[from] super::prompts::PromptError),
}

impl LlmError {
    /// The metric label (`frontdesk_llm_errors_total{reason}`, `..._fallbacks_total`).
    pub fn reason(&self) -> &'static str {
        match self {
            LlmError::Off => "off",
            LlmError::Timeout(_) => "timeout",
            LlmError::Unreachable(_) => "unreachable",
            LlmError::RateLimited(_) => "rate_limited",
            LlmError::Server { .. } => "server_error",
            LlmError::Refused { .. } => "refused",
            LlmError::BadReply(_) => "bad_reply",
            LlmError::Stream(_) => "stream",
            LlmError::BudgetSpent(BudgetScope::Conversation) => "budget_conversation",
            LlmError::BudgetSpent(BudgetScope::Day) => "budget_day",
            LlmError::Malformed(_) => "malformed",
            LlmError::Blocked(b) => b.reason(),
            LlmError::Prompt(_) => "prompt",
        }
    }
}

/// The text of one plain call and the tokens it spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub text: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Text deltas as the endpoint sends them.
pub type TextStream = Pin<Box<dyn Stream<Item = Result<String, LlmError>> + Send>>;

/// One attempt's failure: worth another try (after `after`, when the endpoint said), or not.
enum Attempt {
    Retry(LlmError, Option<Duration>),
    Fail(LlmError),
}

/// The LLM endpoint, shared by every conversation (clone the `Arc`).
#[derive(Debug)]
pub struct Llm {
    config: LlmConfig,
    endpoint: String,
    http: reqwest::Client,
    openai: async_openai::Client<OpenAIConfig>,
    timeout: Duration,
    slots: Arc<Semaphore>,
    budget: Arc<TokenBudget>,
    /// Verdicts of the escalation judge and the tokens they cost (for `eval escalation`).
    judged: std::sync::atomic::AtomicU64,
    judge_tokens: std::sync::atomic::AtomicU64,
}

impl Llm {
    /// The client for `config`; `Err(LlmError::Off)` when `llm.url` is unset.
    pub fn new(config: &LlmConfig) -> Result<Llm, LlmError> {
        let url = config
            .url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .ok_or(LlmError::Off)?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .build()
            .map_err(|e| LlmError::Unreachable(e.to_string()))?;
        let mut openai_config = OpenAIConfig::new().with_api_base(url);
        if let Some(key) = &config.api_key {
            openai_config = openai_config.with_api_key(key.expose());
        }
        let openai =
            async_openai::Client::with_config(openai_config).with_http_client(http.clone());
        Ok(Llm {
            config: config.clone(),
            endpoint: format!("{url}/chat/completions"),
            http,
            openai,
            timeout,
            slots: Arc::new(Semaphore::new(config.max_concurrent)),
            budget: Arc::new(TokenBudget::new(
                config.tokens_per_conversation,
                config.tokens_per_day,
            )),
            judged: Default::default(),
            judge_tokens: Default::default(),
        })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Counts one verdict of the escalation judge and its tokens.
    pub fn count_judged(&self, tokens: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.judged.fetch_add(1, Relaxed);
        self.judge_tokens.fetch_add(tokens, Relaxed);
    }

    /// Verdicts of the escalation judge so far, and the tokens they cost.
    pub fn judged(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.judged.load(Relaxed), self.judge_tokens.load(Relaxed))
    }

    /// Tokens `conversation` has spent today.
    pub fn tokens_spent(&self, conversation: &str) -> u64 {
        self.budget.spent_by(conversation)
    }

    /// One plain (non-streaming) call for `conversation`, retried on 429, 5xx and failed
    /// connections; at most `llm.timeout_ms` in all.
    pub async fn complete(
        &self,
        conversation: &str,
        mut request: CreateChatCompletionRequest,
    ) -> Result<Completion, LlmError> {
        let started = Instant::now();
        request.stream = None;
        request.stream_options = None;
        let result = self
            .complete_within(conversation, &request, started + self.timeout)
            .await;
        crate::metrics::llm_latency("complete", started.elapsed());
        match &result {
            Ok(c) => crate::metrics::llm_tokens(c.prompt_tokens, c.completion_tokens),
            Err(e) => crate::metrics::llm_error(e.reason()),
        }
        result
    }

    async fn complete_within(
        &self,
        conversation: &str,
        request: &CreateChatCompletionRequest,
        deadline: Instant,
    ) -> Result<Completion, LlmError> {
        self.budget
            .check(conversation)
            .map_err(LlmError::BudgetSpent)?;
        let _slot = tokio::time::timeout_at(deadline.into(), self.slots.acquire())
            .await
            .map_err(|_| LlmError::Timeout(self.timeout))?
            .expect("the semaphore is never closed");
        let mut backoff = backoff::ExponentialBackoff {
            initial_interval: Duration::from_millis(200),
            max_interval: Duration::from_secs(4),
            max_elapsed_time: None,
            ..Default::default()
        };
        backoff.reset();
        let mut retries = 0;
        loop {
            let attempt = tokio::time::timeout_at(deadline.into(), self.send(request))
                .await
                .map_err(|_| LlmError::Timeout(self.timeout))?;
            let (error, after) = match attempt {
                Ok(completion) => {
                    let tokens = completion.prompt_tokens + completion.completion_tokens;
                    self.budget.record(conversation, tokens);
                    return Ok(completion);
                }
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Retry(error, after)) => (error, after),
            };
            if retries >= self.config.max_retries {
                return Err(error);
            }
            // The endpoint's Retry-After wins; our backoff only when it named none.
            let wait = after
                .unwrap_or_else(|| backoff.next_backoff().unwrap_or(Duration::from_millis(200)));
            if Instant::now() + wait >= deadline {
                // Waiting would outlast the call's time: give up now, not at the deadline.
                return Err(error);
            }
            tracing::debug!(error = %error, wait_ms = wait.as_millis() as u64, "LLM call retried");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    async fn send(&self, request: &CreateChatCompletionRequest) -> Result<Completion, Attempt> {
        let mut call = self.http.post(&self.endpoint).json(request);
        if let Some(key) = &self.config.api_key {
            call = call.bearer_auth(key.expose());
        }
        let response = call.send().await.map_err(|e| {
            Attempt::Retry(LlmError::Unreachable(e.without_url().to_string()), None)
        })?;
        let status = response.status();
        if status.is_success() {
            let reply: CreateChatCompletionResponse = response
                .json()
                .await
                .map_err(|e| Attempt::Fail(LlmError::BadReply(e.without_url().to_string())))?;
            let text = reply
                .choices
                .into_iter()
                .next()
                .and_then(|c| c.message.content)
                .ok_or_else(|| Attempt::Fail(LlmError::BadReply("no message content".into())))?;
            let (prompt_tokens, completion_tokens) = reply
                .usage
                .map(|u| (u64::from(u.prompt_tokens), u64::from(u.completion_tokens)))
                .unwrap_or((0, 0));
            return Ok(Completion {
                text,
                prompt_tokens,
                completion_tokens,
            });
        }
        let after = retry_after(response.headers());
        let message: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        let code = status.as_u16();
        Err(if code == 429 {
            // 429 also means "quota exhausted", which no wait cures.
            if message.contains("insufficient_quota") {
                Attempt::Fail(LlmError::RateLimited(message))
            } else {
                Attempt::Retry(LlmError::RateLimited(message), after)
            }
        } else if status.is_server_error() {
            Attempt::Retry(
                LlmError::Server {
                    status: code,
                    message,
                },
                after,
            )
        } else {
            Attempt::Fail(LlmError::Refused {
                status: code,
                message,
            })
        })
    }

    /// A streaming call for `conversation`: text deltas as they arrive. Each delta must come
    /// within `llm.timeout_ms` of the one before (or of the start); the slot is held until
    /// the stream ends or is dropped. Not retried: a stream that broke has already shown
    /// text. Tokens are counted from the final usage chunk (asked for with
    /// `stream_options.include_usage`), or estimated (4 characters a token) without one.
    pub async fn stream(
        &self,
        conversation: &str,
        mut request: CreateChatCompletionRequest,
    ) -> Result<TextStream, LlmError> {
        let started = Instant::now();
        if let Err(scope) = self.budget.check(conversation) {
            crate::metrics::llm_error(LlmError::BudgetSpent(scope).reason());
            return Err(LlmError::BudgetSpent(scope));
        }
        let slot = tokio::time::timeout(self.timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| LlmError::Timeout(self.timeout))?
            .expect("the semaphore is never closed");
        request.stream = Some(true);
        request.stream_options = Some(ChatCompletionStreamOptions {
            include_usage: true,
        });
        let inner = self
            .openai
            .chat()
            .create_stream(request)
            .await
            .map_err(|e| LlmError::Stream(e.to_string()))?;
        let state = StreamState {
            inner,
            _slot: slot,
            budget: self.budget.clone(),
            conversation: conversation.to_string(),
            timeout: self.timeout,
            started,
            usage: None,
            chars: 0,
            done: false,
        };
        Ok(Box::pin(state.into_stream()))
    }
}

/// What a running stream holds: its slot, and the budget its tokens are counted against.
struct StreamState {
    inner: async_openai::types::ChatCompletionResponseStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
    budget: Arc<TokenBudget>,
    conversation: String,
    timeout: Duration,
    started: Instant,
    usage: Option<(u64, u64)>,
    chars: usize,
    done: bool,
}

impl StreamState {
    fn into_stream(self) -> impl Stream<Item = Result<String, LlmError>> + Send + 'static {
        futures::stream::unfold(self, |mut state| async move {
            if state.done {
                return None;
            }
            loop {
                match tokio::time::timeout(state.timeout, state.inner.next()).await {
                    Err(_) => {
                        state.done = true;
                        let error = LlmError::Timeout(state.timeout);
                        crate::metrics::llm_error(error.reason());
                        return Some((Err(error), state));
                    }
                    Ok(None) => {
                        state.finish();
                        return None;
                    }
                    Ok(Some(Err(e))) => {
                        state.done = true;
                        let error = LlmError::Stream(e.to_string());
                        crate::metrics::llm_error(error.reason());
                        return Some((Err(error), state));
                    }
                    Ok(Some(Ok(chunk))) => {
                        if let Some(u) = chunk.usage {
                            state.usage =
                                Some((u64::from(u.prompt_tokens), u64::from(u.completion_tokens)));
                        }
                        let delta: String = chunk
                            .choices
                            .into_iter()
                            .filter_map(|c| c.delta.content)
                            .collect();
                        if !delta.is_empty() {
                            state.chars += delta.chars().count();
                            return Some((Ok(delta), state));
                        }
                    }
                }
            }
        })
    }

    fn finish(&mut self) {
        self.done = true;
        let (prompt, completion) = self.usage.unwrap_or((0, (self.chars as u64).div_ceil(4)));
        self.budget.record(&self.conversation, prompt + completion);
        crate::metrics::llm_tokens(prompt, completion);
        crate::metrics::llm_latency("stream", self.started.elapsed());
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and read as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(reqwest::header::RETRY_AFTER, "0.5".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(500)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn the_llm_is_off_without_a_url() {
        assert!(matches!(
            Llm::new(&LlmConfig::default()),
            Err(LlmError::Off)
        ));
    }
}
