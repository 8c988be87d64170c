//! One understanding for every test that does not load the model: intent, mood and order
//! numbers read from keywords, the way a test author reads a message. It implements the
//! desk's `Understand`, so it runs a desk or a whole server without the model; what a
//! message "means" is then obvious from the test, which checks what the product does with
//! it (routing, queues, channels), not the model.

use frontdesk::desk::Understand;
use frontdesk::nlu::NluError;
use frontdesk::nlu::{
    Analysis, Entity, EntityKind, FrustrationScores, Sentiment, SentimentScores, StakesScores,
    OUT_OF_SCOPE,
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
///
/// What is at stake (the stakes head), and the upset the frustration head hears with it:
///
/// | the message has                     | stakes head              | frustration head   |
/// |-------------------------------------|--------------------------|--------------------|
/// | "sparked", "smoke"                  | safety 0.95              | calm               |
/// | "overdraft", "charged twice"        | money 0.95               | calm               |
/// | "half the order"                    | complaint 0.9            | frustrated 0.6     |
/// | "classic me"                        | own_mistake 0.97         | frustrated 0.95    |
/// | "still hasn't arrived"              | late_parcel_mild 0.97    | frustrated 0.95    |
/// | "not sure it matters"               | safety 0.4 (unsure)      | calm               |
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
    let read = stakes_of(&lower);
    let stakes = read.map(|r| r.0).unwrap_or_default();
    let upset = read.map_or(0.0, |r| r.1);
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
        } else if upset > 0.0 {
            FrustrationScores {
                calm: 1.0 - upset,
                frustrated: upset,
                angry: 0.0,
            }
        } else {
            FrustrationScores::default()
        },
        stakes,
        entities: order_number(text).into_iter().collect(),
    }
}

/// The stakes head's reading and the frustration head's upset of the keyword table above.
fn stakes_of(lower: &str) -> Option<(StakesScores, f32)> {
    let mut p = [0.0f32; 13];
    let (at, v, upset) = if lower.contains("sparked") || lower.contains("smoke") {
        (1, 0.95, 0.0)
    } else if lower.contains("overdraft") || lower.contains("charged twice") {
        (2, 0.95, 0.0)
    } else if lower.contains("half the order") {
        (12, 0.9, 0.6)
    } else if lower.contains("classic me") {
        (8, 0.97, 0.95)
    } else if lower.contains("still hasn't arrived") {
        (11, 0.97, 0.95)
    } else if lower.contains("not sure it matters") {
        (1, 0.4, 0.0)
    } else {
        return None;
    };
    p[at] = v;
    p[0] = 1.0 - v;
    Some((StakesScores::from_probabilities(&p), upset))
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
