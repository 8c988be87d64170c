//! Abuse limits of the widget and the REST API (`[limits]` in the config), on the token
//! buckets of `throttle.rs`:
//! - messages per client address (widget frames; REST messages with a limit of their own,
//!   since one shop server may relay all its customers) and per customer (a widget visitor,
//!   or a REST key's `user_id`);
//! - new widget sessions per client address;
//! - open widget sockets per client address and in all, so a few addresses holding
//!   thousands of idle sockets cannot keep everyone else out; idle sockets are closed
//!   (`widget.rs`).
//!
//! Excess is answered with [`Limited`]: HTTP 429 (503 when the server's own socket cap is
//! reached) with `Retry-After` in whole seconds and a JSON error saying when to try again;
//! on the widget socket a `slow_down` frame. Every refusal is counted in
//! `frontdesk_limited_total{reason}`.
//!
//! The client address is the socket's peer ([`ClientAddr`]); `X-Forwarded-For` is read only
//! when the peer is one of `server.trusted_proxies`. IPv6 clients are limited per /64 (one
//! host usually owns a whole /64), IPv4-mapped IPv6 addresses as IPv4.

use super::throttle::{Limiter, Rate};
use super::AppState;
use crate::config::{Config, IpRange, LimitsConfig};
use crate::metrics;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a client refused for holding too many sockets is told to wait.
const SOCKETS_RETRY: Duration = Duration::from_secs(30);
/// How long clients are told to wait when the server holds its most sockets.
const SERVER_SOCKETS_RETRY: Duration = Duration::from_secs(10);

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Widget messages from one address.
    AddressMessages,
    /// REST API messages from one address.
    ApiAddressMessages,
    /// Messages of one customer.
    CustomerMessages,
    /// New widget sessions from one address.
    Sessions,
    /// Open widget sockets of one address.
    AddressSockets,
    /// Open widget sockets in all.
    ServerSockets,
    /// REST API messages of one address being answered at once.
    ApiAddressInFlight,
}

impl Reason {
    /// The `reason` label of `frontdesk_limited_total`.
    pub fn label(self) -> &'static str {
        match self {
            Reason::AddressMessages => "ip_messages",
            Reason::ApiAddressMessages => "api_ip_messages",
            Reason::CustomerMessages => "customer_messages",
            Reason::Sessions => "ip_sessions",
            Reason::AddressSockets => "sockets_per_ip",
            Reason::ServerSockets => "sockets_total",
            Reason::ApiAddressInFlight => "api_ip_in_flight",
        }
    }
}

/// A refusal: why, and how long until the same request would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub reason: Reason,
    pub retry_after: Duration,
}

impl Limited {
    fn new(reason: Reason, retry_after: Duration) -> Limited {
        metrics::limited(reason.label());
        Limited {
            reason,
            retry_after,
        }
    }

    /// `Retry-After`: whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        (self.retry_after.as_secs_f64().ceil() as u64).max(1)
    }

    pub fn status(&self) -> StatusCode {
        match self.reason {
            Reason::ServerSockets => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// What happened and when to try again, for the JSON error.
    pub fn message(&self) -> String {
        let what = match self.reason {
            Reason::AddressMessages | Reason::ApiAddressMessages => {
                "too many messages from your address"
            }
            Reason::CustomerMessages => "too many messages from this customer",
            Reason::Sessions => "too many new chat sessions from your address",
            Reason::AddressSockets => {
                "too many open chat connections from your address: close some chat windows"
            }
            Reason::ServerSockets => "the server has as many open chat connections as it takes",
            Reason::ApiAddressInFlight => {
                "too many messages from your address are being answered at once: wait for their answers"
            }
        };
        format!("{what}; try again in {}", seconds(self.retry_after_secs()))
    }

    /// The note the widget shows when a visitor sends too fast.
    pub fn widget_note(&self) -> String {
        format!(
            "You're sending messages faster than we can read them \u{2014} please wait {}.",
            seconds(self.retry_after_secs())
        )
    }
}

fn seconds(n: u64) -> String {
    if n == 1 {
        "1 second".into()
    } else {
        format!("{n} seconds")
    }
}

impl IntoResponse for Limited {
    /// `{"error": {"code": "too_many_requests" | "busy", "message", "retry_after_secs"}}`
    /// with `Retry-After`.
    fn into_response(self) -> Response {
        let secs = self.retry_after_secs();
        let code = match self.status() {
            StatusCode::SERVICE_UNAVAILABLE => "busy",
            _ => "too_many_requests",
        };
        let body = serde_json::json!({"error": {
            "code": code,
            "message": self.message(),
            "reason": self.reason.label(),
            "retry_after_secs": secs,
        }});
        let mut response = (self.status(), Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        response
    }
}

/// The key an address is limited under: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
        v4 => v4,
    }
}

/// Open widget sockets, per address key and in all.
#[derive(Default)]
struct Open {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
}

/// Every limit of one server; shared by its handlers.
pub struct Limits {
    config: LimitsConfig,
    proxies: Vec<IpRange>,
    address_messages: Limiter<IpAddr>,
    api_address_messages: Limiter<IpAddr>,
    customer_messages: Limiter<String>,
    sessions: Limiter<IpAddr>,
    /// Bounded by `sockets_total` entries (each holds at least one socket).
    sockets: Mutex<Open>,
    /// REST messages being answered, by address (an entry holds at least one request, so
    /// the open connections bound it).
    api_in_flight: Mutex<HashMap<IpAddr, usize>>,
    /// The figures `/health` and `/metrics` show, cached (see `health.rs`).
    pub figures: super::health::Figures,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Limits {
    /// The limits of `config.limits`, trusting `config.server.trusted_proxies`.
    pub fn new(config: &Config) -> Limits {
        let l = config.limits.clone();
        let proxies = config
            .server
            .trusted_proxies
            .iter()
            .filter_map(|p| match IpRange::parse(p) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "server.trusted_proxies: entry ignored");
                    None
                }
            })
            .collect();
        let n = l.max_tracked;
        Limits {
            proxies,
            address_messages: Limiter::new(
                Rate::per_sec(l.ip_messages_per_sec, l.ip_messages_burst),
                n,
            ),
            api_address_messages: Limiter::new(
                Rate::per_sec(l.api_ip_messages_per_sec, l.api_ip_messages_burst),
                n,
            ),
            customer_messages: Limiter::new(
                Rate::per_sec(l.customer_messages_per_sec, l.customer_messages_burst),
                n,
            ),
            sessions: Limiter::new(Rate::per_min(l.ip_sessions_per_min, l.ip_sessions_burst), n),
            sockets: Mutex::default(),
            api_in_flight: Mutex::default(),
            figures: Default::default(),
            config: l,
        }
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.config
    }

    /// How long a widget socket may stay silent; `None`: for ever.
    pub fn socket_idle(&self) -> Option<Duration> {
        (self.config.socket_idle_secs > 0)
            .then(|| Duration::from_secs(self.config.socket_idle_secs))
    }

    /// How long a widget socket may go without a message from its page (pings aside).
    pub fn socket_quiet(&self) -> Option<Duration> {
        (self.config.socket_quiet_secs > 0)
            .then(|| Duration::from_secs(self.config.socket_quiet_secs))
    }

    /// The client of a request from `peer`: the peer itself, or, when the peer is a trusted
    /// proxy, the right-most address of `X-Forwarded-For` that is not a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            if !self.trusted(client) {
                break;
            }
            match parse_hop(hop) {
                Some(ip) => client = ip,
                None => break,
            }
        }
        client
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|r| r.contains(ip))
    }

    /// One widget frame from `ip`.
    pub fn address_message(&self, ip: IpAddr) -> Result<(), Limited> {
        self.address_messages
            .take(address_key(ip))
            .map_err(|wait| Limited::new(Reason::AddressMessages, wait))
    }

    /// One REST API message from `ip`.
    pub fn api_message(&self, ip: IpAddr) -> Result<(), Limited> {
        self.api_address_messages
            .take(address_key(ip))
            .map_err(|wait| Limited::new(Reason::ApiAddressMessages, wait))
    }

    /// One message of `customer` (a key that names the channel too, e.g. `web:...`).
    pub fn customer_message(&self, customer: &str) -> Result<(), Limited> {
        self.customer_messages
            .take(customer.to_string())
            .map_err(|wait| Limited::new(Reason::CustomerMessages, wait))
    }

    /// A new widget session from `ip`.
    pub fn session(&self, ip: IpAddr) -> Result<(), Limited> {
        self.sessions
            .take(address_key(ip))
            .map_err(|wait| Limited::new(Reason::Sessions, wait))
    }

    /// A place for one more widget socket of `ip`, held until the [`SocketSlot`] drops.
    pub fn open_socket(self: &Arc<Self>, ip: IpAddr) -> Result<SocketSlot, Limited> {
        let key = address_key(ip);
        let mut open = lock(&self.sockets);
        if open.total >= self.config.sockets_total {
            return Err(Limited::new(Reason::ServerSockets, SERVER_SOCKETS_RETRY));
        }
        let mine = open.by_address.entry(key).or_insert(0);
        if *mine >= self.config.sockets_per_ip {
            return Err(Limited::new(Reason::AddressSockets, SOCKETS_RETRY));
        }
        *mine += 1;
        open.total += 1;
        Ok(SocketSlot {
            limits: self.clone(),
            key,
        })
    }

    /// A place for one more REST message of `ip` being answered, held until the
    /// [`TurnSlot`] drops: one address cannot fill every conversation worker with its turns
    /// while other customers wait behind them (`limits.api_ip_in_flight`; 0: no cap).
    pub fn api_turn(self: &Arc<Self>, ip: IpAddr) -> Result<TurnSlot, Limited> {
        let key = address_key(ip);
        let cap = self.config.api_ip_in_flight;
        let mut open = lock(&self.api_in_flight);
        let mine = open.entry(key).or_insert(0);
        if cap > 0 && *mine >= cap {
            return Err(Limited::new(Reason::ApiAddressInFlight, IN_FLIGHT_RETRY));
        }
        *mine += 1;
        Ok(TurnSlot {
            limits: self.clone(),
            key,
        })
    }

    fn end_turn(&self, key: IpAddr) {
        let mut open = lock(&self.api_in_flight);
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&key);
            }
        }
    }

    /// Widget sockets open now (a counter: O(1)).
    pub fn open_sockets(&self) -> usize {
        lock(&self.sockets).total
    }

    fn close_socket(&self, key: IpAddr) {
        let mut open = lock(&self.sockets);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&key);
            }
        }
    }
}

/// One hop of `X-Forwarded-For`: an address, maybe with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
}

/// When a REST caller refused for too many messages in flight may try again.
const IN_FLIGHT_RETRY: Duration = Duration::from_secs(1);

/// A REST message's place under `limits.api_ip_in_flight`; dropping it frees the place.
pub struct TurnSlot {
    limits: Arc<Limits>,
    key: IpAddr,
}

impl Drop for TurnSlot {
    fn drop(&mut self) {
        self.limits.end_turn(self.key);
    }
}

/// A widget socket's place under the caps; dropping it frees the place.
pub struct SocketSlot {
    limits: Arc<Limits>,
    key: IpAddr,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.limits.close_socket(self.key);
    }
}

/// The client's address (see [`Limits::client_ip`]); `0.0.0.0` when the server runs without
/// connection info (a router driven in-process), so such clients share one allowance.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientAddr(state.limits.client_ip(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(toml: &str) -> Arc<Limits> {
        Arc::new(Limits::new(&Config::from_toml(toml).unwrap()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", value.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let open = limits("");
        assert_eq!(
            open.client_ip(ip("127.0.0.1"), &forwarded("9.9.9.9")),
            ip("127.0.0.1"),
            "no proxy is trusted by default"
        );
        let l = limits("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n");
        assert_eq!(
            l.client_ip(ip("127.0.0.1"), &forwarded("9.9.9.9")),
            ip("9.9.9.9")
        );
        // A client cannot forge its address by adding hops of its own on the left.
        assert_eq!(
            l.client_ip(ip("10.1.1.1"), &forwarded("6.6.6.6, 9.9.9.9, 10.2.2.2")),
            ip("9.9.9.9")
        );
        assert_eq!(
            l.client_ip(ip("8.8.8.8"), &forwarded("9.9.9.9")),
            ip("8.8.8.8")
        );
        assert_eq!(
            l.client_ip(ip("10.1.1.1"), &forwarded("[2001:db8::1]:443")),
            ip("2001:db8::1")
        );
        assert_eq!(
            l.client_ip(ip("10.1.1.1"), &forwarded("garbage")),
            ip("10.1.1.1")
        );
        assert_eq!(
            l.client_ip(ip("10.1.1.1"), &HeaderMap::new()),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_v4_as_v4() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
    }

    #[test]
    fn refusals_round_retry_after_up_and_say_when() {
        let l = limits("[limits]\ncustomer_messages_per_sec = 0.4\ncustomer_messages_burst = 1\n");
        assert!(l.customer_message("web:a").is_ok());
        let refused = l.customer_message("web:a").unwrap_err();
        assert_eq!(refused.reason, Reason::CustomerMessages);
        assert_eq!(refused.retry_after_secs(), 3, "2.5 s rounds up to 3");
        assert!(refused.message().contains("try again in 3 seconds"));
        assert!(refused.widget_note().contains("please wait 3 seconds"));
        assert!(l.customer_message("web:b").is_ok());
        let response = refused.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }

    #[test]
    fn socket_caps_count_per_address_and_free_on_drop() {
        let l = limits("[limits]\nsockets_per_ip = 2\nsockets_total = 3\n");
        let a1 = l.open_socket(ip("1.1.1.1")).unwrap();
        let _a2 = l.open_socket(ip("1.1.1.1")).unwrap();
        let refused = l.open_socket(ip("1.1.1.1")).err().unwrap();
        assert_eq!(refused.reason, Reason::AddressSockets);
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let _b1 = l.open_socket(ip("2.2.2.2")).unwrap();
        let full = l.open_socket(ip("3.3.3.3")).err().unwrap();
        assert_eq!(full.reason, Reason::ServerSockets);
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(l.open_sockets(), 3);
        drop(a1);
        assert_eq!(l.open_sockets(), 2);
        assert!(l.open_socket(ip("1.1.1.1")).is_ok());
    }
}
