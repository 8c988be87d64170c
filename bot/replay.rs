//! `frontdesk replay FILE.jsonl`: recorded customer messages through the full desk (NLU,
//! policy, routine answers, queues) on a temporary store, so a support lead sees what a rule
//! change does before deploying it.
//!
//! Input, one object per line: `{"conversation", "user_id", "text"}` and optionally
//! `"profile": {"tier", "lifetime_value"}`. Output, one line per conversation in order of
//! first appearance: `{"conversation", "status", "queue", "reasons", "replies"}`; a summary
//! (answered, escalated by reason) goes to stderr.

use crate::commerce;
use crate::config::{Config, EngineConfig};
use crate::desk::{Desk, DeskParts, Understand};
use crate::dialogue::Dialogue;
use crate::message::{ChannelKind, Inbound, Profile, Status};
use crate::nlu::service::{NluService, ServiceOptions};
use crate::nlu::{Nlu, NluOptions};
use crate::policy::{EscalationReason, Rules};
use crate::store::SledStore;
use anyhow::Context;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Recorded messages, one JSON object per line.
    pub file: PathBuf,
    /// Rules to try instead of the configured ones (engine.rules, default rules.toml).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Configuration file (intents folder, shop, default rules).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// One recorded customer message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    pub conversation: String,
    pub user_id: String,
    pub text: String,
    #[serde(default)]
    pub profile: Option<RecordedProfile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedProfile {
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub lifetime_value: Option<f64>,
}

/// What became of one recorded conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub conversation: String,
    pub status: Status,
    pub queue: Option<String>,
    pub reasons: Vec<EscalationReason>,
    pub replies: Vec<String>,
}

/// Counts for the summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub conversations: usize,
    pub messages: usize,
    pub answered: usize,
    pub escalated: usize,
    /// Escalated conversations per fired rule.
    pub by_reason: BTreeMap<String, usize>,
}

impl Summary {
    pub fn of(outcomes: &[Outcome], messages: usize) -> Summary {
        let mut s = Summary {
            conversations: outcomes.len(),
            messages,
            ..Default::default()
        };
        for o in outcomes {
            if o.status == Status::Bot {
                s.answered += 1;
            } else {
                s.escalated += 1;
                let mut rules: Vec<&str> = o.reasons.iter().map(|r| r.rule.as_str()).collect();
                rules.dedup();
                for r in rules {
                    *s.by_reason.entry(r.to_string()).or_default() += 1;
                }
            }
        }
        s
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "replayed {} messages in {} conversations: answered by the bot {}, escalated {}\n",
            self.messages, self.conversations, self.answered, self.escalated
        );
        for (rule, n) in &self.by_reason {
            out.push_str(&format!("  {n:>5}  {rule}\n"));
        }
        out
    }
}

/// Reads a replay file; a bad line is an error naming its line number.
pub fn read_records(path: &Path) -> anyhow::Result<Vec<Recorded>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open replay file {}", path.display()))?;
    let mut records = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}: cannot read", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Recorded = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{}: expected {{\"conversation\", \"user_id\", \"text\"}} (and optional \"profile\")",
                path.display(),
                i + 1
            )
        })?;
        records.push(r);
    }
    Ok(records)
}

/// Runs the records through `desk`: conversations in parallel, each one's messages in order.
/// `progress` is called once per handled message.
pub async fn replay(
    desk: &Desk,
    records: Vec<Recorded>,
    progress: &(dyn Fn() + Sync),
) -> anyhow::Result<Vec<Outcome>> {
    let mut order: Vec<String> = Vec::new();
    let mut by_conversation: BTreeMap<String, Vec<Recorded>> = BTreeMap::new();
    for r in records {
        if !by_conversation.contains_key(&r.conversation) {
            order.push(r.conversation.clone());
        }
        by_conversation
            .entry(r.conversation.clone())
            .or_default()
            .push(r);
    }
    let runs = order.into_iter().map(|name| {
        let messages = by_conversation.remove(&name).unwrap_or_default();
        async move {
            let mut replies = Vec::new();
            let mut last = None;
            for m in messages {
                // One identity per recorded conversation, even when a user has several.
                let user = format!("{}/{}", m.user_id, m.conversation);
                let mut msg = Inbound::new(ChannelKind::Rest, user, m.text.clone());
                if let Some(p) = &m.profile {
                    msg.profile = Some(Profile {
                        tier: p.tier.clone(),
                        lifetime_value: p.lifetime_value,
                        ..Default::default()
                    });
                }
                let turn = desk
                    .receive(msg)
                    .await
                    .with_context(|| format!("conversation {name}: {:?}", m.text))?;
                replies.extend(turn.replies.into_iter().map(|r| r.text));
                last = Some(turn.conversation_id);
                progress();
            }
            let record = match &last {
                Some(id) => desk.conversation(id)?,
                None => None,
            };
            Ok::<_, anyhow::Error>(Outcome {
                conversation: name,
                status: record.as_ref().map_or(Status::Bot, |c| c.status),
                queue: record
                    .as_ref()
                    .filter(|c| c.status != Status::Bot)
                    .and_then(|c| c.queue.clone()),
                reasons: record.map(|c| c.escalation).unwrap_or_default(),
                replies,
            })
        }
    });
    // Enough conversations at once for the NLU to batch; results keep the input order.
    futures::stream::iter(runs)
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// A desk on a temporary store with the configured intents and shop and the given rules.
pub fn temporary_desk(
    config: &Config,
    rules: Rules,
    nlu: Arc<dyn Understand>,
) -> anyhow::Result<Desk> {
    let shop = commerce::from_config(&config.commerce)?;
    let dialogue = Dialogue::load(&config.engine.intents_dir, shop)?;
    Ok(Desk::open_with(DeskParts {
        store: Arc::new(SledStore::temporary()?),
        nlu,
        dialogue,
        rules,
        agents: Vec::new(),
        engine: EngineConfig {
            busy_wait_ms: 600_000,
            ..config.engine.clone()
        },
    }))
}

/// The real NLU, with the intents of `engine.intents_dir`.
pub async fn load_nlu(config: &Config) -> anyhow::Result<NluService> {
    let opts = NluOptions {
        intents_dir: config.engine.intents_dir.clone(),
        ..NluOptions::default()
    };
    let nlu = tokio::task::spawn_blocking(move || Nlu::load(&opts))
        .await
        .context("loading the NLU panicked")?
        .context("loading the NLU for replay")?;
    Ok(NluService::start(nlu, ServiceOptions::default()))
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let rules_path = args
        .rules
        .clone()
        .unwrap_or_else(|| config.engine.rules.clone());
    let rules = Rules::load(&rules_path)?;
    let records = read_records(&args.file)?;
    let total = records.len();
    let runtime = tokio::runtime::Runtime::new()?;
    let outcomes = runtime.block_on(async {
        let nlu = load_nlu(&config).await?;
        let desk = temporary_desk(&config, rules, Arc::new(nlu))?;
        let bar = indicatif::ProgressBar::new(total as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} messages {per_sec} eta {eta}",
            )
            .expect("valid progress template"),
        );
        let outcomes = replay(&desk, records, &|| bar.inc(1)).await;
        bar.finish_and_clear();
        outcomes
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
