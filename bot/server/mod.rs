//! The HTTP/WebSocket server: widget, REST channel, agent console. (issue 4)
pub mod bench;

#[derive(clap::Args)]
pub struct ServeArgs {}

pub fn serve(_args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("serve is not built yet")
}
