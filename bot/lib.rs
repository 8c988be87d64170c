//! frontdesk: a self-hosted customer-support chatbot with local NLU, in one binary.
//!
//! ## How a message flows
//! ```text
//! channel ──> intake ──> desk ──(nlu, policy, queue)──> store ──> outbox ──> channel
//! widget/REST  one door   the conversation engine       sled or   platforms' replies
//! Telegram     /link,     turn, answer or escalate,     Postgres: records of the store,
//! Discord      metrics    agents, idle watch            one trait durable, in order
//! ```
//! Data flows one way along that line; nothing calls back up it.
//!
//! ## Where things are
//! - `app`: the composition root (config → NLU → store → desk → intake → platforms → HTTP),
//!   used by `serve`, `replay`, `bench serve` and the tests.
//! - `config`: the one `Config` (file + `FRONTDESK_*` overrides, validated once).
//! - `defaults`: the shipped intents, rules, heads and demo shop, built into the binary.
//! - `intake`: the one door every channel hands its customers' messages to.
//! - `desk/`: the conversation engine: turns, queues, agents, idle watch, per-conversation
//!   ordering, linking, every sentence the bot says on its own.
//! - `policy`: escalation rules, pure (a situation in, a decision out).
//! - `nlu` (the `frontdesk-nlu` crate in `bot/nlu/`): encoder, heads, training; text in,
//!   `Analysis` out.
//! - `store`: the async `Store` trait, its contract and its engines (sled, PostgreSQL), the
//!   leases and events by which N nodes on one PostgreSQL act as one desk.
//! - `outbox`: the one outbox every line a platform customer sees leaves through.
//! - `channels/`: Telegram and Discord adapters, formatting, health.
//! - `server/`: axum: widget, REST, agent console, auth, errors, `/health`, `/metrics`.
//! - `commerce`: the shop backend (demo shop or the shop's webhook).
//! - `message`: the types every part speaks (`Inbound`, `Outbound`, identities).
//! - `metrics`, `telemetry`: Prometheus metrics and logs.
//! - `replay`: recorded conversations through the full desk, for tuning rules, and the
//!   what-if of a change on real history; `evaluation`: the same, scored against labels
//!   (`frontdesk eval escalation`), and the HTML reports.
//! - `cockpit`: what a support lead edits (rules, intents, canned replies, prompts, help
//!   centre), watched, checked, versioned and rolled back while the server runs; the
//!   agents' feedback per rule; the unanswered inbox.
//!
//! The command line (`bot/main.rs`, `bot/cli/`) is the only layer that prints.
pub mod app;
pub mod channels;
pub mod cockpit;
pub mod commerce;
pub mod config;
pub mod defaults;
pub mod desk;
pub mod evaluation;
pub mod intake;
pub mod kb;
pub mod kpis;
pub mod llm;
pub mod message;
pub mod metrics;
pub mod notices;
pub mod outbox;
pub use frontdesk_nlu as nlu;
pub mod policy;
pub mod replay;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod throttle;
