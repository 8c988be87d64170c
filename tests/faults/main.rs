//! The fault campaign: the real `frontdesk serve` under load from customers on every door
//! (REST, widget sockets, Telegram, Discord through the local fakes) and an agent working
//! the queues, killed with SIGKILL at random moments and started again on the same data dir,
//! while the fakes answer some sends with 429, 500 or not at all, and some messages are
//! delivered twice. Then the store is read back and checked:
//!
//! - every acknowledged inbound message is stored exactly once (each text carries a unique
//!   reference, so a copy shows), filed under the customer who wrote it;
//! - every reply the store holds for a Telegram or Discord customer reached the platform
//!   exactly once (matched by chat and text);
//! - every queued conversation has exactly one queue entry, and every entry a queued
//!   conversation.
//!
//! ```sh
//! cargo test --release --test faults -- --ignored --nocapture
//! FAULT_KILLS=3 FAULT_SEED=42 cargo test --release --test faults -- --ignored --nocapture
//! cargo test --release --test faults two_nodes_on_postgres -- --ignored --nocapture
//! ```
//! The same campaign runs on two nodes on one PostgreSQL (a throwaway cluster): customers
//! go round the nodes as a balancer would send them, kills go round the nodes too.
//! `FAULT_KILLS` (default 20) kills, `FAULT_SEED` (default: from the clock, printed) fixes
//! the plan: kill moments, what each customer writes and when, which messages come twice,
//! which platform calls fail. Uses the real model from the cache, as `serve` does.
//!
//! What counts as acknowledged: REST, a 2xx answer; widget, a `turn` frame for the
//! message's id; Telegram, the bot asked for updates past it (the fake re-delivers every
//! update until then, as Telegram does); Discord, the fake wrote the event to a gateway
//! session of a running server (Discord does not send an event again).

#[path = "../support/mod.rs"]
mod support;

/// The store this binary's desks and servers run on (`support::engine`).
pub const STORE_ENGINE: &str = "sled";

mod agent;
mod audit;
mod campaign;
mod customers;
mod nodes;
mod outbound;
mod plan;
mod process;
mod proxy;

use std::path::Path;
use std::time::Duration;

use campaign::Nodes;
use support::fakes::discord::FakeDiscord;
use support::fakes::telegram::FakeTelegram;
use support::fakes::ChatFake;

/// Longest wait for a server to answer `/health` after a start.
const START_LIMIT: Duration = Duration::from_secs(120);
/// Longest wait for the outbox and the fakes' queues to empty at the end.
const DRAIN_LIMIT: Duration = Duration::from_secs(90);
/// The fakes' counts must stand still this long before the final check.
const QUIET: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the fault campaign (minutes): cargo test --release --test faults -- --ignored --nocapture"]
async fn fault_campaign() {
    campaign::run(Nodes::One).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the fault campaign on two nodes and a PostgreSQL cluster (minutes)"]
async fn two_nodes_on_postgres_every_door() {
    campaign::run(Nodes::OnPostgres(2)).await;
}

/// The config of every server process: the fixed port and data dir, both platforms
/// through the timeout proxies, the real NLU (the default), limits that stay out of the
/// way, and the shared store when there is one (leases of 3 s: a dead node's work moves
/// soon).
fn write_config(
    path: &Path,
    port: u16,
    data: &Path,
    telegram: &str,
    discord: &str,
    store: Option<&str>,
) {
    let mut toml = format!(
        "[server]\nbind = \"127.0.0.1:{port}\"\ndata_dir = '{}'\n\n\
         [channels.telegram]\ntoken = \"{}\"\napi_url = \"{telegram}\"\n\n\
         [channels.discord]\ntoken = \"{}\"\napi_url = \"{discord}\"\n",
        data.display(),
        FakeTelegram::TOKEN,
        FakeDiscord::TOKEN,
    );
    toml.push('\n');
    if let Some(url) = store {
        toml.push_str(&format!("[store]\nurl = \"{url}\"\nlease_secs = 3\n\n"));
    }
    toml.push_str(&agent::config());
    toml.push_str(&generous_limits());
    std::fs::write(path, toml).expect("write frontdesk.toml");
}

/// A `[limits]` section when the server has one (its keys are read from
/// `frontdesk.example.toml`): every rate off (0), the socket caps far away, the rest as
/// shipped.
pub(crate) fn generous_limits() -> String {
    let example = std::fs::read_to_string(support::repo("frontdesk.example.toml"))
        .expect("read frontdesk.example.toml");
    let example: toml::Table = example.parse().expect("frontdesk.example.toml is TOML");
    let Some(limits) = example.get("limits").and_then(|l| l.as_table()) else {
        return String::new();
    };
    let mut out = String::from("\n[limits]\n");
    for (key, value) in limits {
        let value = if key.ends_with("_per_sec") || key.ends_with("_per_min") {
            toml::Value::Integer(0)
        } else if key.starts_with("sockets_") {
            toml::Value::Integer(1_000_000)
        } else if key == "connections_per_ip" || key == "api_ip_in_flight" {
            // 0: no cap (the campaign's load comes from one address)
            toml::Value::Integer(0)
        } else {
            value.clone()
        };
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}
