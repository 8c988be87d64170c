//! Shared setup of the conversation tests: a desk on a real sled store in a temp dir, the
//! repository's intents, rules and demo shop, and a scripted understanding so that each
//! test decides exactly what the NLU "heard".
#![allow(dead_code)]

use frontdesk::commerce::DemoShop;
use frontdesk::config::{AgentConfig, EngineConfig};
use frontdesk::desk::{Desk, DeskParts, Dialogue, Turn, Understand};
use frontdesk::message::{ChannelKind, Inbound, Profile};
use frontdesk::nlu::NluError;
use frontdesk::nlu::{Analysis, Entity, EntityKind, Sentiment, SentimentScores};
use frontdesk::policy::Rules;
use frontdesk::store::SledStore;
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Understands by keywords, the way a test author reads a message: "where" is track_order,
/// "refund" get_refund, "agent"/"human" contact_human_agent, "furious"/"!!!" is angry, a
/// recipe or the weather is out of scope. Order numbers are 5-digit numbers.
pub struct ScriptedNlu;

pub fn scripted_analysis(text: &str) -> Analysis {
    let lower = text.to_lowercase();
    let has = |w: &str| lower.contains(w);
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
    } else if has("hello") || has("hi ") {
        "greet"
    } else {
        "out_of_scope"
    };
    let angry = has("furious") || has("!!!") || has("ridiculous") || has("worst");
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
    let entities = text
        .match_indices(|c: char| c.is_ascii_digit())
        .next()
        .and_then(|(start, _)| {
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
        })
        .into_iter()
        .collect();
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
        entities,
    }
}

impl Understand for ScriptedNlu {
    fn analyze(&self, text: String) -> BoxFuture<'static, Result<Analysis, NluError>> {
        Box::pin(async move { Ok(scripted_analysis(&text)) })
    }
}

pub fn agents() -> Vec<AgentConfig> {
    ["ana", "ben"]
        .iter()
        .map(|n| AgentConfig {
            name: n.to_string(),
            display_name: Some(format!("{}{}", n[..1].to_uppercase(), &n[1..])),
            password_hash: "$argon2id$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            capacity: 2,
        })
        .collect()
}

pub fn default_rules() -> Rules {
    Rules::load(&repo("rules.toml")).expect("the shipped rules.toml is valid")
}

/// A desk on the sled store in `dir` (reopen the same dir to simulate a restart).
pub fn desk_in(dir: &Path, rules: Rules, nlu: Arc<dyn Understand>) -> Desk {
    let shop = DemoShop::load(&repo("data/demo_shop.json")).expect("demo shop loads");
    let dialogue = Dialogue::load(&repo("intents"), Arc::new(shop)).expect("intents load");
    Desk::open_with(DeskParts {
        store: Arc::new(SledStore::open(dir).expect("store opens")),
        nlu,
        dialogue,
        rules,
        agents: agents(),
        engine: EngineConfig::default(),
    })
}

pub fn scripted_desk(dir: &Path) -> Desk {
    desk_in(dir, default_rules(), Arc::new(ScriptedNlu))
}

pub async fn say(desk: &Desk, user: &str, text: &str) -> Turn {
    desk.receive(Inbound::new(ChannelKind::Rest, user, text))
        .await
        .unwrap_or_else(|e| panic!("{user} says {text:?}: {e}"))
}

pub async fn say_as(desk: &Desk, user: &str, text: &str, tier: &str, ltv: f64) -> Turn {
    let msg = Inbound::new(ChannelKind::Web, user, text).with_profile(Profile {
        tier: Some(tier.into()),
        lifetime_value: Some(ltv),
        ..Default::default()
    });
    desk.receive(msg).await.expect("message handled")
}

pub fn reply(turn: &Turn) -> String {
    turn.replies
        .iter()
        .map(|r| r.text.as_str())
        .collect::<Vec<_>>()
        .join(" / ")
}
