//! `frontdesk store copy --from A --to B`: moves every record of a deployment between sled
//! (a data folder) and PostgreSQL (a `postgres://` URL), in either direction, then reads the
//! target back and checks each table's count and checksum.

use anyhow::Context;
use clap::{Args, Subcommand};
use frontdesk::store::{copy, Location};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    what: StoreCommand,
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy every record into an empty store and verify it (counts and checksums per table).
    /// Stop the servers of the source first, so nothing changes during the copy.
    Copy {
        /// Where the records are: a data folder (its `store` holds the sled store) or a
        /// postgres:// URL.
        #[arg(long, value_name = "DIR|URL")]
        from: String,
        /// Where they go (an empty store): a data folder or a postgres:// URL.
        #[arg(long, value_name = "DIR|URL")]
        to: String,
    },
}

pub fn run(args: StoreArgs) -> anyhow::Result<()> {
    super::api_key::block_on(async move {
        match args.what {
            StoreCommand::Copy { from, to } => copy_store(&from, &to).await,
        }
    })
}

async fn copy_store(from: &str, to: &str) -> anyhow::Result<()> {
    let (from, to) = (Location::parse(from), Location::parse(to));
    anyhow::ensure!(from != to, "--from and --to name the same store");
    if let Location::Folder(dir) = &from {
        anyhow::ensure!(
            dir.is_dir(),
            "{} holds no store: --from takes the data folder (server.data_dir) whose `store` \
             folder holds it",
            dir.parent().unwrap_or(dir).display()
        );
    }
    let source = frontdesk::store::open(&from)
        .await
        .with_context(|| format!("opening the source, {}", from.describe()))?;
    let target = frontdesk::store::open(&to)
        .await
        .with_context(|| format!("opening the target, {}", to.describe()))?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} records")
            .expect("a valid template"),
    );
    bar.set_message("copying");
    let started = std::time::Instant::now();
    let tables = copy::copy(source.as_ref(), target.as_ref(), &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .await?;
    bar.finish_and_clear();
    let records: usize = tables.iter().map(|t| t.records).sum();
    println!(
        "copied {records} records from {} to {} in {:.1} s; read back and verified:",
        from.describe(),
        to.describe(),
        started.elapsed().as_secs_f64()
    );
    for t in &tables {
        println!(
            "  {:<14} {:>8}  sha256 {}",
            t.table,
            t.records,
            &t.checksum[..16]
        );
    }
    Ok(())
}
