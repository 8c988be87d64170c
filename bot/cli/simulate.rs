//! `frontdesk simulate-day`: a 24-hour day at the desk from the labelled conversations in
//! `data/` (the library's `replay::day`), then its KPIs, as text, JSON or the dashboard page.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{Duration, NaiveDate, Utc};
use frontdesk::config::Config;
use frontdesk::kpis::{self, Query};
use frontdesk::policy::{BusinessHours, HoursSpec};
use frontdesk::replay::day::{self, SimAgent};

use super::support;

#[derive(clap::Args)]
#[command(
    long_about = "Simulates one day at the desk: the labelled conversations of the data \
    folder (escalation sets, stakes and late-parcel messages) arrive over 24 hours with a \
    daytime peak and go through the real NLU, rules and queues; five simulated agents on \
    shifts from 07:00 to 22:00 UTC take queued conversations after 10-60 s, answer 20-75 s \
    later and close 3-12 min after that; 40% of customers answer the rating, 70% of them \
    the NPS question after it. The store is \
    then moved to the simulated day's times and the KPIs are computed from it exactly as \
    GET /api/v1/kpis does (as of the next day, so every recontact window is over).\n\n\
    Prints the KPIs with their sample sizes; --json prints the whole report, --html FILE \
    writes the lead's dashboard for that day."
)]
pub struct SimulateArgs {
    /// The folder with escalation/*.jsonl, stakes/test.tsv and late_parcels/test.tsv.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// The simulated date (UTC), e.g. 2026-12-01.
    #[arg(long, default_value = "2026-12-01")]
    pub day: NaiveDate,
    /// Seed of arrivals, delays and ratings (the same seed gives the same day).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Rules to run the day with (each queue's SLA and opening hours too); default: the
    /// configured or built-in rules.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Opening hours (UTC, every day) for every queue without its own, e.g. 07:00-22:00 (the
    /// team's shifts); "none" keeps the queues as the rules have them.
    #[arg(long, default_value = "07:00-22:00")]
    pub open: String,
    /// Write the dashboard page of the day here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print the whole report as JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The data files a day is made of, in this order.
const SOURCES: &[&str] = &[
    "escalation/val.jsonl",
    "escalation/test.jsonl",
    "stakes/test.tsv",
    "late_parcels/test.tsv",
];

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let mut records = Vec::new();
    for source in SOURCES {
        let path = args.data.join(source);
        let read = if source.ends_with(".jsonl") {
            frontdesk::replay::read_records(&path).map_err(anyhow::Error::from)
        } else {
            frontdesk::evaluation::read_message_set(&path).map_err(anyhow::Error::from)
        };
        let read = read.with_context(|| {
            format!(
                "reading {}: run from the repository root or point --data at its data folder",
                path.display()
            )
        })?;
        // Names are per file (two files both have an `m0001`): keep them apart.
        records.extend(read.into_iter().map(|mut r| {
            r.conversation = format!("{source}/{}", r.conversation);
            r.user_id = format!("{source}/{}", r.user_id);
            r
        }));
    }
    let conversations = day::group(records);
    let team: Vec<SimAgent> = day::default_team();
    let start = args.day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let nlu = frontdesk::app::load_nlu(&config).await?;
        let help = frontdesk::app::load_help_centre(&config, &nlu).await?;
        let mut rules = frontdesk::app::replay_rules(&config, args.rules.as_deref())?;
        if args.open != "none" {
            let day = Some(args.open.clone());
            let spec = HoursSpec {
                timezone: "UTC".into(),
                mon: day.clone(),
                tue: day.clone(),
                wed: day.clone(),
                thu: day.clone(),
                fri: day.clone(),
                sat: day.clone(),
                sun: day,
                holidays: Vec::new(),
            };
            let hours = BusinessHours::from_spec(&spec)
                .map_err(|e| anyhow::anyhow!("--open {}: {e}", args.open))?;
            for queue in rules.queues.values_mut() {
                queue.hours.get_or_insert_with(|| hours.clone());
            }
        }
        let (desk, store) =
            frontdesk::app::simulation_desk(&config, rules.clone(), Arc::new(nlu), help, &team)?;
        let messages: usize = conversations.iter().map(Vec::len).sum();
        let bar = support::progress_bar("customer messages", messages as u64);
        let (counts, stamps) =
            day::simulate(&desk, &conversations, &team, start, args.seed, &|| {
                bar.inc(1)
            })
            .await?;
        bar.finish_and_clear();
        let day_store = frontdesk::store::temporary()?;
        day::rewrite(store.as_ref(), day_store.as_ref(), stamps).await?;
        let query = Query {
            since: start,
            until: start + Duration::days(1),
            ..Default::default()
        };
        let settings = kpis::settings_of(&rules, config.kpis.recontact_hours);
        let clock = kpis::business_clock(&rules);
        let now = start + Duration::days(2);
        let report = kpis::report(day_store.as_ref(), &query, &settings, &clock, now).await?;
        if let Some(path) = &args.html {
            let page = kpis::page::dashboard(&report, &format!("since={}", args.day));
            std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("dashboard: {}", path.display());
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "simulated {} ({} conversations, {} customer messages, {} claims, {} agent \
                 replies, {} closes, {} ratings and {} NPS answers sent; computed {})",
                args.day,
                counts.conversations,
                counts.customer_messages,
                counts.claims,
                counts.agent_replies,
                counts.closes,
                counts.ratings_sent,
                counts.recommendations_sent,
                Utc::now().format("%Y-%m-%d %H:%M")
            );
            for (name, f) in &report.kpis {
                println!(
                    "{name:38} {:>10}  n = {:<5} {}",
                    kpis::page::format_value(name, f),
                    f.n,
                    f.formula
                );
            }
            for (rule, f) in &report.escalation_by_rule {
                println!(
                    "escalation by rule {rule:19} {:>10}  n = {}",
                    kpis::page::format_value("escalation_rate", f),
                    f.n
                );
            }
        }
        Ok(())
    })
}
