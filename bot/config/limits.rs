//! `[limits]`: what one sender may cost (see [`LimitsConfig`]).

use serde::{Deserialize, Serialize};

/// Abuse limits of the widget and the REST API: token buckets (a `*_per_sec` or `*_per_min`
/// refill rate and a `*_burst` of requests allowed at once; a rate of 0 turns that limit
/// off), caps on open widget sockets and their idle timeout. Excess is answered with HTTP
/// 429 (503 when the server's socket cap is reached) and `Retry-After`. Also the guards of
/// the accept loop (`server/accept.rs`): connections per address and the header-read
/// timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Widget messages per client address (every frame a page sends but pings).
    pub ip_messages_per_sec: f64,
    pub ip_messages_burst: u32,
    /// REST API messages per client address: one shop server may relay many customers.
    pub api_ip_messages_per_sec: f64,
    pub api_ip_messages_burst: u32,
    /// REST API messages of one address being answered at once; more get 429 at once, so
    /// one address cannot fill every conversation worker. 0: no cap.
    pub api_ip_in_flight: usize,
    /// Messages per customer: a widget visitor (or the shop customer it signed in as), or a
    /// REST API key's `user_id`.
    pub customer_messages_per_sec: f64,
    pub customer_messages_burst: u32,
    /// New widget sessions (sockets; each holds one visitor and at most one open
    /// conversation) per client address, per minute.
    pub ip_sessions_per_min: f64,
    pub ip_sessions_burst: u32,
    /// Open widget sockets per client address; more are refused (429).
    pub sockets_per_ip: usize,
    /// Open widget sockets in all; more are refused (503).
    pub sockets_total: usize,
    /// A widget socket with no frame from the client (pings count) for this long is closed;
    /// 0 keeps idle sockets open.
    pub socket_idle_secs: u64,
    /// A widget socket whose page sent no message (pings do not count) for this long is
    /// closed, so a page left open in a hidden tab (or a script that only pings) does not
    /// hold a socket for ever; the page reconnects when the visitor is back. 0: never.
    pub socket_quiet_secs: u64,
    /// Messages per Telegram or Discord user (per minute, and at once): beyond it their
    /// messages are not read, and they are told so once a minute. A rate of 0: no limit.
    pub platform_user_messages_per_min: f64,
    pub platform_user_messages_burst: u32,
    /// Open TCP connections per client address (peer; IPv6 per /64), WebSockets included;
    /// more are closed as soon as they are accepted. Trusted proxies are not capped. 0: no
    /// cap.
    pub connections_per_ip: usize,
    /// A connection that has not sent a complete request head this many seconds after it
    /// opened (or after its previous request) is closed.
    pub header_read_timeout_secs: u64,
    /// Addresses (and customers) each limit remembers at most; beyond it the stalest are
    /// forgotten, so a flood of addresses cannot grow the memory.
    pub max_tracked: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            ip_messages_per_sec: 20.0,
            ip_messages_burst: 40,
            api_ip_messages_per_sec: 200.0,
            api_ip_messages_burst: 400,
            api_ip_in_flight: 8,
            customer_messages_per_sec: 5.0,
            customer_messages_burst: 10,
            ip_sessions_per_min: 60.0,
            ip_sessions_burst: 60,
            sockets_per_ip: 20,
            sockets_total: 5000,
            socket_idle_secs: 600,
            socket_quiet_secs: 1800,
            platform_user_messages_per_min: 30.0,
            platform_user_messages_burst: 10,
            connections_per_ip: 256,
            header_read_timeout_secs: 10,
            max_tracked: 100_000,
        }
    }
}

impl LimitsConfig {
    /// Every rate limit off and the socket caps out of reach (benchmarks on loopback).
    pub fn unlimited() -> Self {
        LimitsConfig {
            ip_messages_per_sec: 0.0,
            api_ip_messages_per_sec: 0.0,
            customer_messages_per_sec: 0.0,
            ip_sessions_per_min: 0.0,
            sockets_per_ip: usize::MAX / 2,
            sockets_total: usize::MAX / 2,
            socket_idle_secs: 0,
            socket_quiet_secs: 0,
            platform_user_messages_per_min: 0.0,
            connections_per_ip: 0,
            api_ip_in_flight: 0,
            ..LimitsConfig::default()
        }
    }
}
