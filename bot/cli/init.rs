//! `frontdesk init DIR`: an editable copy of the shipped defaults for a support lead.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(
    long_about = "Writes into DIR an editable copy of what is built into the binary: \
    intents/ (examples and answers), rules.toml (escalation rules and queues), models/ (the \
    trained heads), demo_shop.json, validation/ (out-of-scope validation sets), and a \
    frontdesk.toml that points at them. Then `cd DIR && frontdesk serve` uses your copies; \
    a change of intents/ or rules.toml is checked and put in force within seconds while it \
    runs (the intent head is retrained in the background), or refused with its line. \
    Nothing is overwritten."
)]
pub struct InitArgs {
    /// Folder to write into (created when missing).
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    // Every folder gets its own agent passwords: none is published anywhere, each is shown
    // here once (only its argon2 hash is written).
    let mut agents = Vec::new();
    let mut passwords = Vec::new();
    for name in ["ana", "ben"] {
        let password = frontdesk::server::auth::random_token(20);
        agents.push((
            name.to_string(),
            frontdesk::server::auth::hash_password(&password)?,
        ));
        passwords.push((name, password));
    }
    let done = frontdesk::defaults::init(&args.dir, &agents)?;
    println!(
        "wrote {} files into {}; start with `frontdesk serve --config {}`",
        done.files,
        done.dir.display(),
        done.config.display()
    );
    println!("console agents (shown this once; change them in frontdesk.toml with `frontdesk hash-password`):");
    for (name, password) in passwords {
        println!("  {name}  {password}");
    }
    Ok(())
}
