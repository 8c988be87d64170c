//! The one desk builder of the tests: a real desk on a real store (sled in a temp dir, or
//! PostgreSQL in the `postgres` binary: `engine.rs`), with
//! the repository's intents, rules and demo shop, the agents ana and ben, and the keyword
//! NLU; each can be swapped (`TestDesk::new().rules(..).nlu(..).shop(..).agents(..)`).
//! Reopening the same dir simulates a restart.

use std::path::Path;
use std::sync::Arc;

use frontdesk::commerce::{Commerce, DemoShop};
use frontdesk::config::{AgentConfig, EngineConfig};
use frontdesk::desk::{Desk, DeskParts, Dialogue, Turn, Understand};
use frontdesk::message::{ChannelKind, Inbound, Profile};
use frontdesk::policy::Rules;
use frontdesk::store::Store;

use super::nlu::KeywordNlu;
use super::repo;

/// The agent the channel stories hand conversations to (display name "Ana").
pub const AGENT: &str = "ana";

/// ana and ben, two conversations each (the password is never checked on a desk).
pub fn agents() -> Vec<AgentConfig> {
    ["ana", "ben"]
        .iter()
        .map(|n| AgentConfig {
            name: n.to_string(),
            display_name: Some(format!("{}{}", n[..1].to_uppercase(), &n[1..])),
            password_hash: "$argon2id$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            capacity: 2,
            role: "agent".into(),
            queues: Vec::new(),
        })
        .collect()
}

pub fn default_rules() -> Rules {
    Rules::load(&repo("rules.toml")).expect("the shipped rules.toml is valid")
}

pub fn demo_shop() -> DemoShop {
    DemoShop::load(&repo("data/demo_shop.json")).expect("demo shop loads")
}

/// What a test desk is made of; every part has the default described in the module.
pub struct TestDesk {
    nlu: Arc<dyn Understand>,
    rules: Rules,
    shop: Arc<dyn Commerce>,
    agents: Vec<AgentConfig>,
    engine: EngineConfig,
}

impl Default for TestDesk {
    fn default() -> Self {
        TestDesk {
            nlu: Arc::new(KeywordNlu),
            rules: default_rules(),
            shop: Arc::new(demo_shop()),
            agents: agents(),
            engine: EngineConfig::default(),
        }
    }
}

impl TestDesk {
    pub fn new() -> TestDesk {
        TestDesk::default()
    }

    pub fn nlu(mut self, nlu: impl Understand) -> Self {
        self.nlu = Arc::new(nlu);
        self
    }

    pub fn rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    pub fn shop(mut self, shop: impl Commerce) -> Self {
        self.shop = Arc::new(shop);
        self
    }

    /// A shop the test keeps a handle to (to read what the desk asked of it).
    pub fn shared_shop(mut self, shop: Arc<dyn Commerce>) -> Self {
        self.shop = shop;
        self
    }

    pub fn agents(mut self, agents: Vec<AgentConfig>) -> Self {
        self.agents = agents;
        self
    }

    /// `engine.reopen_within_mins`.
    pub fn reopen_within_mins(mut self, minutes: u64) -> Self {
        self.engine.reopen_within_mins = minutes;
        self
    }

    /// The desk, on the store in `dir`.
    pub fn open(self, dir: &Path) -> Desk {
        self.open_with_store(dir).0
    }

    /// The desk and its store, for the chat platforms to share (the outbox and Discord
    /// routes are records of the same store).
    pub fn open_with_store(self, dir: &Path) -> (Desk, Arc<dyn Store>) {
        let store: Arc<dyn Store> = super::engine::open_store(dir);
        let dialogue = Dialogue::load(&repo("intents"), self.shop).expect("intents load");
        let desk = Desk::open_with(DeskParts {
            store: store.clone(),
            nlu: self.nlu,
            dialogue,
            rules: self.rules,
            agents: self.agents,
            engine: self.engine,
            llm: None,
        });
        (desk, store)
    }
}

/// The default desk (keyword NLU) on the store in `dir`.
pub fn keyword_desk(dir: &Path) -> Desk {
    TestDesk::new().open(dir)
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

/// `user` writes as the shop's customer `shop_customer_id`, vouched for by a shop-signed
/// token (the desk sees the trusted profile a channel sets).
pub async fn say_verified(desk: &Desk, user: &str, text: &str, shop_customer_id: &str) -> Turn {
    let msg = Inbound::new(ChannelKind::Rest, user, text).with_profile(Profile {
        customer_id: Some(shop_customer_id.into()),
        ..Default::default()
    });
    desk.receive(msg)
        .await
        .unwrap_or_else(|e| panic!("{user} says {text:?}: {e}"))
}
