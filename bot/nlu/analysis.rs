//! What the NLU says about one message: the types every later stage reads.

use serde::{Deserialize, Serialize};

/// Name given when no intent fits well enough.
pub const OUT_OF_SCOPE: &str = "out_of_scope";

/// One message understood: the object `frontdesk nlu` prints per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub text: String,
    /// An intent name from `intents/`, or `out_of_scope`.
    pub intent: String,
    pub intent_confidence: f32,
    pub sentiment: Sentiment,
    pub sentiment_scores: SentimentScores,
    /// Probability that the message is angry.
    pub anger: f32,
    /// How frustrated the customer sounds in this message (support-domain head:
    /// calm / frustrated / angry). Records stored before it existed read as all calm.
    #[serde(default)]
    pub frustration: FrustrationScores,
    pub entities: Vec<Entity>,
}

/// The support-domain frustration head's probabilities for one message.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrustrationScores {
    pub calm: f32,
    pub frustrated: f32,
    pub angry: f32,
}

impl Default for FrustrationScores {
    fn default() -> Self {
        FrustrationScores {
            calm: 1.0,
            frustrated: 0.0,
            angry: 0.0,
        }
    }
}

impl FrustrationScores {
    /// Probability that the customer is frustrated or angry (not calm).
    pub fn upset(&self) -> f32 {
        self.frustrated + self.angry
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sentiment {
    Negative,
    Neutral,
    Positive,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct SentimentScores {
    pub negative: f32,
    pub neutral: f32,
    pub positive: f32,
}

impl SentimentScores {
    /// The label with the highest score.
    pub fn label(&self) -> Sentiment {
        if self.negative >= self.neutral && self.negative >= self.positive {
            Sentiment::Negative
        } else if self.positive > self.neutral {
            Sentiment::Positive
        } else {
            Sentiment::Neutral
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    OrderNumber,
    Email,
    Money,
    Date,
}

/// Something found in the text: `text` as written, `value` normalised (order number digits,
/// lower-case email, amount as `12.50 EUR`, date as `YYYY-MM-DD` where it can be resolved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub text: String,
    pub value: String,
    /// Byte offsets into the message.
    pub start: usize,
    pub end: usize,
}
