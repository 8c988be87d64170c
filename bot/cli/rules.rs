//! `frontdesk rules check|versions|show|rollback`: the escalation rules file from the
//! command line. `check` reads a file the way the running server would (file, line,
//! reason); the others read the versions the servers kept in the store (with sled, while
//! no server runs on the data folder; with PostgreSQL, beside running servers, which put a
//! rollback in force within seconds).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use frontdesk::cockpit::{with_diff, RulesSource, RULES};
use frontdesk::policy::Rules;

#[derive(Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    what: RulesCommand,
    /// Data folder of the store (overrides server.data_dir).
    #[arg(long, value_name = "DIR", global = true)]
    data: Option<PathBuf>,
    /// Configuration file (default: ./frontdesk.toml when it exists).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Check a rules file without applying it: prints the queues and rules it holds, or the
    /// line and the reason it would be refused (exit status 1).
    Check {
        /// The file (default: the one the config uses).
        file: Option<PathBuf>,
    },
    /// The versions applied so far, newest first: id, when, who, lines added and removed.
    Versions {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One version's text, or with --diff its difference from the version before it.
    Show {
        id: u64,
        #[arg(long)]
        diff: bool,
    },
    /// Put version ID back: it becomes the newest version and is written to the rules file;
    /// running servers put it in force within seconds.
    Rollback { id: u64 },
}

pub fn run(args: RulesArgs) -> anyhow::Result<()> {
    super::api_key::block_on(run_async(args))
}

async fn run_async(args: RulesArgs) -> anyhow::Result<()> {
    let config = super::api_key::load_config(args.config.as_deref(), args.data)?;
    let path = frontdesk::app::Paths::resolve(&config)?.rules;
    match args.what {
        RulesCommand::Check { file } => {
            let file = file.unwrap_or(path);
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            match Rules::parse(&text, &file) {
                Ok(rules) => {
                    println!(
                        "{}: valid: {} queues, {} rules",
                        file.display(),
                        rules.queues.len(),
                        rules.rules.len()
                    );
                    Ok(())
                }
                Err(e) => {
                    let at = e.line(&text).map_or(String::new(), |l| format!(":{l}"));
                    eprintln!("{}{at}: {}", file.display(), e.reason());
                    std::process::exit(1);
                }
            }
        }
        RulesCommand::Versions { limit } => {
            let store = super::api_key::open_store(&config).await?;
            let versions = store.versions(RULES, limit).await?;
            if versions.is_empty() {
                println!("no versions yet: a server keeps one from its first start");
            }
            for v in versions {
                println!(
                    "{:>4}  {}  {:<9} {}",
                    v.id,
                    v.time.format("%Y-%m-%d %H:%M:%S"),
                    v.summary,
                    v.author
                );
            }
            Ok(())
        }
        RulesCommand::Show { id, diff } => {
            let store = super::api_key::open_store(&config).await?;
            let (v, text_diff) =
                with_diff(store.as_ref(), RULES, id)
                    .await?
                    .with_context(|| {
                        format!("no version {id}: `frontdesk rules versions` lists them")
                    })?;
            match diff {
                true => print!("{text_diff}"),
                false => print!("{}", v.text),
            }
            Ok(())
        }
        RulesCommand::Rollback { id } => {
            anyhow::ensure!(
                config.engine.rules.is_some(),
                "the config uses the built-in rules, which are not a file of yours: `frontdesk init DIR` \
                 writes an editable rules.toml; point engine.rules at it, then roll back"
            );
            let store = super::api_key::open_store(&config).await?;
            let source = RulesSource {
                path: path.clone(),
                desk: None,
            };
            let version = frontdesk::cockpit::rollback_in_store(
                store.as_ref(),
                &source,
                id,
                "the command line",
            )
            .await?;
            println!(
                "version {} (a copy of {id}, {}) is the newest and written to {}",
                version.id,
                version.summary,
                path.display()
            );
            Ok(())
        }
    }
}
