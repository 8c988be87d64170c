//! frontdesk command line: parse the arguments, call the command in `cli/`. Nothing else.

mod cli;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "Self-hosted customer-support chatbot: local NLU, human queues, one binary",
    long_about = "frontdesk answers customers on the web widget, REST, Telegram and Discord, \
                  understands every message locally on the CPU (intent, sentiment, anger, \
                  entities) and hands angry or high-value customers to human agents.\n\n\
                  Start it with `frontdesk serve` in any directory; the model is fetched into \
                  the cache on first use, and the shipped intents, rules and heads are built in. \
                  `frontdesk init DIR` writes editable copies of them."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: widget, REST API, agent console, channels.
    Serve(cli::serve::ServeArgs),
    /// Write an editable copy of the shipped intents, rules, heads and a config into a folder.
    Init(cli::init::InitArgs),
    /// Read one message per line on stdin, write one JSON analysis per line on stdout.
    Nlu(cli::nlu::NluArgs),
    /// Train the intent head from the intents (or the sentiment / anger heads).
    Train(cli::train::TrainArgs),
    /// Measure intent, sentiment or anger quality on a labelled test set.
    Eval(cli::eval::EvalArgs),
    /// Measure speed and memory (NLU or the whole server under load).
    Bench(BenchArgs),
    /// Run recorded conversations through the full policy against a temporary store.
    Replay(cli::replay::ReplayArgs),
    /// Simulate a 24-hour day at the desk from the labelled data and print its KPIs.
    SimulateDay(cli::simulate::SimulateArgs),
    /// Print an argon2 hash of a password (read from stdin) for an agent's `password_hash`.
    HashPassword,
    /// Create, list or revoke the REST API's keys.
    ApiKey(cli::api_key::ApiKeyArgs),
    /// Print a signed customer token (to test a shop's integration).
    Token(cli::token::TokenArgs),
    /// Export or erase everything stored about a customer.
    Customer(cli::customer::CustomerArgs),
    /// Move the store between sled and PostgreSQL (`store copy`).
    Store(cli::store::StoreArgs),
    /// Check the escalation rules file, list its applied versions, show one, roll back.
    Rules(cli::rules::RulesArgs),
    /// Export agents' marks of escalations and bot answers (`train ... --feedback` reads them).
    Feedback(cli::feedback::FeedbackArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Batch-1 latency p50/p99, best-batch throughput and peak RSS of the NLU pipeline.
    Nlu(cli::bench_nlu::BenchNluArgs),
    /// Messages per second and reply latency of a real server over loopback.
    Serve(cli::bench_serve::BenchServeArgs),
    /// Other customers' answers while one address floods, and idle sockets from one address.
    Flood(cli::bench_flood::BenchFloodArgs),
}

fn main() -> anyhow::Result<()> {
    frontdesk::telemetry::init();
    match Cli::parse().command {
        Command::Serve(a) => cli::serve::run(a),
        Command::Init(a) => cli::init::run(a),
        Command::Nlu(a) => cli::nlu::run(a),
        Command::Train(a) => cli::train::run(a),
        Command::Eval(a) => cli::eval::run(a),
        Command::Bench(BenchArgs {
            what: BenchWhat::Nlu(a),
        }) => cli::bench_nlu::run(a),
        Command::Bench(BenchArgs {
            what: BenchWhat::Serve(a),
        }) => cli::bench_serve::run(a),
        Command::Bench(BenchArgs {
            what: BenchWhat::Flood(a),
        }) => cli::bench_flood::run(a),
        Command::Replay(a) => cli::replay::run(a),
        Command::SimulateDay(a) => cli::simulate::run(a),
        Command::HashPassword => cli::hash_password::run(),
        Command::ApiKey(a) => cli::api_key::run(a),
        Command::Token(a) => cli::token::run(a),
        Command::Customer(a) => cli::customer::run(a),
        Command::Store(a) => cli::store::run(a),
        Command::Rules(a) => cli::rules::run(a),
        Command::Feedback(a) => cli::feedback::run(a),
    }
}
