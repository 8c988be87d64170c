//! `frontdesk hash-password`: an argon2 hash for an agent's `password_hash`.

use anyhow::Context as _;

pub fn run() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(
        !password.is_empty(),
        "no password on stdin: run `echo 'the password' | frontdesk hash-password`"
    );
    println!("{}", frontdesk::server::auth::hash_password(password)?);
    Ok(())
}
