//! One run of the fault campaign on one node (sled, its own data dir) or on several nodes
//! on one PostgreSQL (a throwaway cluster): customers on every door spread over the nodes
//! as a round-robin balancer would (a REST try or a widget socket that fails goes to the
//! next node), the agent's console calls too; kills go round the nodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk::message::ChannelKind;
use frontdesk::store::{Location, Store};

use crate::audit::{Evidence, Injected, Report, Stored};
use crate::customers::{self, Ctx};
use crate::plan::{self, Settings, Trouble};
use crate::process::{self, Downtime, Server};
use crate::proxy::{self, Platform, Proxy};
use crate::support::fakes::discord::FakeDiscord;
use crate::support::fakes::telegram::FakeTelegram;
use crate::support::fakes::{ChatFake, Failure};
use crate::{agent, write_config, DRAIN_LIMIT, QUIET, START_LIMIT};

/// Where the campaign's nodes keep their data.
pub enum Nodes {
    /// One node on sled.
    One,
    /// This many nodes on one PostgreSQL.
    OnPostgres(usize),
}

pub async fn run(nodes: Nodes) {
    let settings = Settings::from_env();
    let began = Instant::now();
    let cluster = match nodes {
        Nodes::One => None,
        Nodes::OnPostgres(_) => {
            Some(frontdesk::store::cluster::Cluster::start().expect("a throwaway PostgreSQL"))
        }
    };
    let count = match nodes {
        Nodes::One => 1,
        Nodes::OnPostgres(n) => n,
    };
    println!(
        "fault campaign on {count} node(s): {} kills, seed {} (FAULT_KILLS={} FAULT_SEED={} to repeat this plan)",
        settings.kills, settings.seed, settings.kills, settings.seed
    );
    let dir = tempfile::tempdir().expect("a temporary folder");

    // The platforms outlive every server process and record everything they receive.
    let telegram = Arc::new(FakeTelegram::start(FakeTelegram::TOKEN).await);
    let discord = Arc::new(FakeDiscord::start(FakeDiscord::TOKEN).await);
    let telegram_proxy = Proxy::start(Platform::Telegram, &telegram.url).await;
    let discord_proxy = Proxy::start(Platform::Discord, &discord.url).await;

    let store_url = cluster.as_ref().map(|c| c.url());
    let mut servers = Vec::new();
    let mut configs = Vec::new();
    for n in 0..count {
        let config = dir.path().join(format!("frontdesk-{n}.toml"));
        let port = process::free_port();
        write_config(
            &config,
            port,
            &dir.path().join(format!("data-{n}")),
            &telegram_proxy.url,
            &discord_proxy.url,
            store_url.as_deref(),
        );
        servers.push(Server::new(
            &config,
            &dir.path().join(format!("serve-{n}.log")),
            format!("http://127.0.0.1:{port}"),
        ));
        configs.push(config);
    }
    let key = process::create_api_key(&configs[0]);
    let http = reqwest::Client::new();
    for server in &mut servers {
        server.start();
        server.wait_ready(&http, START_LIMIT).await;
    }
    wait_connected(&servers, &http).await;
    println!(
        "{count} node(s) ready in {:.1} s; data and logs in {}",
        began.elapsed().as_secs_f32(),
        dir.path().display()
    );

    let ctx = Arc::new(Ctx::new(
        settings.seed,
        servers.iter().map(|s| s.url.clone()).collect(),
        key,
        telegram.clone(),
        discord.clone(),
    ));
    let load = customers::start(ctx.clone());
    let agent_work = tokio::spawn(agent::work(ctx.clone()));

    // Kills at random moments while the load runs, round the nodes; platform trouble along
    // the way.
    let mut injected = Injected::default();
    let mut downtimes = Vec::new();
    for (k, round) in plan::rounds(settings.seed, settings.kills)
        .iter()
        .enumerate()
    {
        inject(telegram.recorder(), round.telegram, &mut injected, 0);
        inject(discord.recorder(), round.discord, &mut injected, 1);
        tokio::time::sleep(round.run_for).await;
        let server = &mut servers[k % count];
        let from = Instant::now();
        server.kill();
        injected.kills += 1;
        server.start();
        downtimes.push(Downtime {
            from,
            to: Instant::now(),
            clean: false,
        });
        server.wait_ready(&http, START_LIMIT).await;
        if (k + 1) % 5 == 0 || k + 1 == settings.kills {
            println!("  {} kills, {:.0} s", k + 1, began.elapsed().as_secs_f32());
        }
    }

    let kills_done = began.elapsed();
    // Sends that time out, with no kill to cut them short.
    telegram_proxy.time_out_next(1);
    discord_proxy.time_out_next(1);
    let held_since = Instant::now();
    while (telegram_proxy.held() == 0 || discord_proxy.held() == 0)
        && held_since.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(proxy::HOLD + Duration::from_secs(1)).await;
    injected.timeouts = [telegram_proxy.held(), discord_proxy.held()];

    // The customers finish what they are on; then one clean restart of every node, and the
    // nodes deliver what they still owe.
    ctx.stop();
    let mut sent = Vec::new();
    for task in load {
        sent.extend(task.await.expect("a customer"));
    }
    let agent_work = agent_work.await.expect("the agent");
    let load_done = began.elapsed();
    let from = Instant::now();
    let first_stop_clean = servers.iter_mut().all(|s| s.stop(Duration::from_secs(30)));
    for server in &mut servers {
        server.start();
    }
    downtimes.push(Downtime {
        from,
        to: Instant::now(),
        clean: true,
    });
    for server in &mut servers {
        server.wait_ready(&http, START_LIMIT).await;
    }
    let restarted = began.elapsed();
    let shared = match &store_url {
        Some(url) => Some(
            frontdesk::store::open(&Location::Postgres(url.clone()))
                .await
                .expect("open the shared store"),
        ),
        None => None,
    };
    let owed = drain(&servers, shared.as_deref(), &http, &telegram, &discord).await;
    let drain_done = began.elapsed();
    let last_stop_clean = servers.iter_mut().all(|s| s.stop(Duration::from_secs(30)));

    // What the platforms saw.
    let dispatched = discord.dispatched();
    for s in sent.iter_mut() {
        match (s.door, s.platform_id) {
            (plan::Door::Telegram, Some(update)) => {
                s.acked = telegram.confirmed(update as i64);
                s.tries = telegram.times_served(update as i64);
            }
            (plan::Door::Discord, Some(id)) => {
                s.acked = dispatched.iter().any(|(d, at)| {
                    *d == id
                        && !downtimes
                            .iter()
                            .any(|w| w.from <= *at && *at <= w.to + Duration::from_millis(5))
                })
            }
            _ => {}
        }
    }
    injected.refused_attempts = [
        telegram.recorder().attempts() - telegram.sent().len(),
        discord.recorder().attempts() - discord.sent().len(),
    ];

    let store = match shared {
        Some(store) => store,
        None => frontdesk::store::open(&Location::Folder(dir.path().join("data-0/store")))
            .await
            .expect("open the store after the campaign"),
    };
    let stored = Stored::read(store.as_ref()).await;
    drop(store);
    let dm_channel = |user: u64| discord.dm_channel_of(user);
    let report = Report::build(&Evidence {
        sent: &sent,
        stored: &stored,
        telegram: telegram
            .sent()
            .into_iter()
            .map(|s| (s.chat_id as u64, s.text))
            .collect(),
        discord: discord
            .sent()
            .into_iter()
            .map(|s| (s.channel_id, s.content))
            .collect(),
        dm_channel: &dm_channel,
        dispatched: &dispatched,
        downtimes: &downtimes,
        attempts: [&telegram_proxy.sends(), &discord_proxy.sends()],
        began,
    });

    println!();
    println!(
        "fault campaign on {count} node(s), seed {}: {} kills in {:.0} s; clean stops {first_stop_clean}/{last_stop_clean}; {}",
        settings.seed,
        injected.kills,
        began.elapsed().as_secs_f32(),
        match &owed {
            None => "everything owed was delivered".to_string(),
            Some(owed) => format!("NOT drained after {DRAIN_LIMIT:?}: {owed}"),
        }
    );
    println!(
        "timeline: kills until {:.1} s, timeouts and load until {:.1} s, clean restart at {:.1} s, drain until {:.1} s",
        kills_done.as_secs_f32(),
        load_done.as_secs_f32(),
        restarted.as_secs_f32(),
        drain_done.as_secs_f32()
    );
    report.print(&injected, &stored, &agent_work);
    for (name, proxy) in [("telegram", &telegram_proxy), ("discord", &discord_proxy)] {
        let sends = proxy.sends();
        let accepted = sends.iter().filter(|s| s.status < 300).count();
        let slowest = sends.iter().map(|s| s.took).max().unwrap_or_default();
        println!(
            "{name} sends reaching the fake: {} ({accepted} accepted), slowest answer {} ms",
            sends.len(),
            slowest.as_millis()
        );
    }
    for note in ctx.notes.lock().unwrap().iter() {
        println!("note: {note}");
    }

    let (lost, duplicated, damaged) = (report.lost(), report.duplicated(), report.damaged());
    let refused: usize = report.inbound.values().map(|r| r.refused).sum();
    if lost + duplicated + damaged + refused > 0 || owed.is_some() {
        let kept = dir.keep();
        println!(
            "\nkept the data dirs and the server logs for inspection: {}",
            kept.display()
        );
        if let Some(cluster) = cluster {
            // Left running for inspection (psql on this URL); stopped by hand.
            println!("kept the PostgreSQL cluster running: {}", cluster.url());
            std::mem::forget(cluster);
        }
    }
    assert_eq!(damaged, 0, "messages misfiled or queues damaged");
    assert_eq!(lost, 0, "{lost} messages lost");
    assert_eq!(duplicated, 0, "{duplicated} messages duplicated");
    assert_eq!(refused, 0, "the server refused campaign messages");
    for (door, row) in &report.inbound {
        assert!(row.acked > 0, "no {} message was acknowledged", door.name());
    }
    if let Some(owed) = owed {
        panic!("the nodes did not deliver what they owed within {DRAIN_LIMIT:?}: {owed}");
    }
}

/// One round's trouble for one platform's next sends.
fn inject<S: Clone>(
    recorder: &crate::support::fakes::Recorder<S>,
    trouble: Trouble,
    injected: &mut Injected,
    platform: usize,
) {
    match trouble {
        Trouble::None => {}
        Trouble::RateLimited => {
            recorder.fail_next(&[Failure::RetryAfter(1)]);
            injected.rate_limited[platform] += 1;
        }
        Trouble::ServerErrors(n) => {
            recorder.fail_next(&vec![Failure::ServerError; n]);
            injected.server_errors[platform] += n;
        }
    }
}

/// Waits (a while) until both platforms show as connected in some node's `/health`.
async fn wait_connected(servers: &[Server], http: &reqwest::Client) {
    let since = Instant::now();
    while since.elapsed() < Duration::from_secs(30) {
        let mut connected = [false, false];
        for server in servers {
            if let Some(h) = server.health(http).await {
                let channels = &h["components"]["channels"];
                for (i, platform) in ["telegram", "discord"].iter().enumerate() {
                    connected[i] |= channels[platform]["state"] == "connected";
                }
            }
        }
        if connected == [true, true] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("warning: the platforms did not both show as connected within 30 s");
}

/// Records left in the outboxes: from the shared store when there is one (a node's
/// `/health` counts only what its own couriers saw), else from the node's `/health`.
async fn outbox_left(
    servers: &[Server],
    shared: Option<&dyn Store>,
    http: &reqwest::Client,
) -> u64 {
    if let Some(store) = shared {
        let mut left = 0;
        for kind in [
            ChannelKind::Telegram,
            ChannelKind::Discord,
            ChannelKind::Web,
        ] {
            left += store.outbox_len(kind).await.map_or(1, |n| n as u64);
        }
        return left;
    }
    let mut left = 0;
    for server in servers {
        left += match server.health(http).await {
            Some(h) => {
                let channels = &h["components"]["channels"];
                ["telegram", "discord"]
                    .iter()
                    .map(|p| channels[p]["outbox_pending"].as_u64().unwrap_or(1))
                    .sum::<u64>()
            }
            None => 1,
        };
    }
    left
}

/// Waits until the nodes owe nothing: no reply in the outbox, no update or event waiting
/// in the fakes, and the fakes' deliveries standing still for [`QUIET`]. Returns what they
/// still owed after [`DRAIN_LIMIT`], if anything.
async fn drain(
    servers: &[Server],
    shared: Option<&dyn Store>,
    http: &reqwest::Client,
    telegram: &FakeTelegram,
    discord: &FakeDiscord,
) -> Option<String> {
    let since = Instant::now();
    let mut counts = (usize::MAX, usize::MAX);
    let mut still_since = Instant::now();
    let mut owed = String::new();
    while since.elapsed() < DRAIN_LIMIT {
        let now = (telegram.sent().len(), discord.sent().len());
        if now != counts {
            counts = now;
            still_since = Instant::now();
        }
        let outbox = outbox_left(servers, shared, http).await;
        owed = format!(
            "{outbox} replies in the outbox, {} Telegram updates not confirmed, {} Discord events not dispatched",
            telegram.pending_updates(),
            discord.pending_events()
        );
        if outbox == 0
            && telegram.pending_updates() == 0
            && discord.pending_events() == 0
            && still_since.elapsed() >= QUIET
        {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Some(owed)
}
