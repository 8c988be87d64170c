//! Fuzz targets for every parser of outside input, run by the normal test harness with
//! proptest (stable Rust, no extra tooling): `cargo test --release --test fuzz`.
//!
//! One module per parser: REST and console bodies (`rest`), the widget's socket frames
//! (`widget`), tokens and API keys (`tokens`), Telegram updates (`telegram`), Discord gateway
//! events (`discord`), intent files (`intents`), the rules file (`rules`), entity extraction
//! and link commands (`entities`). Each target checks that its parser never panics, that a
//! refusal is an error with a message, and what must hold of what it accepts (a token that
//! was tampered with is never accepted, an entity's span is the text it reports, ...).
//!
//! Budget: `FUZZ_CASES` inputs per target (default [`harness::DEFAULT_CASES`]); each target
//! prints the inputs it tried and its time. Inputs are random; `FUZZ_SEED=N` repeats a run
//! (every target prints the seed it used). A failure is shrunk to a minimal input, which the
//! failing target prints. Each target also prints how its inputs fared (parsed, refused,
//! answered 200, ...); `FUZZ_VERBOSE=1` adds a few examples of some outcomes.

#[path = "../support/mod.rs"]
mod support;

/// The store this binary's desks and servers run on (`support::engine`).
pub const STORE_ENGINE: &str = "sled";

mod harness;

mod discord;
mod entities;
mod intents;
mod rest;
mod rules;
mod telegram;
mod tokens;
mod widget;
