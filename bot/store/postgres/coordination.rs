//! The PostgreSQL engine's [`Coordination`]: the `leases` and `settings` tables, and
//! LISTEN/NOTIFY on `frontdesk_events` (and `frontdesk_outbox`, which wakes this node's
//! couriers for records other nodes queued) over a connection of its own (outside the
//! pool), made again when it drops, with [`RESYNC`] published locally after each gap.

use super::*;
use futures::StreamExt;
use std::time::Duration;

/// The NOTIFY channel of the desk's live events.
const EVENTS: &str = "frontdesk_events";
/// Larger payloads are not sent (PostgreSQL's limit is 8,000 bytes).
const MAX_PAYLOAD: usize = 7_000;

impl PgStore {
    /// Listens on [`EVENTS`] for as long as the process runs, reconnecting after a failure.
    fn start_listening(&self) {
        let url = self.url.clone();
        let out = self.published.clone();
        let wake = self.outbox_wake.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                match listen(&url, &out, &wake, first).await {
                    Ok(()) => {
                        tracing::warn!("the event listener's connection closed; reconnecting")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the event listener failed; reconnecting in 1 s")
                    }
                }
                first = false;
                if out.receiver_count() == 0 {
                    // Nobody listens any more (the store was dropped).
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// One listening connection: LISTEN, then forward every notification until it drops.
async fn listen(
    url: &str,
    out: &tokio::sync::broadcast::Sender<String>,
    wake: &[tokio::sync::Notify; 4],
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let driver = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(message) = stream.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    let _ = tx.send((n.channel() == EVENTS, n.payload().to_string()));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "event listener connection error");
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!(
            "LISTEN {EVENTS}; LISTEN {}",
            super::outbox::OUTBOX_NOTICES
        ))
        .await?;
    if !first {
        // Whatever was published while this node did not listen is gone: say so (the
        // couriers look at their outbox again on their own, see `crate::outbox`).
        let _ = out.send(RESYNC.to_string());
    }
    while let Some((event, payload)) = rx.recv().await {
        if event {
            let _ = out.send(payload);
            continue;
        }
        if let Some(channel) = ChannelKind::ALL.into_iter().find(|c| c.as_str() == payload) {
            wake[super::outbox::slot(channel)].notify_one();
        }
    }
    driver.abort();
    Ok(())
}

#[async_trait]
impl Coordination for PgStore {
    fn node(&self) -> &str {
        &self.node
    }

    fn shared(&self) -> bool {
        true
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ms = ttl.as_millis().min(i64::MAX as u128) as i64;
        // Free, run out, or already ours: ours until now + ttl (the database's clock, so
        // the nodes' clocks need not agree).
        let rows = self
            .rows(
                "INSERT INTO leases (name, holder, until)
                 VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
                 ON CONFLICT (name) DO UPDATE SET holder = $2, until = EXCLUDED.until
                     WHERE leases.holder = $2 OR leases.until < clock_timestamp()
                 RETURNING holder",
                &[&name, &holder, &(ms as f64)],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.exec(
            "DELETE FROM leases WHERE name = $1 AND holder = $2",
            &[&name, &holder],
        )
        .await?;
        Ok(())
    }

    async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let rows = self
            .rows(
                "SELECT name, holder, until FROM leases WHERE until > clock_timestamp()
                 ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Lease {
                name: r.get(0),
                holder: r.get(1),
                until: r.get(2),
            })
            .collect())
    }

    async fn agreed_setting(&self, name: &str, proposal: &str) -> Result<String, StoreError> {
        self.exec(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &proposal],
        )
        .await?;
        let rows = self
            .rows("SELECT value FROM settings WHERE name = $1", &[&name])
            .await?;
        Ok(rows
            .into_iter()
            .next()
            .map_or_else(|| proposal.to_string(), |r| r.get(0)))
    }

    async fn set_setting(&self, name: &str, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(v) => {
                self.exec(
                    "INSERT INTO settings (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                    &[&name, &v],
                )
                .await?
            }
            None => {
                self.exec("DELETE FROM settings WHERE name = $1", &[&name])
                    .await?
            }
        };
        Ok(())
    }

    async fn settings_under(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        // starts_with, not LIKE: a prefix holding % or _ means itself.
        let rows = self
            .rows(
                "SELECT name, value FROM settings WHERE starts_with(name, $1) ORDER BY name",
                &[&prefix],
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn publish(&self, payload: &str) -> Result<(), StoreError> {
        if payload.len() > MAX_PAYLOAD {
            tracing::warn!(
                bytes = payload.len(),
                "an event too large to publish to the other nodes"
            );
            return Ok(());
        }
        self.exec("SELECT pg_notify($1, $2)", &[&EVENTS, &payload])
            .await?;
        Ok(())
    }

    fn published(&self) -> tokio::sync::broadcast::Receiver<String> {
        let receiver = self.published.subscribe();
        self.listening.call_once(|| self.start_listening());
        receiver
    }
}
