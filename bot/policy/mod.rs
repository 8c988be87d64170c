//! Escalation rules: what a support lead writes in `rules.toml`, and the pure decision that
//! turns one customer turn (analysis, history, profile) into "the bot answers" or "this
//! conversation goes to that queue with that priority, because these rules fired".

use crate::nlu::{Analysis, Stake};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

mod conditions;
pub mod hours;
mod rules_file;
use conditions::fires;
pub use conditions::{ELSEWHERE_AT_LEAST, NEGATIVE_NEEDS_UPSET};
pub use hours::{BusinessHours, HoursError, HoursSpec};
pub use rules_file::RulesError;

/// A human queue as the rules file declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Target waiting time; entries past it are shown as breaching the SLA.
    pub sla_secs: u64,
    #[serde(default)]
    pub description: Option<String>,
    /// At most this many customers wait here; when it is full, the bot keeps the customer
    /// and says so (a flood cannot bury the people already waiting).
    #[serde(default = "default_max_waiting")]
    pub max_waiting: usize,
    /// When its people work (`[queues.NAME.hours]`, see `hours.rs`); `None`: always open, and
    /// business time is wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<BusinessHours>,
}

impl QueueSpec {
    /// Whether its people work at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.hours.as_ref().is_none_or(|h| h.is_open(at))
    }

    /// `at` when open, else its next opening (None when it never opens).
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.hours {
            Some(h) => h.next_open(at),
            None => Some(at),
        }
    }

    /// Seconds of opening time between `from` and `to`: what its SLA counts.
    pub fn business_secs_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        match &self.hours {
            Some(h) => h.business_secs_between(from, to),
            None => (to - from).num_seconds().max(0),
        }
    }
}

fn default_max_waiting() -> usize {
    500
}

/// What a rule looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Negative-sentiment probability of this one message >= at_least.
    NegativeMessage {
        at_least: f32,
    },
    /// Mean negative probability over the last `window` customer messages >= at_least.
    NegativeTrend {
        window: usize,
        at_least: f32,
    },
    /// Anger probability of this message >= at_least (and, when given, its negative
    /// probability >= negative_at_least: the anger head was trained without a neutral
    /// class, so plain requests can score high on anger alone).
    Anger {
        at_least: f32,
        negative_at_least: Option<f32>,
    },
    /// The customer's tier is one of these.
    Tier {
        tiers: Vec<String>,
    },
    LifetimeValue {
        at_least: f64,
    },
    /// The order under discussion is worth at least this much.
    OrderValue {
        at_least: f64,
    },
    /// The customer asks for a person (by default the `contact_human_agent` intent).
    HumanRequest {
        intents: Vec<String>,
    },
    /// This many turns the bot could not resolve (out of scope, unknown order...).
    RepeatedFailure {
        count: u32,
    },
    /// One of these words or phrases appears (case-insensitive, whole words), in the role
    /// `meaning` asks for (none: as written).
    Keywords {
        words: Vec<String>,
        meaning: Option<Meaning>,
    },
    /// The stakes head reads one of `kinds` (every stake when empty) in this message with
    /// at least this probability: what a person must see whatever the tone.
    Stakes {
        kinds: Vec<Stake>,
        at_least: f32,
    },
    /// The order under discussion is large (worth `value_at_least`, or `units_at_least`
    /// items; either is enough) and this message reports a problem with it: "half my order is
    /// missing" is a business stake on an order of 240 chairs.
    LargeOrderProblem {
        value_at_least: Option<f64>,
        units_at_least: Option<u32>,
    },
    /// The LLM judge, asked about a message the local stakes reading is unsure about, says a
    /// person should see the conversation (only with `[llm]` and `llm.judge_ms` > 0).
    LlmJudge,
    /// The conversation's frustration score (`desk/frustration.rs`: this message, repeats,
    /// sarcasm, shouting, contacts, waiting, failures) >= at_least.
    Frustration {
        at_least: f32,
    },
    /// This message's frustration head: `angry` >= angry_at_least, or `upset` (frustrated +
    /// angry) >= upset_at_least; either one given is enough.
    MessageFrustration {
        angry_at_least: Option<f32>,
        upset_at_least: Option<f32>,
    },
    /// The turn's intent is one of these (e.g. `complaint`, `threat_to_escalate`).
    Intent {
        intents: Vec<String>,
    },
}

impl Condition {
    fn name(&self) -> &'static str {
        match self {
            Condition::NegativeMessage { .. } => "negative_message",
            Condition::NegativeTrend { .. } => "negative_trend",
            Condition::Anger { .. } => "anger",
            Condition::Tier { .. } => "tier",
            Condition::LifetimeValue { .. } => "lifetime_value",
            Condition::OrderValue { .. } => "order_value",
            Condition::HumanRequest { .. } => "human_request",
            Condition::RepeatedFailure { .. } => "repeated_failure",
            Condition::Keywords { .. } => "keywords",
            Condition::Frustration { .. } => "frustration",
            Condition::MessageFrustration { .. } => "message_frustration",
            Condition::Intent { .. } => "intent",
            Condition::Stakes { .. } => "stakes",
            Condition::LargeOrderProblem { .. } => "large_order_problem",
            Condition::LlmJudge => "llm_judge",
        }
    }
}

/// What a keyword must mean in the message before its rule fires (`meaning` in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Meaning {
    /// A threat or a complaint: the word fires unless the message reads with confidence as
    /// a routine question or as aimed elsewhere, with no stake, no upset and no threat or
    /// complaint intent. "is a chargeback the same as a refund?" and "my bank is useless,
    /// they blocked my card" are the words in another role.
    Threat,
    /// A request for a person, not someone described: "I'm a store manager, do you do trade
    /// prices?" and "my agent will collect it" name a job, not whom the customer asks for.
    Request,
}

/// `escalate`: firing sends the conversation to the rule's queue. `boost`: firing only adds
/// the rule's priority when some escalating rule fires too (a VIP who is angry goes first;
/// a VIP asking for delivery times still gets the bot's instant answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Escalate,
    Boost,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub condition: Condition,
    pub effect: Effect,
    /// Required for `escalate` rules.
    pub queue: Option<String>,
    pub priority: i64,
    /// When set, the rule applies only to these customers (`only_for` in the file).
    pub only_for: Option<Audience>,
}

/// Which customers a rule applies to: a tier in `tiers`, or a lifetime value of at least
/// `lifetime_value_at_least` (either is enough).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default)]
    pub tiers: Vec<String>,
    #[serde(default)]
    pub lifetime_value_at_least: Option<f64>,
}

impl Audience {
    /// What made this customer one of the audience ("tier gold", "lifetime value 1450"),
    /// or None.
    pub fn admits(&self, tier: Option<&str>, lifetime_value: Option<f64>) -> Option<String> {
        if let Some(t) = tier.map(str::to_lowercase) {
            if self.tiers.contains(&t) {
                return Some(format!("tier {t}"));
            }
        }
        match (lifetime_value, self.lifetime_value_at_least) {
            (Some(v), Some(min)) if v >= min => Some(format!("lifetime value {v}")),
            _ => None,
        }
    }
}

/// The validated rules file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub queues: BTreeMap<String, QueueSpec>,
    pub rules: Vec<Rule>,
}

/// Why a conversation was escalated: one fired rule with the observed value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationReason {
    pub rule: String,
    /// The condition kind (`anger`, `tier`, `keywords`...).
    pub when: String,
    /// What was observed (a probability, a tier, the matched word...).
    pub value: Value,
    /// What the rule asks for.
    pub threshold: Value,
    pub effect: Effect,
    pub priority: i64,
    /// More for the agent: the frustration score's reasons ("third time asking"), what made
    /// the customer one of an `only_for` rule's audience ("tier gold").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// The outcome when at least one escalating rule fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub queue: String,
    pub priority: i64,
    pub reasons: Vec<EscalationReason>,
}

/// One customer turn as the policy sees it.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    pub analysis: &'a Analysis,
    /// The intent the turn is taken as (a "yes" to the bot's offer of a human counts as
    /// `contact_human_agent`).
    pub intent: &'a str,
    /// Negative probabilities of the customer's messages, oldest first, this one last.
    pub negative_history: &'a [f32],
    pub tier: Option<&'a str>,
    pub lifetime_value: Option<f64>,
    pub order_value: Option<f64>,
    /// How many items the order under discussion holds (quantities added up).
    pub order_units: Option<u32>,
    /// Unresolved turns so far, this one included.
    pub unresolved_turns: u32,
    /// The conversation's frustration score (0..1) after this message, and its reasons.
    pub frustration: f32,
    pub frustration_reasons: &'a [String],
    /// This message's tone is aimed at something other than the shop (the customer's day,
    /// themselves: "my kids are driving me mad today"): `negative_message` and the `upset` of
    /// `message_frustration` do not fire on it.
    pub aimed_elsewhere: bool,
    /// This message acknowledges the bot's answer ("oh ok, so it's just a bit delayed"): the
    /// same two do not fire on it (the words of the problem are in it, the complaint is not).
    pub acknowledgement: bool,
    /// The first message about a late parcel, told with mild impatience (the stakes head),
    /// before the bot has looked the order up: the tone rules wait for the bot's answer.
    pub awaiting_look_up: bool,
    /// What the LLM judge said when it was asked and wants a person (else `None`).
    pub judge: Option<JudgeSaid<'a>>,
}

/// The LLM judge's verdict for a person: the stakes it saw and its one line.
#[derive(Debug, Clone, Copy)]
pub struct JudgeSaid<'a> {
    pub stakes: &'a [String],
    pub reason: &'a str,
}

impl Situation<'_> {
    /// Whether this message's tone may be read as a complaint about the shop.
    fn tone_counts(&self) -> bool {
        !self.aimed_elsewhere && !self.acknowledgement && !self.awaiting_look_up
    }
}

/// Decides whether this turn goes to a human. The queue is that of the highest-priority
/// escalating rule; the priority is that rule's plus every boost that fired.
pub fn decide(rules: &Rules, s: &Situation) -> Option<Escalation> {
    let mut reasons = Vec::new();
    let mut best: Option<(&Rule, i64)> = None;
    let mut boost = 0;
    for rule in &rules.rules {
        let audience = match &rule.only_for {
            Some(a) => match a.admits(s.tier, s.lifetime_value) {
                Some(why) => Some(why),
                None => continue,
            },
            None => None,
        };
        let Some((value, threshold)) = fires(&rule.condition, s) else {
            continue;
        };
        let mut details = Vec::new();
        if matches!(rule.condition, Condition::Frustration { .. }) {
            details.extend(s.frustration_reasons.iter().cloned());
        }
        details.extend(audience);
        reasons.push(EscalationReason {
            rule: rule.name.clone(),
            when: rule.condition.name().to_string(),
            value,
            threshold,
            effect: rule.effect,
            priority: rule.priority,
            details,
        });
        match rule.effect {
            Effect::Boost => boost += rule.priority,
            Effect::Escalate => {
                if best.is_none_or(|(_, p)| rule.priority > p) {
                    best = Some((rule, rule.priority));
                }
            }
        }
    }
    let (rule, priority) = best?;
    Some(Escalation {
        queue: rule.queue.clone().expect("escalate rules name a queue"),
        priority: priority + boost,
        reasons,
    })
}
