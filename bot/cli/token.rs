//! `frontdesk token customer ID [--tier T] [--lifetime-value V] [--ttl 1h]`: prints a
//! customer token signed the way the server checks it (with `server.shop_secret`, else the
//! key derived for customer tokens), so a shop can test its integration.

use std::path::PathBuf;

use frontdesk::server::auth::{CustomerClaims, Keys};

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub what: TokenCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// A signed customer token for `data-customer-token` or the REST `customer_token`.
    Customer {
        /// The shop's id for the customer.
        id: String,
        #[arg(long)]
        tier: Option<String>,
        #[arg(long)]
        lifetime_value: Option<f64>,
        /// Lifetime: 90s, 30m, 1h, 1d (at most server.customer_token_max_secs).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Data folder holding the generated secret (overrides server.data_dir).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Configuration file (default: ./frontdesk.toml when it exists).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Seconds in `90s`, `30m`, `1h`, `1d` or a plain number of seconds.
pub fn parse_ttl(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| anyhow::anyhow!("--ttl {text:?}: use 90s, 30m, 1h or 1d"))?;
    let unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => anyhow::bail!("--ttl {text:?}: use 90s, 30m, 1h or 1d"),
    };
    Ok(n * unit)
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let TokenCommand::Customer {
        id,
        tier,
        lifetime_value,
        ttl,
        data,
        config,
    } = args.what;
    let config = super::api_key::load_config(config.as_deref(), data)?;
    let ttl = parse_ttl(&ttl)?;
    let max = config.server.customer_token_max_secs;
    anyhow::ensure!(
        ttl > 0 && ttl <= max,
        "--ttl must be between 1 second and server.customer_token_max_secs ({max} s)"
    );
    anyhow::ensure!(!id.trim().is_empty(), "the customer id is empty");
    // With PostgreSQL the nodes share the secret through the store; with sled it is the
    // data folder's (readable while the server runs).
    let secret = match config.store.url {
        Some(_) => super::api_key::block_on(async {
            let store = super::api_key::open_store(&config).await?;
            Ok(frontdesk::app::master_secret_of(&config, store.as_ref()).await?)
        })?,
        None => frontdesk::app::master_secret(&config)?,
    };
    let keys = Keys::derive(&secret, config.server.shop_secret.as_deref());
    let token = keys.customer.sign(&CustomerClaims {
        customer_id: id.trim().to_string(),
        tier,
        lifetime_value,
        name: None,
        email: None,
        exp: Some(chrono::Utc::now().timestamp() + ttl as i64),
    });
    println!("{token}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ttls_are_read() {
        assert_eq!(super::parse_ttl("90s").unwrap(), 90);
        assert_eq!(super::parse_ttl("1h").unwrap(), 3600);
        assert_eq!(super::parse_ttl("2d").unwrap(), 172_800);
        assert_eq!(super::parse_ttl("45").unwrap(), 45);
        assert!(super::parse_ttl("1w").is_err());
    }
}
