//! The handoff summary an agent reads before the transcript: what the customer wants, what
//! the bot tried, the order numbers, how the mood went, and why the conversation reached a
//! person. Built from what the desk already knows (the NLU's annotations, the slots, the
//! rules' reasons): no LLM, nothing leaves the machine, and the customer never waits for it.

use serde::{Deserialize, Serialize};

use crate::message::Speaker;
use crate::nlu::{EntityKind, OUT_OF_SCOPE};
use crate::policy::{Effect, EscalationReason};
use crate::store::StoredMessage;

/// Intents that say nothing about what the customer wants.
const SMALL_TALK: &[&str] = &["greet", "thanks", "goodbye", OUT_OF_SCOPE];

/// How much of a message the summary quotes.
const QUOTE_CHARS: usize = 140;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffSummary {
    /// The customer's requests, newest last ("track order", "get refund").
    pub wants: Vec<String>,
    /// The customer's latest message, shortened.
    pub last_message: String,
    /// What the bot answered, newest last, shortened (at most three).
    pub bot_tried: Vec<String>,
    /// Customer turns the bot could not answer.
    pub unanswered: usize,
    /// Order numbers named in the conversation.
    pub order_numbers: Vec<String>,
    /// "calm → upset", from the first and latest customer messages' tone.
    pub mood: String,
    /// The rules that sent the conversation to a person.
    pub why: Vec<String>,
    /// All of the above in two or three sentences.
    pub text: String,
}

/// The summary of a conversation from its messages, slots and escalation reasons.
pub fn summarize(
    messages: &[StoredMessage],
    slots: &std::collections::BTreeMap<String, String>,
    escalation: &[EscalationReason],
) -> HandoffSummary {
    let from_customer: Vec<&StoredMessage> = messages
        .iter()
        .filter(|m| m.from == Speaker::Customer)
        .collect();
    let mut wants: Vec<String> = Vec::new();
    let mut order_numbers: Vec<String> = Vec::new();
    let mut unanswered = 0;
    for m in &from_customer {
        let Some(a) = &m.analysis else { continue };
        if a.intent == OUT_OF_SCOPE {
            unanswered += 1;
        }
        if !SMALL_TALK.contains(&a.intent.as_str()) {
            let want = a.intent.replace('_', " ");
            wants.retain(|w| w != &want);
            wants.push(want);
        }
        for e in a
            .entities
            .iter()
            .filter(|e| e.kind == EntityKind::OrderNumber)
        {
            if !order_numbers.contains(&e.value) {
                order_numbers.push(e.value.clone());
            }
        }
    }
    if let Some(n) = slots.get("order_number") {
        if !order_numbers.contains(n) {
            order_numbers.push(n.clone());
        }
    }
    let bot: Vec<String> = messages
        .iter()
        .filter(|m| m.from == Speaker::Bot)
        .map(|m| shorten(&m.text))
        .collect();
    let bot_tried = bot[bot.len().saturating_sub(3)..].to_vec();
    let mood = mood(&from_customer);
    let mut why: Vec<String> = Vec::new();
    for r in escalation.iter().filter(|r| r.effect == Effect::Escalate) {
        if !why.contains(&r.rule) {
            why.push(r.rule.clone());
        }
    }
    let last_message = from_customer
        .last()
        .map(|m| shorten(&m.text))
        .unwrap_or_default();
    let text = render(
        &wants,
        &last_message,
        unanswered,
        &order_numbers,
        &mood,
        &why,
    );
    HandoffSummary {
        wants,
        last_message,
        bot_tried,
        unanswered,
        order_numbers,
        mood,
        why,
        text,
    }
}

/// The tone of a message in one word.
fn tone(m: &StoredMessage) -> &'static str {
    let Some(a) = &m.analysis else {
        return "unknown";
    };
    let f = a.frustration;
    if f.angry >= 0.6 {
        "angry"
    } else if f.angry + f.frustrated >= 0.6 || a.sentiment_scores.negative >= 0.7 {
        "upset"
    } else if a.sentiment_scores.positive >= 0.6 {
        "happy"
    } else {
        "calm"
    }
}

fn mood(from_customer: &[&StoredMessage]) -> String {
    match (from_customer.first(), from_customer.last()) {
        (Some(first), Some(last)) if from_customer.len() > 1 => {
            let (a, b) = (tone(first), tone(last));
            if a == b {
                format!("{a} throughout")
            } else {
                format!("{a} → {b}")
            }
        }
        (Some(only), _) => tone(only).to_string(),
        _ => "no messages yet".into(),
    }
}

fn shorten(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= QUOTE_CHARS {
        return one_line;
    }
    let cut: String = one_line.chars().take(QUOTE_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

fn render(
    wants: &[String],
    last: &str,
    unanswered: usize,
    orders: &[String],
    mood: &str,
    why: &[String],
) -> String {
    let mut s = match wants.last() {
        Some(w) => format!("Wants: {w}"),
        None => "Wants: not clear yet".to_string(),
    };
    if wants.len() > 1 {
        s.push_str(&format!(
            " (earlier: {})",
            wants[..wants.len() - 1].join(", ")
        ));
    }
    if !orders.is_empty() {
        s.push_str(&format!("; order {}", orders.join(", ")));
    }
    s.push_str(&format!(". Mood: {mood}."));
    if unanswered > 0 {
        s.push_str(&format!(
            " The bot could not answer {unanswered} message{}.",
            if unanswered == 1 { "" } else { "s" }
        ));
    }
    if !why.is_empty() {
        s.push_str(&format!(" Sent to a person: {}.", why.join(", ")));
    }
    if !last.is_empty() {
        s.push_str(&format!(" Last said: \"{last}\""));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::{Analysis, Entity, FrustrationScores, Sentiment, SentimentScores};
    use chrono::Utc;

    fn customer(text: &str, intent: &str, negative: f32, angry: f32) -> StoredMessage {
        let entities = text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|w| w.len() == 5)
            .map(|n| Entity {
                kind: EntityKind::OrderNumber,
                text: n.into(),
                value: n.into(),
                start: 0,
                end: 0,
            })
            .collect();
        StoredMessage {
            from: Speaker::Customer,
            text: text.into(),
            time: Utc::now(),
            analysis: Some(Analysis {
                text: text.into(),
                intent: intent.into(),
                intent_confidence: 0.9,
                sentiment: Sentiment::Neutral,
                sentiment_scores: SentimentScores {
                    negative,
                    neutral: 1.0 - negative,
                    positive: 0.0,
                },
                anger: angry,
                frustration: FrustrationScores {
                    calm: 1.0 - angry,
                    frustrated: 0.0,
                    angry,
                },
                stakes: Default::default(),
                entities,
            }),
        }
    }

    fn bot(text: &str) -> StoredMessage {
        StoredMessage {
            from: Speaker::Bot,
            text: text.into(),
            time: Utc::now(),
            analysis: None,
        }
    }

    #[test]
    fn an_escalated_conversation_reads_in_one_paragraph() {
        let messages = vec![
            customer("hi", "greet", 0.0, 0.0),
            bot("Hello! How can I help?"),
            customer("where is order 10034", "track_order", 0.1, 0.0),
            bot("Order 10034 is delayed."),
            customer(
                "delayed AGAIN?! I want my money back",
                "get_refund",
                0.9,
                0.8,
            ),
        ];
        let why = vec![EscalationReason {
            rule: "angry message (frustration head)".into(),
            when: "message_frustration".into(),
            value: serde_json::json!(0.8),
            threshold: serde_json::json!(0.9),
            effect: Effect::Escalate,
            priority: 60,
            details: vec![],
        }];
        let s = summarize(&messages, &Default::default(), &why);
        assert_eq!(s.wants, ["track order", "get refund"]);
        assert_eq!(s.order_numbers, ["10034"]);
        assert_eq!(s.mood, "calm → angry");
        assert_eq!(s.why, ["angry message (frustration head)"]);
        assert_eq!(s.bot_tried.len(), 2);
        assert!(
            s.text
                .starts_with("Wants: get refund (earlier: track order); order 10034."),
            "{}",
            s.text
        );
        assert!(
            s.text
                .contains("Sent to a person: angry message (frustration head)."),
            "{}",
            s.text
        );
    }

    #[test]
    fn long_messages_are_shortened_and_an_empty_conversation_says_so() {
        let long = "a".repeat(500);
        let s = summarize(
            &[customer(&long, OUT_OF_SCOPE, 0.0, 0.0)],
            &Default::default(),
            &[],
        );
        assert!(s.last_message.chars().count() <= QUOTE_CHARS);
        assert_eq!(s.unanswered, 1);
        assert!(s.text.contains("Wants: not clear yet"));
        let empty = summarize(&[], &Default::default(), &[]);
        assert_eq!(empty.mood, "no messages yet");
    }
}
