//! `frontdesk bench flood`: the abuse limits under attack. The whole application
//! (`frontdesk::app::start`, real NLU, sled in a temporary data dir) runs on loopback with the
//! DEFAULT `[limits]` (those are what is measured) and `engine.debounce_ms = 0`.
//!
//! Three phases, each bounded in time:
//! 1. baseline: `--customers` widget visitors, each from its own loopback address
//!    (127.0.0.2, 127.0.0.3, ...), send one message every `--interval-ms` for `--secs`/2;
//!    latency counts from the planned send time to the bot's `turn` (open loop, so a slow
//!    server cannot hide its queueing). This is the reference measured in the same run;
//! 2. flood: one address (127.0.0.1) sends `--flood-rate` messages/s over `--flood-sockets`
//!    widget sockets (or the REST API, `--flood-via`) while the same customers (new
//!    visitors) do again what they did in the baseline, for `--secs`;
//! 3. idle sockets: `--idle-sockets` connections from 127.0.0.1, each starting the widget's
//!    upgrade, then held open and silent (an accepted one after its `hello`, a refused one as
//!    an idle keep-alive connection); then a customer from another address connects and asks.
//!
//! Client and server share this process, its cores and its open-file limit (raised to the
//! hard limit at start).

use super::support::{peak_rss_mb, progress_bar, rss_mb};
use frontdesk::config::{Config, LimitsConfig};
use futures::{FutureExt as _, SinkExt as _, StreamExt as _};
use indicatif::{MultiProgress, ProgressBar};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

#[derive(clap::Args, Debug)]
pub struct BenchFloodArgs {
    /// Messages per second the flooding address (127.0.0.1) sends.
    #[arg(long, default_value_t = 1000)]
    pub flood_rate: u32,
    /// Where the flood goes: `widget` (message frames on the widget's socket), `rest`
    /// (POST /api/v1/messages with an API key; its per-address limit is 10x the widget's) or
    /// `both` (half the rate each).
    #[arg(long, value_enum, default_value_t = FloodVia::Widget)]
    pub flood_via: FloodVia,
    /// Widget sockets the flood is spread over, each a new visitor (the default is the
    /// per-address socket cap: the most one address may hold).
    #[arg(long, default_value_t = 20)]
    pub flood_sockets: usize,
    /// Length of the flood phase in seconds; the baseline without flood runs half as long.
    #[arg(long, default_value_t = 20)]
    pub secs: u64,
    /// Other customers, each a widget visitor on its own loopback address (127.0.0.2,
    /// 127.0.0.3, ...).
    #[arg(long, default_value_t = 20)]
    pub customers: usize,
    /// Each customer sends one message every this many milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// A customer's message counts as answered when the bot's turn arrives within this many
    /// milliseconds of its planned send time.
    #[arg(long, default_value_t = 5000)]
    pub answer_timeout_ms: u64,
    /// Connections opened from 127.0.0.1 and held open, idle, in the last phase (0 skips it).
    #[arg(long, default_value_t = 5000)]
    pub idle_sockets: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FloodVia {
    Widget,
    Rest,
    Both,
}

impl FloodVia {
    fn label(self) -> &'static str {
        match self {
            FloodVia::Widget => "widget",
            FloodVia::Rest => "REST",
            FloodVia::Both => "widget + REST",
        }
    }
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

/// The flooding address.
const FLOODER: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The first customer's address; the next ones count up from it.
const FIRST_CUSTOMER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// How long a connection, upgrade and welcome may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the flooder waits for the answers of frames it sent before it stopped.
const FLOOD_GRACE: Duration = Duration::from_secs(5);
/// Flood connections started at once in the idle-socket phase.
const IDLE_OPENING_AT_ONCE: usize = 64;
/// Messages the customer from another address sends while the idle sockets are held.
const PROBE_MESSAGES: usize = 5;
/// REST flood requests in flight at most (the client's own bound: past it, it falls behind).
const REST_IN_FLIGHT: usize = 256;

/// What the other customers saw in one phase.
#[derive(Debug, Serialize)]
pub struct CustomerPhase {
    pub secs: f64,
    pub customers: usize,
    /// Customers whose socket opened and got its welcome.
    pub connected: usize,
    /// Connection + upgrade + welcome, over the customers who connected.
    pub connect_p50_ms: f64,
    pub connect_max_ms: f64,
    /// Messages the customers meant to send (a customer who could not connect sent none).
    pub planned: usize,
    pub sent: usize,
    /// Messages whose `turn` arrived within `--answer-timeout-ms` of their planned time.
    pub answered: usize,
    /// `answered / planned`.
    pub answered_share: f64,
    /// Answered turns that carried at least one reply of the bot.
    pub with_replies: usize,
    /// Turns that came after the timeout.
    pub late: usize,
    /// `slow_down` frames (refused by a limit).
    pub slowed: usize,
    /// `error` frames.
    pub errors: usize,
    /// Latency of the answered messages, from the planned send time to the turn.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The first connection failure, if any.
    pub first_failure: Option<String>,
}

/// What the flooding address sent and what the server made of it.
#[derive(Debug, Serialize)]
pub struct FloodPhase {
    pub via: FloodVia,
    pub rate_per_sec: u32,
    pub secs: f64,
    /// Widget sockets the flood opened (of `--flood-sockets`).
    pub widget_sockets: usize,
    pub sent: usize,
    pub achieved_per_sec: f64,
    /// Widget frames answered with a `turn` (handled, through the NLU).
    pub widget_turns: usize,
    /// Widget frames answered with `slow_down` (refused by a limit).
    pub widget_slow_down: usize,
    pub widget_errors: usize,
    /// Widget frames sent but not answered before the flooder gave up waiting.
    pub widget_unanswered: usize,
    /// REST answers: 200 (handled), 429 (refused), anything else.
    pub rest_ok: usize,
    pub rest_429: usize,
    pub rest_other: usize,
    /// Connections, upgrades or requests that failed.
    pub transport_errors: usize,
    /// Increase of `frontdesk_limited_total{reason}` over the phase.
    pub limited: BTreeMap<String, f64>,
}

/// The idle sockets from one address, and a customer elsewhere meanwhile.
#[derive(Debug, Serialize)]
pub struct IdlePhase {
    pub attempted: usize,
    pub secs_to_open: f64,
    /// Upgraded (101) and welcomed: widget sockets held by the flooding address.
    pub accepted: usize,
    /// Refused upgrades by `status reason` (e.g. `429 sockets_per_ip`); each connection is
    /// then held open, idle.
    pub refused: BTreeMap<String, usize>,
    /// Connections that could not be made or got no answer in time.
    pub failed: usize,
    pub first_failure: Option<String>,
    /// Connections of the flooding address still open after the probe.
    pub held_open: usize,
    /// `components.widget_sockets` of `/health` with the sockets held.
    pub server_widget_sockets: Option<u64>,
    /// The customer from another address.
    pub probe_address: String,
    pub probe_connected: bool,
    pub probe_connect_ms: f64,
    pub probe_sent: usize,
    pub probe_answered: usize,
    pub probe_p50_ms: f64,
    pub probe_max_ms: f64,
    pub probe_failure: Option<String>,
    /// Increase of `frontdesk_limited_total{reason}` over the phase.
    pub limited: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize)]
pub struct FloodReport {
    pub cores: usize,
    /// The soft open-file limit before and after raising it to the hard limit.
    pub nofile_before: u64,
    pub nofile: u64,
    pub nofile_hard: u64,
    /// The limits measured (the defaults).
    pub limits: LimitsConfig,
    /// How the customers talk to the server.
    pub customers_via: &'static str,
    pub customers: usize,
    pub interval_ms: u64,
    pub answer_timeout_ms: u64,
    /// Reference measured in the same run: the customers without flood.
    pub baseline: CustomerPhase,
    pub under_flood: CustomerPhase,
    pub flood: FloodPhase,
    pub idle: Option<IdlePhase>,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
}

pub fn run(args: BenchFloodArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.customers >= 1, "--customers must be at least 1");
    anyhow::ensure!(args.interval_ms >= 1, "--interval-ms must be at least 1");
    anyhow::ensure!(args.secs >= 2, "--secs must be at least 2");
    super::support::run_bench(args.json, bench(&args), print_table)
}

async fn bench(args: &BenchFloodArgs) -> anyhow::Result<FloodReport> {
    let data = super::support::BenchDir::new("flood");
    bench_in(args, &data.0).await
}

async fn bench_in(args: &BenchFloodArgs, data: &std::path::Path) -> anyhow::Result<FloodReport> {
    let (nofile_before, nofile, nofile_hard) = raise_open_files();
    let mut config = Config::load(None)?;
    config.server.bind = "127.0.0.1:0".into();
    config.server.data_dir = data.to_path_buf();
    // the default limits are what is measured, whatever a frontdesk.toml here says
    config.limits = LimitsConfig::default();
    // each message answered at once, not held to merge with the next
    config.engine.debounce_ms = 0;
    let limits = config.limits.clone();
    let nlu = frontdesk::app::load_nlu(&config).await?;
    let server = frontdesk::app::start(config, nlu).await?;
    let addr = server.addr;
    let url = server.url();
    tracing::info!(server = %url, "bench server up");
    // /health and /metrics from the flooding address (plain HTTP: not a widget socket)
    let http = reqwest::Client::builder()
        .local_address(Some(IpAddr::V4(FLOODER)))
        .build()?;
    let customer_ips: Vec<IpAddr> = (0..args.customers).map(customer_ip).collect();
    let probe_ip = customer_ip(args.customers);
    let interval = Duration::from_millis(args.interval_ms);
    let timeout = Duration::from_millis(args.answer_timeout_ms);

    // Warm-up: the first messages pay for lazy initialisation (from an address of its own).
    let warm = bar("warm-up", 8);
    let _ = customer(
        addr,
        customer_ip(args.customers + 1),
        0,
        Instant::now(),
        Duration::from_millis(150),
        8,
        timeout,
        warm.clone(),
    )
    .await;
    warm.finish_and_clear();

    // 1. baseline: the customers alone.
    let baseline_secs = (args.secs / 2).max(1);
    let n = per_customer(baseline_secs, args.interval_ms);
    let pb = bar("baseline", args.customers * n);
    let started = Instant::now();
    let visits = customers(addr, &customer_ips, interval, n, timeout, &pb).await;
    let baseline = summarize(visits, started.elapsed().as_secs_f64());
    pb.finish_and_clear();

    // 2. the flood, with the customers again (new visitors) once it is in full swing.
    let n = per_customer(args.secs, args.interval_ms);
    let multi = MultiProgress::new();
    let flood_bar = multi.add(bar(
        "flood",
        args.flood_rate as usize * (args.secs as usize + 1),
    ));
    let customers_bar = multi.add(bar("customers (flood)", args.customers * n));
    let before = limited_counts(&http, &url).await;
    let flood = Flood::start(args, addr, &url, &server, flood_bar.clone()).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let visits = customers(addr, &customer_ips, interval, n, timeout, &customers_bar).await;
    let under_flood = summarize(visits, started.elapsed().as_secs_f64());
    let mut flood = flood.finish().await;
    flood.limited = increase(&before, &limited_counts(&http, &url).await);
    flood_bar.finish_and_clear();
    customers_bar.finish_and_clear();

    // 3. idle sockets, once the flood's sockets are closed on the server too.
    let idle = if args.idle_sockets > 0 {
        wait_for_no_sockets(&http, &url).await;
        Some(idle_phase(args, addr, &http, &url, probe_ip, timeout).await)
    } else {
        None
    };
    let rss = rss_mb();
    let peak = peak_rss_mb();

    server.shutdown().await?;
    Ok(FloodReport {
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        nofile_before,
        nofile,
        nofile_hard,
        limits,
        customers_via: "widget",
        customers: args.customers,
        interval_ms: args.interval_ms,
        answer_timeout_ms: args.answer_timeout_ms,
        baseline,
        under_flood,
        flood,
        idle,
        rss_mb: rss,
        peak_rss_mb: peak,
    })
}

fn bar(name: &str, len: usize) -> ProgressBar {
    progress_bar(name, len as u64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `i`-th customer's address: 127.0.0.2, 127.0.0.3, ... (on Linux all of 127/8 is
/// loopback).
fn customer_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(
        u32::from(FIRST_CUSTOMER).wrapping_add(i as u32),
    ))
}

/// Messages each customer sends in `secs`.
fn per_customer(secs: u64, interval_ms: u64) -> usize {
    ((secs * 1000 / interval_ms.max(1)) as usize).max(1)
}

/// The soft limit on open files raised to the hard one: (before, now, hard).
fn raise_open_files() -> (u64, u64, u64) {
    let l = frontdesk::server::open_files::raise();
    (l.before, l.now, l.hard)
}

// ----- the widget socket, as a client --------------------------------------------------

type Ws = WebSocketStream<TcpStream>;

/// A TCP connection from `from` (bound to that local address) to `server`.
async fn connect_from(server: SocketAddr, from: IpAddr) -> Result<TcpStream, String> {
    let socket = match from {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::new(from, 0))
        .map_err(|e| format!("bind {from}: {e}"))?;
    let stream = socket
        .connect(server)
        .await
        .map_err(|e| format!("connect from {from}: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

fn text_frame(frame: Value) -> Message {
    Message::Text(frame.to_string().into())
}

fn message_frame(id: usize, text: &str) -> Message {
    text_frame(json!({"type": "message", "id": id, "text": text}))
}

/// The next JSON text frame; `None` when the socket closed or failed.
async fn next_json<S>(stream: &mut S) -> Option<Value>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Says hello as a new visitor and waits for the welcome.
async fn hello(ws: &mut Ws) -> Result<(), String> {
    ws.send(text_frame(json!({"type": "hello", "token": null})))
        .await
        .map_err(|e| format!("hello: {e}"))?;
    loop {
        match next_json(ws).await {
            Some(f) if f["type"] == "welcome" => return Ok(()),
            Some(_) => continue,
            None => return Err("closed before the welcome".into()),
        }
    }
}

/// A new widget visitor from `from`: connection, upgrade, hello, welcome.
async fn open_widget(server: SocketAddr, from: IpAddr) -> Result<Ws, String> {
    let work = async {
        let stream = connect_from(server, from).await?;
        let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{server}/ws"), stream)
            .await
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(res) => {
                    format!("upgrade refused: HTTP {}", res.status().as_u16())
                }
                e => format!("upgrade: {e}"),
            })?;
        hello(&mut ws).await?;
        Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(format!("no welcome within {CONNECT_TIMEOUT:?}")))
}

// ----- the other customers -------------------------------------------------------------

/// One customer's visit.
#[derive(Default)]
struct Visit {
    planned: usize,
    sent: usize,
    connect_ms: Option<f64>,
    failure: Option<String>,
    /// Latency of each answered message.
    answered: Vec<f64>,
    with_replies: usize,
    late: usize,
    slowed: usize,
    errors: usize,
}

/// Every customer at once, customer `c` from `ips[c]`, first messages spread over one
/// interval.
async fn customers(
    server: SocketAddr,
    ips: &[IpAddr],
    interval: Duration,
    n: usize,
    timeout: Duration,
    pb: &ProgressBar,
) -> Vec<Visit> {
    // the first message a moment from now, after the connections
    let start = Instant::now() + Duration::from_millis(200);
    let tasks: Vec<_> = ips
        .iter()
        .enumerate()
        .map(|(c, &ip)| {
            let first = start + interval.mul_f64(c as f64 / ips.len() as f64);
            tokio::spawn(customer(
                server,
                ip,
                c,
                first,
                interval,
                n,
                timeout,
                pb.clone(),
            ))
        })
        .collect();
    let mut visits = Vec::new();
    for t in tasks {
        visits.push(t.await.unwrap_or_else(|e| Visit {
            planned: n,
            failure: Some(format!("the customer's task failed: {e}")),
            ..Visit::default()
        }));
    }
    visits
}

/// A new visitor from `from` sends `n` messages, one every `interval` from `first` on, each
/// at its planned time whatever happened to the previous ones; each is answered when its
/// turn comes within `timeout` of the planned time.
#[allow(clippy::too_many_arguments)]
async fn customer(
    server: SocketAddr,
    from: IpAddr,
    c: usize,
    first: Instant,
    interval: Duration,
    n: usize,
    timeout: Duration,
    pb: ProgressBar,
) -> Visit {
    let mut visit = Visit {
        planned: n,
        ..Visit::default()
    };
    let started = Instant::now();
    let ws = match open_widget(server, from).await {
        Ok(ws) => ws,
        Err(e) => {
            visit.failure = Some(e);
            pb.inc(n as u64);
            return visit;
        }
    };
    visit.connect_ms = Some(ms(started.elapsed()));
    let planned: Vec<Instant> = (0..n).map(|j| first + interval * j as u32).collect();
    let deadline = planned[n - 1] + timeout;
    let (mut sink, mut stream) = ws.split();
    let sent = AtomicUsize::new(0);
    let sending = async {
        for (j, at) in planned.iter().enumerate() {
            tokio::time::sleep_until(*at).await;
            let text = ROUTINE[(c * 7 + j) % ROUTINE.len()];
            if sink.send(message_frame(j, text)).await.is_err() {
                break;
            }
            sent.fetch_add(1, Ordering::Relaxed);
        }
    };
    let receiving = async {
        let mut settled = vec![false; n];
        let mut left = n;
        while left > 0 {
            let Ok(Some(frame)) = tokio::time::timeout_at(deadline, next_json(&mut stream)).await
            else {
                break;
            };
            let Some(j) = frame["id"].as_u64().map(|j| j as usize).filter(|&j| j < n) else {
                continue;
            };
            if settled[j] {
                continue;
            }
            match frame["type"].as_str() {
                Some("turn") => {
                    let took = Instant::now().saturating_duration_since(planned[j]);
                    if took <= timeout {
                        visit.answered.push(ms(took));
                        if frame["replies"].as_array().is_some_and(|r| !r.is_empty()) {
                            visit.with_replies += 1;
                        }
                    } else {
                        visit.late += 1;
                    }
                }
                Some("slow_down") => visit.slowed += 1,
                Some("error") => visit.errors += 1,
                _ => continue,
            }
            settled[j] = true;
            left -= 1;
            pb.inc(1);
        }
        pb.inc(left as u64);
    };
    tokio::join!(sending, receiving);
    visit.sent = sent.into_inner();
    let _ = sink.close().await;
    visit
}

fn summarize(visits: Vec<Visit>, secs: f64) -> CustomerPhase {
    let customers = visits.len();
    let mut connect: Vec<f64> = visits.iter().filter_map(|v| v.connect_ms).collect();
    let mut latency: Vec<f64> = visits.iter().flat_map(|v| v.answered.clone()).collect();
    connect.sort_by(|a, b| a.total_cmp(b));
    latency.sort_by(|a, b| a.total_cmp(b));
    let planned: usize = visits.iter().map(|v| v.planned).sum();
    let answered = latency.len();
    let sum = |f: fn(&Visit) -> usize| visits.iter().map(f).sum::<usize>();
    CustomerPhase {
        secs,
        customers,
        connected: connect.len(),
        connect_p50_ms: quantile(&connect, 0.50),
        connect_max_ms: connect.last().copied().unwrap_or(f64::NAN),
        planned,
        sent: sum(|v| v.sent),
        answered,
        answered_share: answered as f64 / planned.max(1) as f64,
        with_replies: sum(|v| v.with_replies),
        late: sum(|v| v.late),
        slowed: sum(|v| v.slowed),
        errors: sum(|v| v.errors),
        p50_ms: quantile(&latency, 0.50),
        p95_ms: quantile(&latency, 0.95),
        p99_ms: quantile(&latency, 0.99),
        max_ms: latency.last().copied().unwrap_or(f64::NAN),
        first_failure: visits.iter().find_map(|v| v.failure.clone()),
    }
}

/// The `p` quantile of sorted values (nearest rank); NaN when there are none.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

// ----- the flood -----------------------------------------------------------------------

/// What the flooder counts, shared by its tasks.
#[derive(Default)]
struct Counts {
    sent: AtomicUsize,
    turns: AtomicUsize,
    slowed: AtomicUsize,
    errors: AtomicUsize,
    unanswered: AtomicUsize,
    rest_ok: AtomicUsize,
    rest_429: AtomicUsize,
    rest_other: AtomicUsize,
    transport: AtomicUsize,
}

fn add(n: &AtomicUsize, by: usize) {
    n.fetch_add(by, Ordering::Relaxed);
}

fn get(n: &AtomicUsize) -> usize {
    n.load(Ordering::Relaxed)
}

/// The flood running, until [`Flood::finish`].
struct Flood {
    via: FloodVia,
    rate: u32,
    widget_sockets: usize,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Flood {
    /// Opens the flood's sockets (and its REST key) and starts sending.
    async fn start(
        args: &BenchFloodArgs,
        server: SocketAddr,
        url: &str,
        running: &frontdesk::app::RunningServer,
        pb: ProgressBar,
    ) -> anyhow::Result<Flood> {
        let (widget_rate, rest_rate) = match args.flood_via {
            FloodVia::Widget => (args.flood_rate, 0),
            FloodVia::Rest => (0, args.flood_rate),
            FloodVia::Both => (args.flood_rate / 2, args.flood_rate - args.flood_rate / 2),
        };
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let mut sockets = Vec::new();
        if widget_rate > 0 {
            for _ in 0..args.flood_sockets.max(1) {
                match open_widget(server, IpAddr::V4(FLOODER)).await {
                    Ok(ws) => sockets.push(ws),
                    Err(e) => {
                        tracing::debug!(error = %e, "a flood socket did not open");
                        add(&counts.transport, 1);
                    }
                }
            }
        }
        let rest = if rest_rate > 0 {
            // The REST API needs a key: one of its own, sent with every request.
            let key = frontdesk::server::auth::create_api_key(
                running.store.as_ref(),
                "bench flood",
                frontdesk::server::auth::Scope::Messages,
            )
            .await?;
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", key.key).parse()?,
            );
            Some(
                reqwest::Client::builder()
                    .local_address(Some(IpAddr::V4(FLOODER)))
                    .pool_max_idle_per_host(REST_IN_FLIGHT)
                    .default_headers(headers)
                    .build()?,
            )
        } else {
            None
        };
        let widget_sockets = sockets.len();
        let started = Instant::now();
        let each = sockets.len();
        for (k, ws) in sockets.into_iter().enumerate() {
            let (counts, stop, pb) = (counts.clone(), stop.clone(), pb.clone());
            tasks.push(tokio::spawn(flood_socket(
                ws,
                k,
                each,
                widget_rate,
                started,
                counts,
                stop,
                pb,
            )));
        }
        if let Some(client) = rest {
            let (counts, stop) = (counts.clone(), stop.clone());
            let url = format!("{url}/api/v1/messages");
            tasks.push(tokio::spawn(flood_rest(
                client, url, rest_rate, started, counts, stop, pb,
            )));
        }
        Ok(Flood {
            via: args.flood_via,
            rate: args.flood_rate,
            widget_sockets,
            counts,
            stop,
            started,
            tasks,
        })
    }

    /// Stops sending, waits for the answers still due, and counts.
    async fn finish(self) -> FloodPhase {
        self.stop.store(true, Ordering::Relaxed);
        let sending_secs = self.started.elapsed().as_secs_f64();
        for t in self.tasks {
            let _ = t.await;
        }
        let c = &self.counts;
        let sent = get(&c.sent);
        FloodPhase {
            via: self.via,
            rate_per_sec: self.rate,
            secs: sending_secs,
            widget_sockets: self.widget_sockets,
            sent,
            achieved_per_sec: sent as f64 / sending_secs,
            widget_turns: get(&c.turns),
            widget_slow_down: get(&c.slowed),
            widget_errors: get(&c.errors),
            widget_unanswered: get(&c.unanswered),
            rest_ok: get(&c.rest_ok),
            rest_429: get(&c.rest_429),
            rest_other: get(&c.rest_other),
            transport_errors: get(&c.transport),
            limited: BTreeMap::new(),
        }
    }
}

/// Flood frames `k`, `k + each`, `k + 2 each`, ... on one socket, frame `i` at `i / rate`
/// seconds after `started` (open loop: a socket that fell behind sends at once); counts the
/// answers until every frame sent is answered or [`FLOOD_GRACE`] after the stop.
#[allow(clippy::too_many_arguments)]
async fn flood_socket(
    ws: Ws,
    k: usize,
    each: usize,
    rate: u32,
    started: Instant,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    pb: ProgressBar,
) {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let (mut sink, mut stream) = ws.split();
    let sent = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let sending = async {
        let mut i = k;
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep_until(started + interval.mul_f64(i as f64)).await;
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if sink
                .send(message_frame(i, ROUTINE[i % ROUTINE.len()]))
                .await
                .is_err()
            {
                add(&counts.transport, 1);
                break;
            }
            sent.fetch_add(1, Ordering::Relaxed);
            add(&counts.sent, 1);
            pb.inc(1);
            i += each;
        }
        done.store(true, Ordering::Relaxed);
    };
    let receiving =
        async {
            let mut answered = 0;
            let mut grace: Option<Instant> = None;
            loop {
                if done.load(Ordering::Relaxed) {
                    let until = *grace.get_or_insert_with(|| Instant::now() + FLOOD_GRACE);
                    if answered >= sent.load(Ordering::Relaxed) || Instant::now() >= until {
                        break;
                    }
                }
                let frame =
                    match tokio::time::timeout(Duration::from_millis(100), next_json(&mut stream))
                        .await
                    {
                        Err(_) => continue,
                        Ok(None) => break,
                        Ok(Some(frame)) => frame,
                    };
                match frame["type"].as_str() {
                    Some("turn") => add(&counts.turns, 1),
                    Some("slow_down") => add(&counts.slowed, 1),
                    Some("error") => add(&counts.errors, 1),
                    _ => continue,
                }
                answered += 1;
            }
            answered
        };
    let ((), answered) = tokio::join!(sending, receiving);
    add(
        &counts.unanswered,
        sent.into_inner().saturating_sub(answered),
    );
    let _ = sink.close().await;
}

/// Flood REST messages at `rate`, each from its own `user_id` of a thousand (so only the
/// address's limit binds), at most [`REST_IN_FLIGHT`] at once.
async fn flood_rest(
    client: reqwest::Client,
    url: String,
    rate: u32,
    started: Instant,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    pb: ProgressBar,
) {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(REST_IN_FLIGHT));
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(started + interval.mul_f64(i as f64)).await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        add(&counts.sent, 1);
        pb.inc(1);
        let (client, url, counts) = (client.clone(), url.clone(), counts.clone());
        tokio::spawn(async move {
            let body = json!({"user_id": format!("flood-{}", i % 1000),
                              "text": ROUTINE[i % ROUTINE.len()]});
            match client.post(&url).json(&body).send().await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let _ = res.bytes().await;
                    match status {
                        200 => add(&counts.rest_ok, 1),
                        429 => add(&counts.rest_429, 1),
                        _ => add(&counts.rest_other, 1),
                    }
                }
                Err(_) => add(&counts.transport, 1),
            }
            drop(permit);
        });
        i += 1;
    }
    // the answers still due
    let _ = tokio::time::timeout(FLOOD_GRACE, in_flight.acquire_many(REST_IN_FLIGHT as u32)).await;
}

// ----- the server's own figures ---------------------------------------------------------

/// `frontdesk_limited_total` by reason, from `/metrics`.
async fn limited_counts(http: &reqwest::Client, url: &str) -> BTreeMap<String, f64> {
    let Ok(res) = http.get(format!("{url}/metrics")).send().await else {
        return BTreeMap::new();
    };
    let text = res.text().await.unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("frontdesk_limited_total{reason=\""))
        .filter_map(|rest| {
            let (reason, value) = rest.split_once("\"}")?;
            Some((reason.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

fn increase(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// `components.widget_sockets` of `/health`.
async fn widget_sockets(http: &reqwest::Client, url: &str) -> Option<u64> {
    let res = http.get(format!("{url}/health")).send().await.ok()?;
    let body: Value = res.json().await.ok()?;
    body["components"]["widget_sockets"].as_u64()
}

/// Waits (at most 10 s) until the server has noticed every closed widget socket.
async fn wait_for_no_sockets(http: &reqwest::Client, url: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if widget_sockets(http, url).await == Some(0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ----- idle sockets ---------------------------------------------------------------------

/// A connection of the flooding address, held open.
enum Held {
    /// Upgraded and welcomed: a widget socket.
    Widget(Box<Ws>),
    /// Refused (with this status and reason), kept as an idle keep-alive connection.
    Refused(String, TcpStream),
}

/// Starts the widget's upgrade on a plain TCP connection from `from`: on 101 the socket
/// says hello and is kept; on a refusal the connection is kept as it is.
async fn open_idle(server: SocketAddr, from: IpAddr) -> Result<Held, String> {
    let work = async {
        let mut stream = connect_from(server, from).await?;
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {server}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 16 * 1024 {
                return Err("answer head over 16 KiB".to_string());
            }
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("closed before answering".to_string());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status in {head:?}"))?;
        if status == 101 {
            let mut ws = WebSocketStream::from_raw_socket(stream, Role::Client, None).await;
            hello(&mut ws).await?;
            return Ok(Held::Widget(Box::new(ws)));
        }
        // Read the refusal's body, so that the connection is idle afterwards.
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let reason = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|b| b["error"]["reason"].as_str().map(str::to_string))
            .unwrap_or_else(|| "-".into());
        Ok(Held::Refused(format!("{status} {reason}"), stream))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {CONNECT_TIMEOUT:?}")))
}

/// Whether a held connection is still open (its peer has not closed it).
fn still_open(held: &mut Held) -> bool {
    match held {
        Held::Widget(ws) => match ws.next().now_or_never() {
            None => true,
            Some(Some(Ok(Message::Close(_)))) | Some(Some(Err(_))) | Some(None) => false,
            Some(Some(Ok(_))) => true,
        },
        Held::Refused(_, stream) => {
            let mut byte = [0u8; 1];
            match stream.try_read(&mut byte) {
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                Ok(n) => n > 0,
            }
        }
    }
}

async fn idle_phase(
    args: &BenchFloodArgs,
    server: SocketAddr,
    http: &reqwest::Client,
    url: &str,
    probe_ip: IpAddr,
    timeout: Duration,
) -> IdlePhase {
    let before = limited_counts(http, url).await;
    let pb = bar("idle sockets", args.idle_sockets);
    let started = Instant::now();
    let opened: Vec<Result<Held, String>> = futures::stream::iter(0..args.idle_sockets)
        .map(|_| {
            let pb = pb.clone();
            async move {
                let r = open_idle(server, IpAddr::V4(FLOODER)).await;
                pb.inc(1);
                r
            }
        })
        .buffer_unordered(IDLE_OPENING_AT_ONCE)
        .collect()
        .await;
    let secs_to_open = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let mut held = Vec::new();
    let mut refused = BTreeMap::new();
    let (mut accepted, mut failed, mut first_failure) = (0, 0, None);
    for r in opened {
        match r {
            Ok(h) => {
                match &h {
                    Held::Widget(_) => accepted += 1,
                    Held::Refused(why, _) => *refused.entry(why.clone()).or_insert(0) += 1,
                }
                held.push(h);
            }
            Err(e) => {
                failed += 1;
                first_failure.get_or_insert(e);
            }
        }
    }
    let server_widget_sockets = widget_sockets(http, url).await;

    // A customer from another address, with every connection above held open.
    let started = Instant::now();
    let mut probe = IdlePhase {
        attempted: args.idle_sockets,
        secs_to_open,
        accepted,
        refused,
        failed,
        first_failure,
        held_open: 0,
        server_widget_sockets,
        probe_address: probe_ip.to_string(),
        probe_connected: false,
        probe_connect_ms: f64::NAN,
        probe_sent: 0,
        probe_answered: 0,
        probe_p50_ms: f64::NAN,
        probe_max_ms: f64::NAN,
        probe_failure: None,
        limited: BTreeMap::new(),
    };
    match open_widget(server, probe_ip).await {
        Ok(mut ws) => {
            probe.probe_connected = true;
            probe.probe_connect_ms = ms(started.elapsed());
            let mut latency = Vec::new();
            for (j, text) in ROUTINE.iter().take(PROBE_MESSAGES).enumerate() {
                let sent_at = Instant::now();
                if ws.send(message_frame(j, text)).await.is_err() {
                    probe.probe_failure = Some("the socket closed".into());
                    break;
                }
                probe.probe_sent += 1;
                let answer = tokio::time::timeout(timeout, async {
                    while let Some(f) = next_json(&mut ws).await {
                        if f["id"] == j {
                            return Some(f);
                        }
                    }
                    None
                })
                .await;
                match answer {
                    Ok(Some(f)) if f["type"] == "turn" => latency.push(ms(sent_at.elapsed())),
                    Ok(Some(f)) => {
                        probe
                            .probe_failure
                            .get_or_insert(format!("answered {}", f["type"]));
                    }
                    Ok(None) => {
                        probe.probe_failure = Some("the socket closed".into());
                        break;
                    }
                    Err(_) => {
                        probe
                            .probe_failure
                            .get_or_insert(format!("no answer within {timeout:?}"));
                    }
                }
                // a customer's pace, well under the per-customer limit
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            latency.sort_by(|a, b| a.total_cmp(b));
            probe.probe_answered = latency.len();
            probe.probe_p50_ms = quantile(&latency, 0.5);
            probe.probe_max_ms = latency.last().copied().unwrap_or(f64::NAN);
            let _ = ws.close(None).await;
        }
        Err(e) => {
            probe.probe_connect_ms = ms(started.elapsed());
            probe.probe_failure = Some(e);
        }
    }
    probe.held_open = held.iter_mut().map(still_open).filter(|&open| open).count();
    probe.limited = increase(&before, &limited_counts(http, url).await);
    drop(held);
    probe
}

// ----- the report -----------------------------------------------------------------------

fn limited_text(limited: &BTreeMap<String, f64>) -> String {
    if limited.is_empty() {
        return "none".into();
    }
    limited
        .iter()
        .map(|(k, v)| format!("{k} {v:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_table(r: &FloodReport) {
    let l = &r.limits;
    let phase = |p: &CustomerPhase| {
        let mut s = format!(
            "{} sent of {}, {} answered ({:.1}%), p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            p.sent,
            p.planned,
            p.answered,
            p.answered_share * 100.0,
            p.p50_ms,
            p.p95_ms,
            p.p99_ms,
            p.max_ms
        );
        s += &format!(
            "\n                      {} of {} connected (p50 {:.1} ms, max {:.1} ms); {} with a bot reply, {} late, {} slow_down, {} errors",
            p.connected,
            p.customers,
            p.connect_p50_ms,
            p.connect_max_ms,
            p.with_replies,
            p.late,
            p.slowed,
            p.errors
        );
        if let Some(f) = &p.first_failure {
            s += &format!("\n                      first failure: {f}");
        }
        s
    };
    println!(
        "frontdesk bench flood (real server on loopback, NLU + sled, default [limits], {} cores; open files {} (was {}, hard {}))",
        r.cores, r.nofile, r.nofile_before, r.nofile_hard
    );
    println!(
        "  limits:             widget {}/s per address (burst {}), {}/s per customer (burst {}), REST {}/s per address, {} sockets per address, {} in all",
        l.ip_messages_per_sec,
        l.ip_messages_burst,
        l.customer_messages_per_sec,
        l.customer_messages_burst,
        l.api_ip_messages_per_sec,
        l.sockets_per_ip,
        l.sockets_total
    );
    println!(
        "  customers:          {} {} visitors from {}..{}, one message every {} ms; answered = turn within {} ms",
        r.customers,
        r.customers_via,
        customer_ip(0),
        customer_ip(r.customers - 1),
        r.interval_ms,
        r.answer_timeout_ms
    );
    println!(
        "  baseline ({:.0} s):    {}",
        r.baseline.secs,
        phase(&r.baseline)
    );
    println!("                      (reference measured in the same run, no flood)");
    println!(
        "  under flood ({:.0} s): {}",
        r.under_flood.secs,
        phase(&r.under_flood)
    );
    println!("                      target p99 <= 200 ms and >= 95% answered");
    let f = &r.flood;
    println!(
        "  flood from {FLOODER}: {} at {}/s asked, {:.0}/s sent for {:.1} s ({} sent; {} widget sockets opened)",
        f.via.label(),
        f.rate_per_sec, f.achieved_per_sec, f.secs, f.sent, f.widget_sockets
    );
    if f.via != FloodVia::Rest {
        println!(
            "                      widget: {} turns (handled), {} slow_down, {} errors, {} unanswered",
            f.widget_turns, f.widget_slow_down, f.widget_errors, f.widget_unanswered
        );
    }
    if f.via != FloodVia::Widget {
        println!(
            "                      REST: {} answered 200, {} refused 429, {} other",
            f.rest_ok, f.rest_429, f.rest_other
        );
    }
    println!(
        "                      {} transport errors; refused by the limits: {}",
        f.transport_errors,
        limited_text(&f.limited)
    );
    match &r.idle {
        None => println!("  idle sockets:       skipped (--idle-sockets 0)"),
        Some(i) => {
            let refused = i
                .refused
                .iter()
                .map(|(k, v)| format!("{v} refused {k}"))
                .collect::<Vec<_>>()
                .join(", ");
            println!(
                "  idle sockets:       {} opened from {FLOODER} in {:.1} s: {} accepted (101), {}, {} failed; {} still open at the end; server counts {} widget sockets",
                i.attempted,
                i.secs_to_open,
                i.accepted,
                if refused.is_empty() { "none refused".into() } else { refused },
                i.failed,
                i.held_open,
                i.server_widget_sockets
                    .map_or("?".to_string(), |n| n.to_string())
            );
            if let Some(e) = &i.first_failure {
                println!("                      first failure: {e}");
            }
            println!(
                "                      another address ({}): {} in {:.1} ms, {} of {} answered, p50 {:.1} ms, max {:.1} ms  target: others still connect",
                i.probe_address,
                if i.probe_connected { "connected" } else { "NOT connected" },
                i.probe_connect_ms,
                i.probe_answered,
                i.probe_sent,
                i.probe_p50_ms,
                i.probe_max_ms
            );
            if let Some(e) = &i.probe_failure {
                println!("                      probe failure: {e}");
            }
            println!(
                "                      refused by the limits: {}",
                limited_text(&i.limited)
            );
        }
    }
    println!(
        "  memory:             RSS {:.0} MB at the end (peak {:.0} MB), server and load generator together",
        r.rss_mb, r.peak_rss_mb
    );
}
