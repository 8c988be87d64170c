//! Load benchmark of a real server over loopback. (issue 4)
#[derive(clap::Args)]
pub struct BenchServeArgs {}

pub fn run(_args: BenchServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench serve is not built yet")
}
