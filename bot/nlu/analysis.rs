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
    /// What is at stake in this message and whose problem it is (the stakes head). Records
    /// stored before it existed read as nothing at stake.
    #[serde(default)]
    pub stakes: StakesScores,
    pub entities: Vec<Entity>,
}

/// What a person must see first, whatever the tone: the six stakes the stakes head reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stake {
    /// Injury, fire, smoke, a shock, a hazard to health.
    Safety,
    /// Money the customer already lost through the shop (fees, overdraft, double charges).
    Money,
    /// Bereavement, age, disability, illness, distress.
    Vulnerability,
    /// A business customer or a large order.
    Business,
    /// A card dispute, a consumer body, small claims as a real next step.
    Legal,
    /// Personal data exposed, sent to the wrong person, an account used by someone else.
    Privacy,
}

impl Stake {
    pub const ALL: [Stake; 6] = [
        Stake::Safety,
        Stake::Money,
        Stake::Vulnerability,
        Stake::Business,
        Stake::Legal,
        Stake::Privacy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stake::Safety => "safety",
            Stake::Money => "money",
            Stake::Vulnerability => "vulnerability",
            Stake::Business => "business",
            Stake::Legal => "legal",
            Stake::Privacy => "privacy",
        }
    }

    pub fn parse(name: &str) -> Option<Stake> {
        Stake::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The stakes head's probabilities for one message: `none` (routine), the six [`Stake`]s, four
/// look-alikes whose negative words are about something other than the shop (the customer's
/// own life, their own mistake, a third party, a problem already solved), and a late parcel
/// told with mild impatience.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StakesScores {
    pub none: f32,
    pub safety: f32,
    pub money: f32,
    pub vulnerability: f32,
    pub business: f32,
    pub legal: f32,
    pub privacy: f32,
    pub own_life: f32,
    pub own_mistake: f32,
    pub third_party: f32,
    pub solved: f32,
    /// A first message about a late parcel with mild impatience: the bot's to look up.
    pub late_parcel_mild: f32,
    /// A complaint about the shop with no stake named (the tone rules judge it).
    pub complaint: f32,
}

impl Default for StakesScores {
    fn default() -> Self {
        StakesScores::from_probabilities(&[1.0])
    }
}

impl StakesScores {
    /// From the head's output, in the order of its labels (missing values read 0).
    pub fn from_probabilities(p: &[f32]) -> Self {
        let at = |i: usize| p.get(i).copied().unwrap_or(0.0);
        StakesScores {
            none: at(0),
            safety: at(1),
            money: at(2),
            vulnerability: at(3),
            business: at(4),
            legal: at(5),
            privacy: at(6),
            own_life: at(7),
            own_mistake: at(8),
            third_party: at(9),
            solved: at(10),
            late_parcel_mild: at(11),
            complaint: at(12),
        }
    }

    /// The probability of one stake.
    pub fn of(&self, stake: Stake) -> f32 {
        match stake {
            Stake::Safety => self.safety,
            Stake::Money => self.money,
            Stake::Vulnerability => self.vulnerability,
            Stake::Business => self.business,
            Stake::Legal => self.legal,
            Stake::Privacy => self.privacy,
        }
    }

    /// Probability that something a person must see is at stake (any of the six).
    pub fn at_stake(&self) -> f32 {
        Stake::ALL.iter().map(|&s| self.of(s)).sum()
    }

    /// The likeliest stake and its probability.
    pub fn top(&self) -> (Stake, f32) {
        Stake::ALL
            .iter()
            .map(|&s| (s, self.of(s)))
            .fold(
                (Stake::Safety, f32::MIN),
                |a, b| if b.1 > a.1 { b } else { a },
            )
    }

    /// Probability that the message's negative words are about something other than the shop
    /// (own life, own mistake, a third party, solved).
    pub fn elsewhere(&self) -> f32 {
        self.own_life + self.own_mistake + self.third_party + self.solved
    }
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
