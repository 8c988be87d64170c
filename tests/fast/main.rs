//! The fast tier: every integration test that needs no model. Desks and servers run with
//! the keyword NLU (`support::nlu`), the chat platforms against local fakes.
//! `cargo test --test fast`.

#[path = "../support/mod.rs"]
mod support;

/// The store this binary's desks and servers run on (`support::engine`).
pub const STORE_ENGINE: &str = "sled";

mod assign;
mod assist;
mod channels_discord;
mod channels_telegram;
mod cockpit;
mod cockpit_intents;
mod conversation_desk;
mod conversation_policy;
mod conversation_shop;
mod discord_catchup;
mod discord_routes;
mod exactly_once;
mod exposure;
mod feedback;
mod guessing;
mod hours;
mod http;
mod intents_files;
mod judge;
mod kb;
mod kpis;
mod limits;
mod llm;
mod llm_turns;
mod notices;
mod ownership;
mod reports;
mod search;
mod server_channels;
mod stakes;
mod survey;
mod trust;
mod unanswered;
mod widget_courier;
