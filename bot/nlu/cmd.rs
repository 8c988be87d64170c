//! The NLU commands: nlu, train, eval.
#[derive(clap::Args)]
pub struct NluArgs {}
#[derive(clap::Args)]
pub struct TrainArgs {}
#[derive(clap::Args)]
pub struct EvalArgs {}

pub fn nlu(_a: NluArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
pub fn train(_a: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
pub fn eval(_a: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
