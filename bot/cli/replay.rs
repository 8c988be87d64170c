//! `frontdesk replay`: recorded conversations (a file, or the store's own with `--since`)
//! through the full desk on a temporary store; one JSON line per conversation on stdout, a
//! summary on stderr. With `--baseline` (or `--intents`), a what-if: the same
//! conversations under the baseline and the change, and what differs (text, `--json`,
//! `--html FILE`).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use frontdesk::config::Config;
use frontdesk::desk::Understand;
use frontdesk::replay::whatif::{self, History, Side};
use frontdesk::replay::{self, Summary};

use super::support;

#[derive(clap::Args)]
#[command(
    long_about = "Runs recorded customer messages through the real NLU and the full \
    policy (routine answers, escalation rules, queues) on a temporary store, so a support lead \
    sees what a rules change does before deploying it.\n\nInput: FILE, one JSON object per \
    line: {\"conversation\", \"user_id\", \"text\"} and optionally \"profile\": {\"tier\", \
    \"lifetime_value\"} (and \"expected\": \"escalate\"|\"bot\", a label); or, with --since \
    7d, the store's own conversations of the last 7 days (--queue Q: only those that sat in \
    queue Q), labelled by the agents' feedback marks. Output: one line per conversation, \
    {\"conversation\", \"status\", \"queue\", \"reasons\", \"replies\"}; a summary (answered, \
    escalated by rule) on stderr.\n\nWhat-if: --rules NEW --baseline OLD (or --intents \
    NEW_DIR, against the configured intents) replays the same conversations under both and \
    prints which would now escalate or not, to which queue and by which rule, each queue's \
    load before and after, and how the labelled conversations fare; --html FILE writes the \
    same as a page with the load by hour of day, --json prints it as one object."
)]
pub struct ReplayArgs {
    /// Recorded messages, one JSON object per line (or --since for the store's own).
    pub file: Option<PathBuf>,
    /// Rules to try instead of the configured ones (engine.rules, else the built-in rules).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// What-if: the rules to compare against (e.g. the file in force).
    #[arg(long, value_name = "OLD_RULES")]
    pub baseline: Option<PathBuf>,
    /// What-if: an intents folder to try against the configured one.
    #[arg(long, value_name = "DIR")]
    pub intents: Option<PathBuf>,
    /// Replay the store's conversations changed in this window ("7d", "12h", "2w").
    #[arg(long, value_name = "WINDOW")]
    pub since: Option<String>,
    /// With --since: only conversations that sat in this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// With --since: at most this many conversations (newest first).
    #[arg(long, default_value_t = 5000)]
    pub limit: usize,
    /// What-if: also write the comparison as an HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// What-if: print the comparison as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Configuration file (intents folder, shop, default rules, store).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let what_if = args.baseline.is_some() || args.intents.is_some();
    anyhow::ensure!(
        what_if || (args.html.is_none() && !args.json),
        "--html and --json are for a what-if: add --baseline OLD_RULES (or --intents DIR)"
    );
    anyhow::ensure!(
        args.queue.is_none() || args.since.is_some(),
        "--queue picks among the store's conversations: add --since 7d"
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let history = history(&args, &config).await?;
        let total = history.records.len();
        let nlu = frontdesk::app::load_nlu(&config).await?;
        // the help centre answers what the intents do not, as in `serve`
        let help = frontdesk::app::load_help_centre(&config, &nlu).await?;
        if !what_if {
            let rules = frontdesk::app::replay_rules(&config, args.rules.as_deref())?;
            let desk = frontdesk::app::temporary_desk(&config, rules, Arc::new(nlu), help)?;
            let bar = support::progress_bar("messages", total as u64);
            let outcomes = replay::replay(&desk, history.records, &|| bar.inc(1)).await;
            bar.finish_and_clear();
            let outcomes = outcomes?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for o in &outcomes {
                serde_json::to_writer(&mut out, o)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            eprint!("{}", Summary::of(&outcomes, total).render());
            return anyhow::Ok(());
        }
        let shared: Arc<dyn Understand> = whatif::Remembering::new(Arc::new(nlu.clone()));
        let before = Side {
            rules: frontdesk::app::replay_rules(&config, args.baseline.as_deref())?,
            nlu: shared.clone(),
            intents_dir: None,
        };
        let after = Side {
            rules: frontdesk::app::replay_rules(
                &config,
                args.rules.as_deref().or(args.baseline.as_deref()),
            )?,
            nlu: match &args.intents {
                // Other intents: an NLU of their own, with its intent head.
                Some(dir) => {
                    let mut other = config.clone();
                    other.engine.intents_dir = Some(dir.clone());
                    Arc::new(frontdesk::app::load_nlu(&other).await?)
                }
                None => shared,
            },
            intents_dir: args.intents.clone(),
        };
        let bar = support::progress_bar("messages", 2 * total as u64);
        let make = frontdesk::app::desk_maker(config.clone(), help);
        let result = whatif::what_if(&make, before, after, &history, &|| bar.inc(1)).await;
        bar.finish_and_clear();
        let result = result?;
        let title = title(&args);
        if let Some(path) = &args.html {
            std::fs::write(
                path,
                frontdesk::evaluation::report::whatif_page(&result, &title),
            )
            .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        if args.json {
            println!("{}", serde_json::to_string(&result)?);
        } else {
            print!("{title}\n{}", result.render());
        }
        anyhow::Ok(())
    })
}

/// What was compared with what, in words.
fn title(args: &ReplayArgs) -> String {
    let name = |p: &Option<PathBuf>, none: &str| {
        p.as_ref()
            .map_or(none.to_string(), |p| p.display().to_string())
    };
    let mut parts = Vec::new();
    if args.baseline.is_some() || args.rules.is_some() {
        parts.push(format!(
            "rules {} against {}",
            name(&args.rules, "(same)"),
            name(&args.baseline, "(configured)")
        ));
    }
    if let Some(dir) = &args.intents {
        parts.push(format!("intents {} against the configured", dir.display()));
    }
    let on = match (&args.file, &args.since) {
        (Some(f), _) => format!("on {}", f.display()),
        (None, Some(s)) => format!(
            "on the store's conversations of the last {s}{}",
            args.queue
                .as_ref()
                .map_or(String::new(), |q| format!(" in queue {q}"))
        ),
        (None, None) => String::new(),
    };
    format!("{} {on}", parts.join(", "))
}

/// The conversations to replay: the file, or the store's window.
async fn history(args: &ReplayArgs, config: &Config) -> anyhow::Result<History> {
    match (&args.file, &args.since) {
        (Some(file), None) => {
            let records = replay::read_records(file)?;
            let labels = whatif::labels_of(&records);
            Ok(History {
                records,
                labels,
                ..Default::default()
            })
        }
        (None, Some(since)) => {
            let from = frontdesk::cockpit::parse_since(since, chrono::Utc::now())?;
            let store = super::api_key::open_store(config).await?;
            Ok(whatif::from_store(store.as_ref(), from, args.queue.as_deref(), args.limit).await?)
        }
        (Some(_), Some(_)) => anyhow::bail!("give a FILE or --since, not both"),
        (None, None) => {
            anyhow::bail!("give a recorded FILE, or --since 7d to replay the store's conversations")
        }
    }
}
