//! The model tier: the integration tests that load the real model (encoder from the cache,
//! heads from models/), loaded once per binary where a test can share it; and the tests
//! that run the built `frontdesk` binary. `cargo test --test model`.

#[path = "../support/mod.rs"]
mod support;

/// The store this binary's desks and servers run on (`support::engine`).
pub const STORE_ENGINE: &str = "sled";

mod cli_anywhere;
mod cockpit_intents;
mod conversation_nlu;
mod encoder_reference;
mod escalation;
mod feedback;
mod int8_accuracy;
mod kb;
mod nlu_train_classify;
mod replay;
mod server_chat;
mod server_console;
mod server_escalation;
mod server_kill;
mod simulate_day;
mod stakes;
mod unanswered;
