//! The accept loop of the HTTP server, in place of `axum::serve`, which neither times out a
//! connection that never sends a complete request nor bounds the connections one address
//! holds open (a few thousand idle connections from one host would use up the process's
//! open files). Here:
//! - a connection must send its request head within `limits.header_read_timeout_secs`; a
//!   keep-alive connection idle that long between requests is closed too;
//! - an address holds at most `limits.connections_per_ip` connections at once (WebSockets
//!   included, for as long as they are open); more are closed as soon as they are accepted
//!   and counted in `frontdesk_connections_refused_total{reason="per_address"}`. A trusted
//!   proxy (`server.trusted_proxies`) is not capped: every client behind it shares its
//!   address. IPv6 is capped per /64, as the other limits (`limits::address_key`);
//! - accept errors (out of open files: EMFILE) are logged and retried after a short pause;
//!   they never end the loop;
//! - on the stop signal the listener closes, idle connections close, requests in flight
//!   finish, and connections still open after [`SHUTDOWN_GRACE`] are dropped.
//!
//! Connections are served by hyper-util (HTTP/1, upgrades enabled for the widget's
//! WebSocket) with the router's connection info (`ConnectInfo<SocketAddr>`) as handlers and
//! the limits read it.

use super::limits::address_key;
use crate::config::{Config, IpRange};
use crate::metrics;
use axum::extract::ConnectInfo;
use axum::middleware::AddExtension;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower_service::Service;

/// How long a stopping server waits for its connections to finish what they are doing.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The pause after an accept error (out of open files, ...) before accepting again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Accept errors are logged at most this often (the others are counted in the next line).
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// The start of an HTTP/2 connection (hyper-util reads this far to tell the protocol).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How often a connection that has sent only the first bytes of [`H2_PREFACE`] is looked at
/// again while it has not sent more.
const PREFACE_POLL: Duration = Duration::from_millis(20);

/// How connections are accepted and served (from `[limits]` and `server.trusted_proxies`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Open connections per client address (key); 0: no cap.
    pub connections_per_ip: usize,
    /// How long a connection may take to send its request head (and stay idle between two
    /// requests).
    pub header_read_timeout: Duration,
    /// Peers that are not capped: proxies every client comes through.
    pub trusted_proxies: Vec<IpRange>,
    /// How long a stopping server waits for its connections.
    pub shutdown_grace: Duration,
}

impl Options {
    /// The options of `config`: `limits.connections_per_ip`,
    /// `limits.header_read_timeout_secs` and `server.trusted_proxies` (entries that do not
    /// parse are left out; the config's validation refuses them anyway).
    pub fn new(config: &Config) -> Options {
        Options {
            connections_per_ip: config.limits.connections_per_ip,
            header_read_timeout: Duration::from_secs(config.limits.header_read_timeout_secs.max(1)),
            trusted_proxies: config
                .server
                .trusted_proxies
                .iter()
                .filter_map(|p| IpRange::parse(p).ok())
                .collect(),
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }
}

/// The service one connection is served by: the router with the peer's `ConnectInfo`.
type ConnectionService = TowerToHyperService<AddExtension<Router, ConnectInfo<SocketAddr>>>;

/// Serves `router` on `listener` until `stop` turns true (or its sender is dropped), then
/// shuts down gracefully within `options.shutdown_grace`. Accept errors are logged and
/// retried; the result is `Ok` once stopped.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: Options,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let slots = Arc::new(Slots::new(&options));
    let mut connections = JoinSet::new();
    let mut errors = AcceptErrors::default();
    loop {
        let (stream, peer) = tokio::select! {
            _ = super::until_stopped(&mut stop) => break,
            Some(done) = connections.join_next() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        tracing::error!(error = %e, "a connection's task panicked");
                    }
                }
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    errors.failed(e).await;
                    continue;
                }
            },
        };
        let Some(slot) = slots.take(peer.ip()) else {
            metrics::connection_refused("per_address");
            tracing::debug!(%peer, "connection refused: the address holds its most connections");
            drop(stream);
            continue;
        };
        std::future::poll_fn(|cx| <_ as Service<SocketAddr>>::poll_ready(&mut make_service, cx))
            .await
            .unwrap_or_else(|never| match never {});
        let service = make_service
            .call(peer)
            .await
            .unwrap_or_else(|never| match never {});
        connections.spawn(connection(
            stream,
            slot,
            TowerToHyperService::new(service),
            options.header_read_timeout,
            stop.clone(),
        ));
    }
    drop(listener);
    let open = connections.len();
    let drained = tokio::time::timeout(options.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open,
            left = connections.len(),
            grace_secs = options.shutdown_grace.as_secs(),
            "connections still open after the shutdown grace; closing them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Serves one connection: waits (within `header_read_timeout`) for its first bytes, then
/// hands it to hyper; on `stop`, lets the request in flight finish and closes.
async fn connection(
    stream: TcpStream,
    slot: Slot,
    service: ConnectionService,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // hyper-util reads the first bytes to tell HTTP/1 from HTTP/2 without a timeout of its
    // own; a client that connects and sends nothing would hold the connection for ever.
    tokio::select! {
        started = tokio::time::timeout(header_read_timeout, request_started(&stream)) => {
            match started {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) | Ok(Err(_)) => return,
                Err(_) => {
                    tracing::debug!("connection closed: nothing sent within the header-read timeout");
                    return;
                }
            }
        }
        _ = super::until_stopped(&mut stop) => return,
    }
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // The slot travels with the socket, into a WebSocket's upgraded connection too: it is
    // freed when the socket closes.
    let io = TokioIo::new(Counted {
        stream,
        _slot: slot,
    });
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::trace!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = super::until_stopped(&mut stop) => conn.as_mut().graceful_shutdown(),
    }
    if let Err(e) = conn.await {
        tracing::trace!(error = %e, "connection ended with an error while stopping");
    }
}

/// Waits until the client has sent enough for hyper-util to tell its protocol without
/// waiting: `false` when it closed first.
async fn request_started(stream: &TcpStream) -> io::Result<bool> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(false);
        }
        if n == H2_PREFACE.len() || buf[..n] != H2_PREFACE[..n] {
            return Ok(true);
        }
        // Part of the HTTP/2 preface: `peek` returns at once while those bytes wait unread.
        tokio::time::sleep(PREFACE_POLL).await;
    }
}

/// Accept errors, logged at most every [`ACCEPT_ERROR_LOG_EVERY`].
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    /// Logs `e` (unless a client merely gave up first) and pauses before the next accept.
    async fn failed(&mut self, e: io::Error) {
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
        ) {
            return;
        }
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_ERROR_LOG_EVERY)
        {
            tracing::error!(
                error = %e,
                more_since_last = self.unlogged,
                "cannot accept connections; retrying. If the process is out of open files, \
                 raise its limit (`ulimit -n`, systemd `LimitNOFILE`) or lower \
                 limits.connections_per_ip"
            );
            self.last_logged = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        tokio::time::sleep(ACCEPT_RETRY).await;
    }
}

/// Open connections per address key.
struct Slots {
    cap: usize,
    proxies: Vec<IpRange>,
    /// Only addresses with a connection open: bounded by the open sockets.
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Slots {
    fn new(options: &Options) -> Slots {
        Slots {
            cap: options.connections_per_ip,
            proxies: options.trusted_proxies.clone(),
            open: Mutex::default(),
        }
    }

    /// A place for one more connection of `peer`, or `None` when it holds its most.
    fn take(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        if self.cap == 0 || self.proxies.iter().any(|p| p.contains(peer)) {
            return Some(Slot { slots: None });
        }
        let key = address_key(peer);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.entry(key).or_insert(0);
        if *mine >= self.cap {
            return None;
        }
        *mine += 1;
        Some(Slot {
            slots: Some((self.clone(), key)),
        })
    }

    fn free(&self, key: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&key);
            }
        }
    }
}

/// One connection's place under the cap (`None`: not counted); dropping it frees the place.
struct Slot {
    slots: Option<(Arc<Slots>, IpAddr)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((slots, key)) = self.slots.take() {
            slots.free(key);
        }
    }
}

/// A socket with its place under the cap: the place is freed when the socket is dropped.
struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(cap: usize, proxies: &[&str]) -> Arc<Slots> {
        Arc::new(Slots::new(&Options {
            connections_per_ip: cap,
            header_read_timeout: Duration::from_secs(10),
            trusted_proxies: proxies.iter().map(|p| IpRange::parse(p).unwrap()).collect(),
            shutdown_grace: SHUTDOWN_GRACE,
        }))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_holds_at_most_its_cap_and_a_dropped_slot_frees_its_place() {
        let s = slots(2, &[]);
        let a1 = s.take(ip("1.1.1.1")).unwrap();
        let _a2 = s.take(ip("1.1.1.1")).unwrap();
        assert!(s.take(ip("1.1.1.1")).is_none());
        assert!(
            s.take(ip("::ffff:1.1.1.1")).is_none(),
            "v4-mapped counts as v4"
        );
        assert!(s.take(ip("2.2.2.2")).is_some());
        drop(a1);
        assert!(s.take(ip("1.1.1.1")).is_some());
        let _v6 = s.take(ip("2001:db8::1")).unwrap();
        let _v6b = s.take(ip("2001:db8::2")).unwrap();
        assert!(s.take(ip("2001:db8::3")).is_none(), "IPv6 per /64");
    }

    #[test]
    fn trusted_proxies_and_a_cap_of_0_are_not_counted() {
        let s = slots(1, &["10.0.0.0/8"]);
        let held: Vec<Slot> = (0..5).map(|_| s.take(ip("10.1.2.3")).unwrap()).collect();
        assert_eq!(held.len(), 5);
        assert!(s.open.lock().unwrap().is_empty());
        let s = slots(0, &[]);
        let held: Vec<Slot> = (0..5).map(|_| s.take(ip("1.1.1.1")).unwrap()).collect();
        assert_eq!(held.len(), 5);
    }
}
