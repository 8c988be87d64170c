//! A real desk (sled store, rules.toml, the intents' answers, the demo shop) for channel
//! tests, with a keyword NLU in place of the model so that what a message means is obvious
//! from the test: the channel tests check transport, not understanding.

use std::path::Path;
use std::sync::Arc;

use frontdesk::config::{AgentConfig, CommerceConfig, EngineConfig};
use frontdesk::desk::Dialogue;
use frontdesk::desk::{Desk, DeskParts, Understand};
use frontdesk::nlu::NluError;
use frontdesk::nlu::{Analysis, SentimentScores, OUT_OF_SCOPE};
use frontdesk::policy::Rules;
use frontdesk::store::SledStore;
use futures::future::BoxFuture;

/// The agent every test desk knows.
pub const AGENT: &str = "ana";

pub fn root(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Reads intent and mood from keywords: "furious" is an angry complaint, "hello" a
/// greeting, "human" a request for a person, "order" a tracking question.
pub struct KeywordNlu;

impl Understand for KeywordNlu {
    fn analyze(&self, text: String) -> BoxFuture<'static, Result<Analysis, NluError>> {
        Box::pin(async move {
            let lower = text.to_lowercase();
            let (intent, negative, anger) = if lower.contains("furious") {
                ("complaint", 0.97, 0.95)
            } else if lower.contains("hello") || lower.starts_with("hi") {
                ("greet", 0.02, 0.0)
            } else if lower.contains("human") {
                ("contact_human_agent", 0.2, 0.1)
            } else if lower.contains("order") {
                ("track_order", 0.1, 0.0)
            } else {
                (OUT_OF_SCOPE, 0.1, 0.0)
            };
            let scores = SentimentScores {
                negative,
                neutral: (1.0 - negative) * 0.7,
                positive: (1.0 - negative) * 0.3,
            };
            Ok(Analysis {
                text,
                intent: intent.to_string(),
                intent_confidence: 0.95,
                sentiment: scores.label(),
                sentiment_scores: scores,
                anger,
                entities: Vec::new(),
            })
        })
    }
}

/// A desk whose store lives in `dir`, and that store, for the chat platforms to share (the
/// outbox and Discord routes are trees of the same database). Reopening the same dir
/// simulates a restart once the previous store is dropped.
pub fn open(dir: &Path) -> (Desk, Arc<SledStore>) {
    let store = Arc::new(SledStore::open(&dir.join("store")).expect("open the test store"));
    let demo_file = root("data/demo_shop.json");
    let shop = frontdesk::commerce::from_config(
        &CommerceConfig {
            demo_file: Some(demo_file.clone()),
            ..CommerceConfig::default()
        },
        &demo_file,
    )
    .expect("demo shop");
    let engine = EngineConfig {
        intents_dir: Some(root("intents")),
        rules: Some(root("rules.toml")),
        workers: 4,
        ..EngineConfig::default()
    };
    let dialogue = Dialogue::load(&root("intents"), shop).expect("intents");
    let rules = Rules::load(&root("rules.toml")).expect("rules.toml");
    let desk = Desk::open_with(DeskParts {
        store: store.clone(),
        nlu: Arc::new(KeywordNlu),
        dialogue,
        rules,
        agents: vec![AgentConfig {
            name: AGENT.into(),
            display_name: Some("Ana".into()),
            // Never checked here: the console's login is not part of these tests.
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .into(),
            capacity: 5,
        }],
        engine,
    });
    (desk, store)
}
