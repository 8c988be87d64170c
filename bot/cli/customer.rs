//! `frontdesk customer export ID` / `frontdesk customer erase ID`: everything stored about
//! a customer as JSON, or all of it removed (an audit line keeps only a hash of the id).
//! ID is frontdesk's customer id or the shop's id for the customer. Run it while the server
//! is stopped, or use the agents' API (`GET|DELETE /api/v1/customers/{id}`) while it runs.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CustomerArgs {
    #[command(subcommand)]
    pub what: CustomerCommand,
    /// Data folder of the store (overrides server.data_dir).
    #[arg(long, value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
    /// Configuration file (default: ./frontdesk.toml when it exists).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum CustomerCommand {
    /// Print everything stored about the customer as JSON.
    Export { id: String },
    /// Remove everything stored about the customer.
    Erase { id: String },
}

pub fn run(args: CustomerArgs) -> anyhow::Result<()> {
    super::api_key::block_on(run_async(args))
}

async fn run_async(args: CustomerArgs) -> anyhow::Result<()> {
    let config = super::api_key::load_config(args.config.as_deref(), args.data)?;
    let store = super::api_key::open_store(&config).await?;
    match args.what {
        CustomerCommand::Export { id } => {
            let export = frontdesk::server::privacy::export_customer(store.as_ref(), &id, "cli")
                .await?
                .ok_or_else(|| anyhow::anyhow!("no customer {id:?}"))?;
            super::api_key::flush(store.as_ref()).await?;
            println!("{}", serde_json::to_string_pretty(&export)?);
        }
        CustomerCommand::Erase { id } => {
            let erased = frontdesk::server::privacy::erase_customer(store.as_ref(), &id, "cli")
                .await?
                .ok_or_else(|| anyhow::anyhow!("no customer {id:?}"))?;
            super::api_key::flush(store.as_ref()).await?;
            println!(
                "erased: {} conversations, {} messages, {} identities, {} other records",
                erased.conversations, erased.messages, erased.identities, erased.other
            );
        }
    }
    Ok(())
}
