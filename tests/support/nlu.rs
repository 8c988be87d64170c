//! One understanding for every test that does not load the model: intent, mood and order
//! numbers read from keywords, the way a test author reads a message. It implements the
//! desk's `Understand`, so it runs a desk or a whole server without the model; what a
//! message "means" is then obvious from the test, which checks what the product does with
//! it (routing, queues, channels), not the model.

use frontdesk::desk::Understand;
use frontdesk::nlu::NluError;
use frontdesk::nlu::{
    Analysis, Entity, EntityKind, FrustrationScores, Sentiment, SentimentScores, OUT_OF_SCOPE,
};
use futures::future::BoxFuture;

/// Understands by keywords:
///
/// | the message has                          | intent                |
/// |------------------------------------------|-----------------------|
/// | "agent", "human", "person"               | `contact_human_agent` |
/// | "refund" and "status"                    | `track_refund`        |
/// | "refund", "money back"                   | `get_refund`          |
/// | "cancel"                                 | `cancel_order`        |
/// | "where", "track", "order"                | `track_order`         |
/// | "delivery" and "long"                    | `delivery_period`     |
/// | "hello", the word "hi"                   | `greet`               |
/// | none of these, but angry                 | `complaint`           |
/// | none of these                            | out of scope          |
///
/// "furious", "!!!", "ridiculous" or "worst" make a message angry (anger 0.97, negative
/// 0.95, the frustration head's angry 0.95); "thanks" or "great" make it positive. A 5-digit number is an order number.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeywordNlu;

impl Understand for KeywordNlu {
    fn analyze(&self, text: String) -> BoxFuture<'static, Result<Analysis, NluError>> {
        Box::pin(async move { Ok(keyword_analysis(&text)) })
    }
}

/// What [`KeywordNlu`] understands of `text`.
pub fn keyword_analysis(text: &str) -> Analysis {
    let lower = text.to_lowercase();
    let has = |w: &str| lower.contains(w);
    let word = |w: &str| lower.split(|c: char| !c.is_alphanumeric()).any(|x| x == w);
    let angry = has("furious") || has("!!!") || has("ridiculous") || has("worst");
    let intent = if has("agent") || has("human") || has("person") {
        "contact_human_agent"
    } else if has("refund") && has("status") {
        "track_refund"
    } else if has("refund") || has("money back") {
        "get_refund"
    } else if has("cancel") {
        "cancel_order"
    } else if has("where") || has("track") || has("order") {
        "track_order"
    } else if has("delivery") && has("long") {
        "delivery_period"
    } else if has("hello") || word("hi") {
        "greet"
    } else if angry {
        "complaint"
    } else {
        OUT_OF_SCOPE
    };
    let scores = if angry {
        SentimentScores {
            negative: 0.95,
            neutral: 0.04,
            positive: 0.01,
        }
    } else if has("thanks") || has("great") {
        SentimentScores {
            negative: 0.02,
            neutral: 0.18,
            positive: 0.8,
        }
    } else {
        SentimentScores {
            negative: 0.1,
            neutral: 0.8,
            positive: 0.1,
        }
    };
    Analysis {
        text: text.to_string(),
        intent: intent.to_string(),
        intent_confidence: 0.9,
        sentiment: if angry {
            Sentiment::Negative
        } else {
            scores.label()
        },
        sentiment_scores: scores,
        anger: if angry { 0.97 } else { 0.03 },
        frustration: if angry {
            FrustrationScores {
                calm: 0.02,
                frustrated: 0.03,
                angry: 0.95,
            }
        } else {
            FrustrationScores::default()
        },
        stakes: Default::default(),
        entities: order_number(text).into_iter().collect(),
    }
}

/// The first number in `text`, when it has the 5 digits of an order number.
fn order_number(text: &str) -> Option<Entity> {
    let (start, _) = text.match_indices(|c: char| c.is_ascii_digit()).next()?;
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    (digits.len() == 5).then(|| Entity {
        kind: EntityKind::OrderNumber,
        text: digits.clone(),
        value: digits.clone(),
        start,
        end: start + digits.len(),
    })
}
