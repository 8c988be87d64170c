//! `frontdesk replay FILE.jsonl`: recorded conversations through the full desk on a
//! temporary store; one JSON line per conversation on stdout, a summary on stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use frontdesk::config::Config;
use frontdesk::replay::{self, Summary};

use super::support;

#[derive(clap::Args)]
#[command(
    long_about = "Runs recorded customer messages through the real NLU and the full \
    policy (routine answers, escalation rules, queues) on a temporary store, so a support lead \
    sees what a rules change does before deploying it.\n\nInput, one JSON object per line: \
    {\"conversation\", \"user_id\", \"text\"} and optionally \"profile\": {\"tier\", \
    \"lifetime_value\"}. Output: one line per conversation, {\"conversation\", \"status\", \
    \"queue\", \"reasons\", \"replies\"}; a summary (answered, escalated by rule) on stderr."
)]
pub struct ReplayArgs {
    /// Recorded messages, one JSON object per line.
    pub file: PathBuf,
    /// Rules to try instead of the configured ones (engine.rules, else the built-in rules).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Configuration file (intents folder, shop, default rules).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let rules = replay::rules(&config, args.rules.as_deref())?;
    let records = replay::read_records(&args.file)?;
    let total = records.len();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outcomes = runtime.block_on(async {
        let nlu = frontdesk::app::load_nlu(&config).await?;
        // the help centre answers what the intents do not, as in `serve`
        let help = frontdesk::app::load_help_centre(&config, &nlu).await?;
        let desk = replay::temporary_desk(&config, rules, Arc::new(nlu), help)?;
        let bar = support::progress_bar("messages", total as u64);
        let outcomes = replay::replay(&desk, records, &|| bar.inc(1)).await;
        bar.finish_and_clear();
        anyhow::Ok(outcomes?)
    })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for o in &outcomes {
        serde_json::to_writer(&mut out, o)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprint!("{}", Summary::of(&outcomes, total).render());
    Ok(())
}
