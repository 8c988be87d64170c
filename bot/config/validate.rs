//! The checks serde cannot make, run once at start; each error names its key.

use super::{Config, ConfigError, IpRange, MAX_AGENT_NAME, MIN_SECRET_LEN};

/// Agent password hashes that were published with frontdesk (the example configuration and
/// the folders `frontdesk init` wrote before it generated passwords): their passwords are in
/// the documentation, so a server that finds one refuses to start.
const PUBLISHED_PASSWORD_HASHES: [&str; 2] = [
    "$argon2id$v=19$m=65536,t=3,p=4$ESux5XhTY+hCGyZ9ya84Tg$JuqVE30wY76iFlOUGEEBWdbWc/peWblcbwTSjeLoDII",
    "$argon2id$v=19$m=65536,t=3,p=4$I9QcNi6YeicC4Wdec4XDgg$o8o1t+4p7WD2r4nq2KvLhX1+kzD7KaKB0W3CBMqBh9s",
];

impl Config {
    /// Checks the values that serde cannot; each error names its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: key.into(),
            message: message.into(),
        };
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.bind",
                "must be an address like 127.0.0.1:8080",
            ));
        }
        if self.server.max_text_len == 0 {
            return Err(invalid("server.max_text_len", "must be at least 1"));
        }
        for (key, secret) in [
            ("server.secret", &self.server.secret),
            ("server.shop_secret", &self.server.shop_secret),
        ] {
            if let Some(s) = secret.as_deref().filter(|s| !s.is_empty()) {
                if s.len() < MIN_SECRET_LEN {
                    return Err(invalid(
                        key,
                        "must be at least 32 bytes (leave server.secret unset and a long one is \
                         generated into the data dir)",
                    ));
                }
            }
        }
        if self.server.customer_token_max_secs < 60 {
            return Err(invalid(
                "server.customer_token_max_secs",
                "must be at least 60",
            ));
        }
        if self.server.session_secs < 60 {
            return Err(invalid("server.session_secs", "must be at least 60"));
        }
        if let Some(u) = &self.server.public_url {
            let ok = reqwest::Url::parse(u)
                .map(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
                .unwrap_or(false);
            if !ok {
                return Err(invalid(
                    "server.public_url",
                    "must be an http:// or https:// address such as https://support.example.com",
                ));
            }
        }
        if let Some(key) = self.server.metrics_key.as_deref() {
            if key.len() < MIN_SECRET_LEN {
                return Err(invalid(
                    "server.metrics_key",
                    "must be at least 32 bytes (make one with `openssl rand -hex 32`), or leave \
                     it unset and list your scraper in server.metrics_from",
                ));
            }
        }
        for (i, entry) in self.server.metrics_from.iter().enumerate() {
            if let Err(e) = IpRange::parse(entry) {
                return Err(invalid(
                    &format!("server.metrics_from[{i}]"),
                    &e.to_string(),
                ));
            }
        }
        for (i, entry) in self.server.trusted_proxies.iter().enumerate() {
            if let Err(e) = IpRange::parse(entry) {
                return Err(invalid(
                    &format!("server.trusted_proxies[{i}]"),
                    &format!(
                        "{e}; list only the addresses of your own reverse proxies (or leave it \
                         empty when clients connect directly)"
                    ),
                ));
            }
        }
        self.validate_limits()?;
        if self.engine.workers == 0 {
            return Err(invalid("engine.workers", "must be at least 1"));
        }
        if self.engine.worker_queue == 0 {
            return Err(invalid("engine.worker_queue", "must be at least 1"));
        }
        if self.engine.agent_idle_secs == 0 {
            return Err(invalid("engine.agent_idle_secs", "must be at least 1"));
        }
        match self.nlu.weights.as_str() {
            "f16" | "f32" | "int8" => {}
            _ => {
                return Err(invalid(
                    "nlu.weights",
                    "must be \"f16\", \"f32\" or \"int8\"",
                ))
            }
        }
        match self.nlu.isa.as_str() {
            "auto" | "avx512" | "avx2" | "neon" | "portable" => {}
            _ => {
                return Err(invalid(
                    "nlu.isa",
                    "must be \"auto\", \"avx512\", \"avx2\", \"neon\" or \"portable\"",
                ))
            }
        }
        if self.nlu.threads == Some(0) {
            return Err(invalid("nlu.threads", "must be at least 1"));
        }
        let tg = &self.channels.telegram;
        let url = |key: &str, value: &Option<String>| -> Result<(), ConfigError> {
            match value {
                Some(u) if reqwest::Url::parse(u).is_err() => Err(invalid(
                    key,
                    "is not a URL: give a base such as http://127.0.0.1:8081",
                )),
                _ => Ok(()),
            }
        };
        url("channels.telegram.api_url", &tg.api_url)?;
        url("channels.discord.api_url", &self.channels.discord.api_url)?;
        if let Some(u) = &tg.webhook_url {
            if !u.starts_with("https://") && !u.starts_with("http://")
                || reqwest::Url::parse(u).is_err()
            {
                return Err(invalid(
                    "channels.telegram.webhook_url",
                    "must be the public https address of /channels/telegram/webhook",
                ));
            }
        }
        if let Some(secret) = &tg.webhook_secret {
            let valid = (1..=256).contains(&secret.len())
                && secret
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(invalid(
                    "channels.telegram.webhook_secret",
                    "must be 1-256 characters of A-Z, a-z, 0-9, _ and -",
                ));
            }
        }
        match self.commerce.backend.as_str() {
            "demo" => {}
            "webhook" => {
                let url = self.commerce.webhook_url.as_deref().unwrap_or("");
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(invalid(
                        "commerce.webhook_url",
                        "backend = \"webhook\" needs an http:// or https:// URL",
                    ));
                }
            }
            _ => {
                return Err(invalid(
                    "commerce.backend",
                    "must be \"demo\" or \"webhook\"",
                ))
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, agent) in self.agents.iter().enumerate() {
            let key = |field: &str| format!("agents[{i}].{field}");
            if agent.name.trim().is_empty() {
                return Err(invalid(&key("name"), "must not be empty"));
            }
            if !seen.insert(agent.name.clone()) {
                return Err(invalid(&key("name"), "is used by two agents"));
            }
            if agent.name.chars().count() > MAX_AGENT_NAME {
                return Err(invalid(
                    &key("name"),
                    &format!("must be at most {MAX_AGENT_NAME} characters"),
                ));
            }
            if PUBLISHED_PASSWORD_HASHES.contains(&agent.password_hash.trim()) {
                return Err(invalid(
                    &key("password_hash"),
                    "is the demo hash published with frontdesk (its password is in the \
                     documentation, so anyone can log in): make your own with \
                     `echo 'a long password' | frontdesk hash-password` and put it here",
                ));
            }
            if !agent.password_hash.starts_with("$argon2") {
                return Err(invalid(
                    &key("password_hash"),
                    "must be an argon2 PHC string ($argon2id$...)",
                ));
            }
            if agent.capacity == 0 {
                return Err(invalid(&key("capacity"), "must be at least 1"));
            }
            if agent
                .queues
                .iter()
                .any(|q| q.trim().is_empty() || q.chars().count() > MAX_AGENT_NAME)
            {
                return Err(invalid(
                    &key("queues"),
                    "names a queue that is empty or too long: use the queue names of the rules \
                     file ([queues.NAME]), or leave the list out for every queue",
                ));
            }
            if !matches!(agent.role.as_str(), "agent" | "lead" | "admin") {
                return Err(invalid(
                    &key("role"),
                    "must be \"agent\", \"lead\" or \"admin\"",
                ));
            }
        }
        Ok(())
    }

    /// `[limits]`: rates finite and not negative, a burst of at least 1 where a rate is on,
    /// socket and connection caps, a header-read timeout and the tracked-key bound that can
    /// work.
    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("limits.{key}"),
            message,
        };
        for (rate_key, rate, burst_key, burst) in [
            (
                "ip_messages_per_sec",
                l.ip_messages_per_sec,
                "ip_messages_burst",
                l.ip_messages_burst,
            ),
            (
                "api_ip_messages_per_sec",
                l.api_ip_messages_per_sec,
                "api_ip_messages_burst",
                l.api_ip_messages_burst,
            ),
            (
                "customer_messages_per_sec",
                l.customer_messages_per_sec,
                "customer_messages_burst",
                l.customer_messages_burst,
            ),
            (
                "ip_sessions_per_min",
                l.ip_sessions_per_min,
                "ip_sessions_burst",
                l.ip_sessions_burst,
            ),
        ] {
            if !rate.is_finite() || rate < 0.0 {
                return Err(invalid(
                    rate_key,
                    "must be a number of 0 or more (0 turns this limit off)".into(),
                ));
            }
            if rate > 0.0 && burst == 0 {
                return Err(invalid(
                    burst_key,
                    format!(
                        "must be at least 1 while limits.{rate_key} is on (set limits.{rate_key} \
                         = 0 to turn the limit off)"
                    ),
                ));
            }
        }
        if l.sockets_per_ip == 0 {
            return Err(invalid(
                "sockets_per_ip",
                "must be at least 1 (a visitor's page holds one socket)".into(),
            ));
        }
        if l.sockets_total < l.sockets_per_ip {
            return Err(invalid(
                "sockets_total",
                format!(
                    "must be at least limits.sockets_per_ip ({}): raise it or lower \
                     limits.sockets_per_ip",
                    l.sockets_per_ip
                ),
            ));
        }
        if l.connections_per_ip != 0 && l.connections_per_ip <= l.sockets_per_ip {
            return Err(invalid(
                "connections_per_ip",
                format!(
                    "must be more than limits.sockets_per_ip ({}), since every widget socket \
                     is a connection and a page needs a few more: raise it (default 256) or \
                     set 0 for no cap",
                    l.sockets_per_ip
                ),
            ));
        }
        if l.header_read_timeout_secs == 0 || l.header_read_timeout_secs > 3600 {
            return Err(invalid(
                "header_read_timeout_secs",
                "must be between 1 and 3600 (a client that never sends a request would \
                 otherwise hold its connection for ever)"
                    .into(),
            ));
        }
        if l.max_tracked < 100 {
            return Err(invalid(
                "max_tracked",
                "must be at least 100 (each address or customer costs about 100 bytes)".into(),
            ));
        }
        Ok(())
    }
}
