//! `frontdesk bench serve`: the whole application (`frontdesk::app::start`) on loopback (real
//! NLU; sled in a temporary data dir, or with `--store postgres` PostgreSQL in a throwaway
//! cluster, and with `--store postgres-2` two nodes on it, the load spread over both; with
//! `--external` a `frontdesk serve` process of its own, see `bench_target.rs`) driven over
//! real HTTP connections on the REST channel. CPU per message is the whole machine's
//! CPU time (`/proc/stat`: server, load generator and PostgreSQL) over the throughput phase.
//!
//! Three phases, each bounded in count and time:
//! 1. sustained throughput: `--messages` messages from `--concurrency` keep-alive clients;
//! 2. latency at a fixed rate: `--rate` messages/s for `--rate-secs`, sent on schedule
//!    (open loop: latency counts from the planned send time, so a slow server cannot hide
//!    its queueing);
//! 3. memory: `--conversations` customers each open a conversation, then the RSS is read
//!    (of this process, server and load generator together; with `--external`, the server's).

use super::bench_cpu::{
    machine_cpu_secs, per_message, role, thread_cpu_secs, thread_cpu_secs_with,
};
use super::bench_target::{rss_of, start_in_process, ExternalServer, Target};
use super::support::{peak_rss_mb, progress_bar, rss_mb};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct BenchServeArgs {
    /// Messages in the throughput phase.
    #[arg(long, default_value_t = 3000)]
    pub messages: usize,
    /// Concurrent clients in the throughput phase.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Messages per second in the latency phase.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Length of the latency phase in seconds.
    #[arg(long, default_value_t = 10)]
    pub rate_secs: u32,
    /// Open conversations for the memory phase.
    #[arg(long, default_value_t = 10_000)]
    pub conversations: usize,
    /// Stop any phase after this many seconds (what was measured until then is reported).
    #[arg(long, default_value_t = 300)]
    pub phase_limit_secs: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where the store lives: `sled`, `postgres` (a throwaway cluster this command starts:
    /// Debian's postgresql package), or `postgres-2` (two nodes on that database, each
    /// message sent to the next node in turn).
    #[arg(long, default_value = "sled", value_parser = ["sled", "postgres", "postgres-2"])]
    pub store: String,
    /// Run the server as a process of its own (`frontdesk serve` on a configuration written
    /// for the run, sled) and this command only as its client over loopback; CPU by thread
    /// then covers both processes and memory is the server's.
    #[arg(long, conflicts_with = "store")]
    pub external: bool,
}

/// Routine questions (answered by the bot, no human queue), varied so the NLU sees a mix.
const ROUTINE: &[&str] = &[
    "where is my order 10001",
    "can you track order 10002 for me",
    "what payment methods do you accept",
    "how do I return an item",
    "I need an invoice for order 10005",
    "what is your refund policy",
    "how long does delivery take",
    "has order 10007 shipped yet",
    "can I change my shipping address",
    "I forgot my password",
    "do you ship internationally",
    "what is the status of order 10003",
];

#[derive(Debug, Serialize)]
pub struct Latency {
    pub count: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// With `--external`: the server process's id (stopped by the time the report is out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_server_pid: Option<u32>,
    pub store: String,
    pub cores: usize,
    /// Whole-machine CPU seconds per answered message in the throughput phase.
    pub cpu_ms_per_message: f64,
    /// This process's share of it, by thread (numbers in names dropped), most first: where
    /// a message's CPU goes (see `bench_cpu::role`).
    pub cpu_ms_per_message_by_thread: Vec<(String, f64)>,
    /// With PostgreSQL: rows written per answered message, by table, over the whole run
    /// (inserted + updated + deleted, from `pg_stat_user_tables`), most first.
    pub rows_written_per_message: Vec<(String, f64)>,
    pub throughput_messages: usize,
    pub throughput_concurrency: usize,
    pub messages_per_sec: f64,
    pub throughput_latency: Latency,
    pub fixed_rate_per_sec: u32,
    pub fixed_rate_achieved_per_sec: f64,
    pub fixed_rate_latency: Latency,
    pub open_conversations: usize,
    pub conversations_per_sec: f64,
    pub rss_before_mb: f64,
    pub rss_after_conversations_mb: f64,
    pub peak_rss_mb: f64,
}

pub fn run(args: BenchServeArgs) -> anyhow::Result<()> {
    super::support::run_bench(args.json, bench(&args), print_table)
}

async fn bench(args: &BenchServeArgs) -> anyhow::Result<BenchReport> {
    let data = super::support::BenchDir::new("serve");
    bench_in(args, &data.0).await
}

async fn bench_in(args: &BenchServeArgs, data: &std::path::Path) -> anyhow::Result<BenchReport> {
    let (target, url, key) = if args.external {
        let server = ExternalServer::start(data).await?;
        let url = format!("{}/api/v1/messages", server.url);
        let key = server.key.clone();
        (Target::External(server), url, key)
    } else {
        start_in_process(&args.store, data).await?
    };
    let threads = |t: &Target| match t {
        Target::External(s) => thread_cpu_secs_with(s.pid()),
        Target::InProcess { .. } => thread_cpu_secs(),
    };
    let memory = |t: &Target| match t {
        Target::External(s) => rss_of(s.pid()),
        Target::InProcess { .. } => (rss_mb(), peak_rss_mb()),
    };
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse()?,
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(64))
        .default_headers(headers)
        .build()?;
    let limit = Duration::from_secs(args.phase_limit_secs);
    tracing::info!(%url, "bench server up");
    // Warm-up: first requests pay for connection set-up and lazy initialisation.
    closed_loop(&client, &url, 100, 8, "warm", limit, &bar("warm-up", 100)).await;
    let rss_before = memory(&target).0;

    let pb = bar("throughput", args.messages);
    let started = Instant::now();
    let cpu_before = machine_cpu_secs();
    let threads_before = threads(&target);
    let throughput = closed_loop(
        &client,
        &url,
        args.messages,
        args.concurrency,
        "t",
        limit,
        &pb,
    )
    .await;
    let took = started.elapsed().as_secs_f64();
    let cpu = machine_cpu_secs() - cpu_before;
    pb.finish_and_clear();
    let ok = throughput.count - throughput.errors;
    let by_thread = per_message(threads(&target), threads_before, ok);

    let total = (args.rate * args.rate_secs) as usize;
    let pb = bar("fixed rate", total);
    let (fixed, achieved) = open_loop(&client, &url, args.rate, total, limit, &pb).await;
    pb.finish_and_clear();

    let pb = bar("conversations", args.conversations);
    let started = Instant::now();
    let convs = closed_loop(
        &client,
        &url,
        args.conversations,
        args.concurrency,
        "c",
        limit,
        &pb,
    )
    .await;
    let conv_secs = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let (rss_after, peak) = memory(&target);
    let external_server_pid = match &target {
        Target::External(s) => Some(s.pid()),
        Target::InProcess { .. } => None,
    };
    let cluster = match target {
        Target::External(server) => {
            let status = server.stop().await?;
            if !status.success() {
                tracing::warn!(%status, "the server did not stop cleanly on SIGTERM");
            }
            None
        }
        Target::InProcess {
            runtime,
            servers,
            cluster,
        } => {
            for server in servers {
                runtime.spawn(server.shutdown()).await??;
            }
            runtime.shutdown_background();
            cluster
        }
    };
    let answered = ok + (fixed.count - fixed.errors) + (convs.count - convs.errors) + 100;
    let rows_written_per_message = match &cluster {
        Some(cluster) => table_writes(&cluster.url(), answered).await?,
        None => Vec::new(),
    };
    drop(cluster);
    Ok(BenchReport {
        external_server_pid,
        rows_written_per_message,
        store: if args.external {
            "sled (server in a process of its own)".into()
        } else {
            args.store.clone()
        },
        cpu_ms_per_message: cpu * 1000.0 / ok.max(1) as f64,
        cpu_ms_per_message_by_thread: by_thread,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        throughput_messages: throughput.count,
        throughput_concurrency: args.concurrency,
        messages_per_sec: ok as f64 / took,
        throughput_latency: throughput,
        fixed_rate_per_sec: args.rate,
        fixed_rate_achieved_per_sec: achieved,
        fixed_rate_latency: fixed,
        open_conversations: convs.count - convs.errors,
        conversations_per_sec: (convs.count - convs.errors) as f64 / conv_secs,
        rss_before_mb: rss_before,
        rss_after_conversations_mb: rss_after,
        peak_rss_mb: peak,
    })
}

/// Rows written per message, by table, from the database's own counters.
async fn table_writes(url: &str, messages: usize) -> anyhow::Result<Vec<(String, f64)>> {
    // The counters reach the statistics within a second of each backend going idle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT relname::text, (n_tup_ins + n_tup_upd + n_tup_del)::float8
             FROM pg_stat_user_tables ORDER BY 2 DESC",
            &[],
        )
        .await?;
    driver.abort();
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, f64>(1) / messages.max(1) as f64,
            )
        })
        .filter(|(_, n)| *n > 0.0)
        .collect())
}

fn bar(name: &str, len: usize) -> indicatif::ProgressBar {
    progress_bar(name, len as u64)
}

/// One message; Ok(latency) when the server answered 200. `url` may name several nodes
/// (separated by spaces): the messages take turns among them.
async fn send(client: &reqwest::Client, url: &str, user: &str, text: &str) -> Result<Duration, ()> {
    static TURN: AtomicUsize = AtomicUsize::new(0);
    let nodes: Vec<&str> = url.split(' ').collect();
    let url = nodes[TURN.fetch_add(1, Ordering::Relaxed) % nodes.len()];
    let started = Instant::now();
    let res = client
        .post(url)
        .json(&serde_json::json!({"user_id": user, "text": text}))
        .send()
        .await
        .map_err(|_| ())?;
    let ok = res.status().is_success();
    let _ = res.bytes().await;
    if ok {
        Ok(started.elapsed())
    } else {
        Err(())
    }
}

/// `n` messages from `concurrency` clients as fast as the server answers. Each message
/// comes from its own user in the conversations phase (prefix "c"), otherwise from one of
/// a few hundred users, so conversations grow as they do in real use.
async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    n: usize,
    concurrency: usize,
    prefix: &'static str,
    limit: Duration,
    pb: &indicatif::ProgressBar,
) -> Latency {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + limit;
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, next, pb) = (client.clone(), url.to_string(), next.clone(), pb.clone());
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() > deadline {
                    break;
                }
                let user = if prefix == "c" {
                    format!("bench-c-{i}")
                } else {
                    format!("bench-{prefix}-{}", i % 500)
                };
                results.push(send(&client, &url, &user, ROUTINE[i % ROUTINE.len()]).await);
                pb.inc(1);
            }
            results
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    summarize(all)
}

/// `total` messages at `rate` per second, each sent at its planned time whatever happened to
/// the previous ones; latency counts from the planned time.
async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    rate: u32,
    total: usize,
    limit: Duration,
    pb: &indicatif::ProgressBar,
) -> (Latency, f64) {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let planned = start + interval * i as u32;
        if planned.duration_since(start) > limit {
            break;
        }
        tokio::time::sleep_until(planned).await;
        let (client, url, pb) = (client.clone(), url.to_string(), pb.clone());
        tasks.push(tokio::spawn(async move {
            let user = format!("bench-r-{}", i % 500);
            let r = send(&client, &url, &user, ROUTINE[i % ROUTINE.len()]).await;
            pb.inc(1);
            r.map(|_| planned.elapsed())
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap_or(Err(())));
    }
    let secs = start.elapsed().as_secs_f64();
    let sent = all.len();
    (summarize(all), sent as f64 / secs)
}

fn summarize(results: Vec<Result<Duration, ()>>) -> Latency {
    let count = results.len();
    let mut ms: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let errors = count - ms.len();
    ms.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| -> f64 {
        if ms.is_empty() {
            return f64::NAN;
        }
        let i = ((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1;
        ms[i]
    };
    Latency {
        count,
        errors,
        p50_ms: q(0.50),
        p90_ms: q(0.90),
        p99_ms: q(0.99),
        max_ms: ms.last().copied().unwrap_or(f64::NAN),
    }
}

fn print_table(r: &BenchReport) {
    let lat = |l: &Latency| {
        format!(
            "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} sent, {} errors)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.count, l.errors
        )
    };
    println!(
        "frontdesk bench serve (real server on loopback, NLU + {}, {} cores)",
        r.store, r.cores
    );
    println!(
        "  sustained:      {:.0} messages/s ({} clients), {:.2} ms CPU per message (whole machine)  target >= 300",
        r.messages_per_sec, r.throughput_concurrency, r.cpu_ms_per_message
    );
    println!("                  {}", lat(&r.throughput_latency));
    println!(
        "  at {}/s:        {}  target p99 <= 100 ms (achieved {:.1}/s)",
        r.fixed_rate_per_sec,
        lat(&r.fixed_rate_latency),
        r.fixed_rate_achieved_per_sec
    );
    println!(
        "  memory:         RSS {:.0} MB with {} open conversations (before: {:.0} MB, peak {:.0} MB)  target < 400 MB",
        r.rss_after_conversations_mb, r.open_conversations, r.rss_before_mb, r.peak_rss_mb
    );
    if !r.cpu_ms_per_message_by_thread.is_empty() {
        println!(
            "  CPU per message by thread (throughput phase; \"server: \" = the server process):"
        );
        for (name, ms) in &r.cpu_ms_per_message_by_thread {
            let role = role(name);
            println!("    {name:<26} {ms:>6.2} ms  {role}");
        }
    }
    if !r.rows_written_per_message.is_empty() {
        let rows: Vec<String> = r
            .rows_written_per_message
            .iter()
            .map(|(t, n)| format!("{t} {n:.2}"))
            .collect();
        println!("  rows written per message: {}", rows.join(", "));
    }
}
