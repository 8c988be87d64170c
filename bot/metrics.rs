//! `/metrics` in Prometheus text: messages received, replies, escalations, queue depth and
//! reply latency. One process-wide recorder (the `metrics` facade is global), shared by every
//! server started in the process, so tests that start several servers still see counts.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

pub const RECEIVED: &str = "frontdesk_messages_received_total";
pub const REJECTED: &str = "frontdesk_messages_rejected_total";
pub const BOT_REPLIES: &str = "frontdesk_bot_replies_total";
pub const AGENT_REPLIES: &str = "frontdesk_agent_replies_total";
pub const RULES_VERSION: &str = "frontdesk_rules_version";
pub const RULES_REFUSED: &str = "frontdesk_rules_refused_total";
pub const CONFIG_VERSION: &str = "frontdesk_config_version";
pub const CONFIG_REFUSED: &str = "frontdesk_config_refused_total";
pub const ESCALATIONS: &str = "frontdesk_escalations_total";
pub const QUEUE_DEPTH: &str = "frontdesk_queue_depth";
pub const REPLY_LATENCY: &str = "frontdesk_reply_latency_seconds";
pub const WIDGET_SOCKETS: &str = "frontdesk_widget_sockets_open";
pub const LIMITED: &str = "frontdesk_limited_total";
/// Connections closed as soon as they were accepted, by `reason` (`per_address`: the
/// client address held `limits.connections_per_ip` connections already).
pub const CONNECTIONS_REFUSED: &str = "frontdesk_connections_refused_total";
/// Guesses refused, by `what`: `link_code` (a wrong /link code), `order_check` (a wrong
/// email or postcode for an order), `order_check_locked` (a check of an order whose checks
/// are paused).
pub const GUESSES: &str = "frontdesk_guesses_refused_total";
/// Each KPI of the last `kpis.metrics_window_hours` (`crate::kpis`), by `kpi`, `queue`
/// (`all` for the whole desk) and `window`; its sample size in [`KPI_SAMPLES`].
pub const KPI: &str = "frontdesk_kpi";
pub const KPI_SAMPLES: &str = "frontdesk_kpi_samples";
/// The escalation rate of each rule over the same window.
pub const KPI_ESCALATION_BY_RULE: &str = "frontdesk_kpi_escalation_rate_by_rule";

/// Latency buckets from 1 ms to 10 s: replies should sit in the low tens of milliseconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use. When another
/// recorder is already global (an embedding program installed its own) the handle still
/// renders, only empty.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REPLY_LATENCY.into()), LATENCY_BUCKETS)
                .expect("latency buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(RECEIVED, "Customer messages received, by channel.");
    metrics::describe_counter!(
        GUESSES,
        "Wrong link codes and order checks refused, by what was guessed."
    );
    metrics::describe_counter!(
        REJECTED,
        "Customer messages refused (invalid or busy), by reason."
    );
    metrics::describe_counter!(BOT_REPLIES, "Bot replies sent, by channel.");
    metrics::describe_gauge!(
        KPI,
        "Each KPI over the last kpis.metrics_window_hours, by kpi and queue (formulas: GET /api/v1/kpis)."
    );
    metrics::describe_gauge!(KPI_SAMPLES, "How many cases each KPI counts.");
    metrics::describe_gauge!(
        KPI_ESCALATION_BY_RULE,
        "Share of the window's conversations each rule sent to a queue."
    );
    metrics::describe_counter!(AGENT_REPLIES, "Agent replies sent.");
    metrics::describe_gauge!(
        RULES_VERSION,
        "The version of the escalation rules in force."
    );
    metrics::describe_counter!(
        RULES_REFUSED,
        "Changes of the rules file refused (invalid); the version in force stayed."
    );
    metrics::describe_gauge!(
        CONFIG_VERSION,
        "The version in force of each watched configuration, by kind (rules, intents, canned, prompts, help_centre)."
    );
    metrics::describe_counter!(
        CONFIG_REFUSED,
        "Configuration changes refused (invalid), by kind; the version in force stayed."
    );
    metrics::describe_counter!(
        ESCALATIONS,
        "Conversations placed in a human queue, by queue."
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Customers waiting, by queue.");
    metrics::describe_histogram!(
        REPLY_LATENCY,
        metrics::Unit::Seconds,
        "From receiving a message to having stored and answered it, by channel."
    );
    metrics::describe_gauge!(WIDGET_SOCKETS, "Open widget WebSocket connections.");
    metrics::describe_counter!(
        LIMITED,
        "Requests, frames and sockets refused or closed by the abuse limits, by reason."
    );
    metrics::describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections closed as soon as accepted, by reason (per_address: the address holds its most)."
    );
    metrics::describe_counter!(LLM_TOKENS, "Tokens spent by the LLM, by kind.");
    metrics::describe_histogram!(LLM_LATENCY, "LLM calls, seconds, by mode.");
    metrics::describe_counter!(LLM_ERRORS, "Failed LLM calls, by reason.");
    metrics::describe_counter!(
        LLM_FALLBACKS,
        "LLM answers not used (an error or a guardrail), by reason."
    );
    metrics::describe_counter!(
        LLM_ANSWERS,
        "Questions handed to the LLM, by outcome (answered, handoff, fallback, dropped)."
    );
    metrics::describe_counter!(
        LLM_JUDGE,
        "Messages put to the escalation judge, by verdict (person, bot, none: no verdict in time)."
    );
}

/// Drains histogram buckets now and then so memory stays bounded between scrapes.
pub fn spawn_upkeep(handle: PrometheusHandle, mut stop: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = tick.tick() => handle.run_upkeep(),
                _ = stop.changed() => break,
            }
        }
    });
}

/// One customer message handled: counted with its latency and replies.
pub fn message_handled(channel: &'static str, elapsed: Duration, replies: usize) {
    metrics::counter!(RECEIVED, "channel" => channel).increment(1);
    metrics::counter!(BOT_REPLIES, "channel" => channel).increment(replies as u64);
    metrics::histogram!(REPLY_LATENCY, "channel" => channel).record(elapsed.as_secs_f64());
}

pub fn link_code_refused() {
    metrics::counter!(GUESSES, "what" => "link_code").increment(1);
}

pub fn guess_refused(what: &'static str) {
    metrics::counter!(GUESSES, "what" => what).increment(1);
}

pub fn message_rejected(reason: &'static str) {
    metrics::counter!(REJECTED, "reason" => reason).increment(1);
}

pub fn escalated(queue: &str) {
    metrics::counter!(ESCALATIONS, "queue" => queue.to_string()).increment(1);
}

/// The version of `kind` in force (the rules also under their own older name).
pub fn config_version(kind: &'static str, id: u64) {
    metrics::gauge!(CONFIG_VERSION, "kind" => kind).set(id as f64);
    if kind == "rules" {
        metrics::gauge!(RULES_VERSION).set(id as f64);
    }
}

/// A change of `kind` refused.
pub fn config_refused(kind: &'static str) {
    metrics::counter!(CONFIG_REFUSED, "kind" => kind).increment(1);
    if kind == "rules" {
        metrics::counter!(RULES_REFUSED).increment(1);
    }
}

/// One KPI figure; a figure without a value (no case counted) is shown as NaN, which
/// Prometheus reads as "no data".
pub fn kpi(kpi: &str, queue: &str, window: &str, value: Option<f64>, n: usize) {
    let labels = [
        ("kpi", kpi.to_string()),
        ("queue", queue.to_string()),
        ("window", window.to_string()),
    ];
    metrics::gauge!(KPI, &labels).set(value.unwrap_or(f64::NAN));
    metrics::gauge!(KPI_SAMPLES, &labels).set(n as f64);
}

pub fn kpi_escalation_by_rule(rule: &str, window: &str, value: Option<f64>) {
    let labels = [("rule", rule.to_string()), ("window", window.to_string())];
    metrics::gauge!(KPI_ESCALATION_BY_RULE, &labels).set(value.unwrap_or(f64::NAN));
}

pub fn agent_replied() {
    metrics::counter!(AGENT_REPLIES).increment(1);
}

pub fn queue_depth(queue: &str, depth: usize) {
    metrics::gauge!(QUEUE_DEPTH, "queue" => queue.to_string()).set(depth as f64);
}

pub fn widget_socket(delta: f64) {
    metrics::gauge!(WIDGET_SOCKETS).increment(delta);
}

/// One refusal (or idle socket closed) by the abuse limits; `reason` as in
/// `server::limits::Reason::label`, or `idle_socket`.
pub fn limited(reason: &'static str) {
    metrics::counter!(LIMITED, "reason" => reason).increment(1);
}

/// One connection closed at accept (`server::accept`); `reason` as in
/// [`CONNECTIONS_REFUSED`].
pub fn connection_refused(reason: &'static str) {
    metrics::counter!(CONNECTIONS_REFUSED, "reason" => reason).increment(1);
}

/// Repeated inbound messages (same channel message id) answered from their first outcome.
pub const INBOUND_DUPLICATES: &str = "frontdesk_inbound_duplicates_total";

pub fn inbound_duplicate(channel: &str) {
    metrics::counter!(INBOUND_DUPLICATES, "channel" => channel.to_string()).increment(1);
}

/// Tokens spent by the LLM layer, by `kind` (`prompt`, `completion`).
pub const LLM_TOKENS: &str = "frontdesk_llm_tokens_total";
/// One LLM call, from asking to the last byte (retries included), by `mode`.
pub const LLM_LATENCY: &str = "frontdesk_llm_latency_seconds";
/// LLM calls that failed, by `reason` (`timeout`, `unreachable`, `rate_limited`, ...).
pub const LLM_ERRORS: &str = "frontdesk_llm_errors_total";
/// Times the bot fell back to its own answer instead of the LLM's, by `reason` (an error or
/// a guardrail).
pub const LLM_FALLBACKS: &str = "frontdesk_llm_fallbacks_total";
/// Questions handed to the LLM, by `outcome` (`answered`, `handoff`, `fallback`, `dropped`).
pub const LLM_ANSWERS: &str = "frontdesk_llm_answers_total";
/// Messages put to the escalation judge, by `verdict` (`person`, `bot`, `none`).
pub const LLM_JUDGE: &str = "frontdesk_llm_judge_total";

pub fn llm_judge(verdict: &'static str) {
    metrics::counter!(LLM_JUDGE, "verdict" => verdict).increment(1);
}

pub fn llm_tokens(prompt: u64, completion: u64) {
    metrics::counter!(LLM_TOKENS, "kind" => "prompt").increment(prompt);
    metrics::counter!(LLM_TOKENS, "kind" => "completion").increment(completion);
}

pub fn llm_latency(mode: &'static str, elapsed: Duration) {
    metrics::histogram!(LLM_LATENCY, "mode" => mode).record(elapsed.as_secs_f64());
}

pub fn llm_error(reason: &'static str) {
    metrics::counter!(LLM_ERRORS, "reason" => reason).increment(1);
}

/// What became of a question handed to the LLM: `answered`, `handoff`, `fallback` (the
/// local answer instead), `dropped` (the conversation left the bot meanwhile).
pub fn llm_answer(outcome: &'static str) {
    metrics::counter!(LLM_ANSWERS, "outcome" => outcome).increment(1);
}

pub fn llm_fallback(reason: &'static str) {
    metrics::counter!(LLM_FALLBACKS, "reason" => reason).increment(1);
}
