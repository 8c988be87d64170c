//! `frontdesk bench nlu`: latency, throughput and memory of the NLU pipeline.
#[derive(clap::Args)]
pub struct BenchNluArgs {}

pub fn run(_a: BenchNluArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
