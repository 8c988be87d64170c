//! frontdesk command line: parse, build config, call into the library. Nothing else.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "Self-hosted customer-support chatbot: local NLU, human queues, one binary",
    long_about = "frontdesk answers customers on the web widget, REST, Telegram and Discord, \
                  understands every message locally on the CPU (intent, sentiment, anger, \
                  entities) and hands angry or high-value customers to human agents.\n\n\
                  Start it with `frontdesk serve`; the model is fetched into the cache on first use."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: widget, REST API, agent console, channels.
    Serve(frontdesk::server::ServeArgs),
    /// Read one message per line on stdin, write one JSON analysis per line on stdout.
    Nlu(frontdesk::nlu::cmd::NluArgs),
    /// Train the intent head from intents/ (or the sentiment / anger heads).
    Train(frontdesk::nlu::cmd::TrainArgs),
    /// Measure intent, sentiment or anger quality on a labelled test set.
    Eval(frontdesk::nlu::cmd::EvalArgs),
    /// Measure speed and memory (NLU or the whole server under load).
    Bench(BenchArgs),
    /// Run recorded conversations through the full policy against a temporary store.
    Replay(frontdesk::replay::ReplayArgs),
    /// Print an argon2 hash of a password (read from stdin) for an agent's `password_hash`.
    HashPassword,
}

#[derive(clap::Args)]
struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Batch-1 latency p50/p99, best-batch throughput and peak RSS of the NLU pipeline.
    Nlu(frontdesk::nlu::bench::BenchNluArgs),
    /// Messages per second and reply latency of a real server over loopback.
    Serve(frontdesk::server::bench::BenchServeArgs),
}

fn main() -> anyhow::Result<()> {
    frontdesk::telemetry::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => frontdesk::server::serve(a),
        Command::Nlu(a) => frontdesk::nlu::cmd::nlu(a),
        Command::Train(a) => frontdesk::nlu::cmd::train(a),
        Command::Eval(a) => frontdesk::nlu::cmd::eval(a),
        Command::Bench(BenchArgs {
            what: BenchWhat::Nlu(a),
        }) => frontdesk::nlu::bench::run(a),
        Command::Bench(BenchArgs {
            what: BenchWhat::Serve(a),
        }) => frontdesk::server::bench::run(a),
        Command::Replay(a) => frontdesk::replay::run(a),
        Command::HashPassword => hash_password(),
    }
}

fn hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(
        !password.is_empty(),
        "no password on stdin: run `echo 'the password' | frontdesk hash-password`"
    );
    println!("{}", frontdesk::server::auth::hash_password(password)?);
    Ok(())
}
