//! The fast tier's conversation, channel, trust and exactly-once tests, on PostgreSQL: the
//! same test files as `tests/fast`, with every desk and server on a database of one
//! throwaway cluster (`support::engine`). Its own binary, so the fast tier stays fast.
//! `cargo test --test postgres` (needs Debian's `postgresql` package; `.ci/run` installs it).

#[path = "../support/mod.rs"]
mod support;

/// The store this binary's desks and servers run on (`support::engine`).
pub const STORE_ENGINE: &str = "postgres";

#[path = "../fast/assign.rs"]
mod assign;
#[path = "../fast/channels_discord.rs"]
mod channels_discord;
#[path = "../fast/channels_telegram.rs"]
mod channels_telegram;
#[path = "../fast/conversation_desk.rs"]
mod conversation_desk;
#[path = "../fast/conversation_policy.rs"]
mod conversation_policy;
#[path = "../fast/conversation_shop.rs"]
mod conversation_shop;
#[path = "../fast/discord_catchup.rs"]
mod discord_catchup;
#[path = "../fast/discord_routes.rs"]
mod discord_routes;
#[path = "../fast/exactly_once.rs"]
mod exactly_once;
#[path = "../fast/feedback.rs"]
mod feedback;
#[path = "../fast/guessing.rs"]
mod guessing;
#[path = "../fast/search.rs"]
mod search;
#[path = "../fast/server_channels.rs"]
mod server_channels;
#[path = "../fast/trust.rs"]
mod trust;
#[path = "../fast/widget_courier.rs"]
mod widget_courier;

mod nodes;
