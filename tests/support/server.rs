//! The one server starter of the tests: a real `frontdesk` server (the same `start` as
//! `frontdesk serve`) on 127.0.0.1:0 with a temporary data dir and the example config, with
//! either the real NLU (loaded once per test binary) or the keyword NLU (no model); plus
//! small HTTP and WebSocket clients that speak to it.

use frontdesk::app::{start, start_with_help, start_with_platforms, RunningServer};
use frontdesk::channels::platforms::PlatformsConfig;
use frontdesk::config::Config;
use frontdesk::desk::Understand;
use frontdesk::nlu::{Nlu, NluOptions};
use frontdesk::nlu::{NluService, ServiceOptions};
use frontdesk::server::auth::{create_api_key, CustomerClaims, Scope};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use super::nlu::KeywordNlu;
use super::repo;

/// The tests' two agents and their passwords (hashed once per test binary: no hash the
/// project publishes is accepted by a server).
pub const ANA: (&str, &str) = ("ana", "ana-test-password");
pub const BEN: (&str, &str) = ("ben", "ben-test-password");

/// `[[agents]]` ana (capacity 3) and ben (capacity 2), as the example config once listed.
pub fn test_agents() -> Vec<frontdesk::config::AgentConfig> {
    static HASHES: OnceLock<(String, String)> = OnceLock::new();
    let (a, b) = HASHES.get_or_init(|| {
        let hash = |p| frontdesk::server::auth::hash_password(p).expect("hash a password");
        (hash(ANA.1), hash(BEN.1))
    });
    let agent = |name: &str, display: &str, hash: &str, capacity| frontdesk::config::AgentConfig {
        name: name.into(),
        display_name: Some(display.into()),
        password_hash: hash.into(),
        capacity,
        role: "agent".into(),
        queues: Vec::new(),
    };
    vec![agent("ana", "Ana", a, 3), agent("ben", "Ben", b, 2)]
}

/// The real NLU, loaded once per test binary; its worker thread serves every test's server.
pub fn real_nlu() -> NluService {
    static NLU: OnceLock<NluService> = OnceLock::new();
    NLU.get_or_init(|| {
        let opts = NluOptions {
            intents_dir: repo("intents"),
            models_dir: repo("models"),
            validation_dir: Some(repo("tests/data")),
            ..NluOptions::default()
        };
        let nlu = Nlu::load(&opts).expect("load the NLU (model in the cache, heads in models/)");
        NluService::start(nlu, ServiceOptions::default())
    })
    .clone()
}

/// The example configuration with agents ana and ben on a data dir and a free port.
pub fn config(data_dir: &Path) -> Config {
    let mut config = Config::from_toml(include_str!("../../frontdesk.example.toml"))
        .expect("frontdesk.example.toml is valid");
    config.server.bind = "127.0.0.1:0".into();
    config.server.data_dir = data_dir.to_path_buf();
    config.agents = test_agents();
    // each message answered at once (the burst tests set their own window)
    config.engine.debounce_ms = 0;
    super::engine::configure(&mut config);
    config
}

pub struct TestServer {
    pub server: RunningServer,
    pub url: String,
    pub http: reqwest::Client,
    /// A `messages` API key that `post_message`, `say` and `say_as` send.
    pub key: String,
}

/// A server with the real NLU on `data_dir` (a fresh temp dir, or the same one again to
/// test a restart).
pub async fn serve(data_dir: &Path) -> TestServer {
    serve_with(config(data_dir), real_nlu()).await
}

/// A server with the keyword NLU: no model, for the fast tier.
pub async fn serve_keyword(data_dir: &Path) -> TestServer {
    serve_with(config(data_dir), KeywordNlu).await
}

/// A server on `config` with `nlu`; the chat platforms of its `[channels]`.
pub async fn serve_with(config: Config, nlu: impl Understand) -> TestServer {
    let server = start(config, nlu).await.expect("server starts");
    TestServer::new(server).await
}

/// A server on `config` with `nlu` and the chat platforms given (tests point them at the
/// fakes; passed explicitly, so parallel tests never share a token through the environment).
pub async fn serve_with_platforms(
    config: Config,
    nlu: impl Understand,
    platforms: PlatformsConfig,
) -> TestServer {
    let server = start_with_platforms(config, nlu, platforms)
        .await
        .expect("server starts with the chat platforms");
    TestServer::new(server).await
}

/// A server with the keyword NLU and this help centre (on a stand-in encoder).
pub async fn serve_with_help(
    config: Config,
    help: std::sync::Arc<frontdesk::kb::HelpCentre>,
) -> TestServer {
    let server = start_with_help(config, KeywordNlu, PlatformsConfig::default(), Some(help))
        .await
        .expect("server starts with the help centre");
    TestServer::new(server).await
}

impl TestServer {
    /// The text of `/metrics` (open to loopback callers).
    pub async fn metrics_text(&self) -> String {
        let res = self.http.get(self.at("/metrics")).send().await.unwrap();
        res.text().await.unwrap()
    }

    pub async fn new(server: RunningServer) -> TestServer {
        let url = server.url();
        let key = api_key(&server, "tests", Scope::Messages).await;
        TestServer {
            server,
            url,
            http: reqwest::Client::new(),
            key,
        }
    }

    /// A new API key of `scope` on this server.
    pub async fn api_key(&self, scope: Scope) -> String {
        api_key(&self.server, "tests", scope).await
    }

    /// POST /api/v1/messages with `key` (or none); returns (status, body).
    pub async fn post_message_with(&self, key: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.at("/api/v1/messages")).json(&body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// GET `path` with `Authorization: Bearer KEY`; returns (status, body).
    pub async fn get_with(&self, key: &str, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(self.at(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// POST /api/v1/messages with the server's test key; returns (status, body).
    pub async fn post_message(&self, body: Value) -> (u16, Value) {
        self.post_message_with(Some(&self.key), body).await
    }

    /// A customer's message on the REST channel, which must succeed.
    pub async fn say(&self, user: &str, text: &str) -> Value {
        let (status, body) = self
            .post_message(json!({"user_id": user, "text": text}))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Same, as a customer the shop vouches for (a signed token with the profile).
    pub async fn say_as(&self, user: &str, claims: &CustomerClaims, text: &str) -> Value {
        let token = self.server.keys.customer.sign(claims);
        let (status, body) = self
            .post_message(json!({"user_id": user, "text": text, "customer_token": token}))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// POST /console/api/login; returns (status, body).
    pub async fn try_login(&self, (name, password): (&str, &str)) -> (u16, Value) {
        let res = self
            .http
            .post(self.at("/console/api/login"))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Logs an agent in; returns the session token (sent as `Authorization: Bearer`) and
    /// the CSRF token (sent as `X-CSRF-Token` on state-changing calls).
    pub async fn login(&self, (name, password): (&str, &str)) -> Agent<'_> {
        let res = self
            .http
            .post(self.at("/console/api/login"))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "login {name}");
        let cookie = res
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        let body: Value = res.json().await.unwrap();
        Agent {
            server: self,
            token: body["token"].as_str().unwrap().to_string(),
            csrf: body["csrf"].as_str().unwrap().to_string(),
        }
    }

    /// GET /health, which must answer 200.
    pub async fn health(&self) -> Value {
        let res = self.http.get(self.at("/health")).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        res.json().await.unwrap()
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await.expect("clean shutdown");
    }
}

/// A logged-in agent using the console API.
pub struct Agent<'a> {
    pub server: &'a TestServer,
    pub token: String,
    pub csrf: String,
}

impl<'a> Agent<'a> {
    /// An agent with a session token from before (e.g. a restart): fetches its CSRF token.
    pub async fn resume(server: &'a TestServer, token: String) -> Agent<'a> {
        let res = server
            .http
            .get(server.at("/console/api/csrf"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "the session is still valid");
        let body: Value = res.json().await.unwrap();
        Agent {
            server,
            token,
            csrf: body["csrf"].as_str().unwrap().to_string(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self
            .server
            .http
            .get(self.server.at(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    /// PUT `path` with a JSON body (CSRF token and session sent); returns (status, body).
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .server
            .http
            .put(self.server.at(path))
            .bearer_auth(&self.token)
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .server
            .http
            .post(self.server.at(path))
            .bearer_auth(&self.token)
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    /// POST /console/api/conversations/{id}/{action}, which must succeed; returns the
    /// conversation after it.
    pub async fn act(&self, id: &str, action: &str, body: Option<Value>) -> Value {
        let (status, body) = self
            .post(&format!("/console/api/conversations/{id}/{action}"), body)
            .await;
        assert_eq!(status, 200, "{action}: {body}");
        body
    }

    pub async fn queue(&self, name: &str) -> Value {
        let (status, queues) = self.get("/api/v1/queues").await;
        assert_eq!(status, 200, "{queues}");
        queues
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no queue {name} in {queues}"))
    }
}

/// The text of all replies of a turn, joined.
pub fn replies(turn: &Value) -> String {
    turn["replies"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x["text"].as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

/// Claims of a shop customer, valid for an hour.
pub fn customer(id: &str, tier: Option<&str>, lifetime_value: Option<f64>) -> CustomerClaims {
    CustomerClaims {
        customer_id: id.into(),
        tier: tier.map(String::from),
        lifetime_value,
        name: None,
        email: None,
        exp: Some(chrono::Utc::now().timestamp() + 3600),
    }
}

/// The test configuration on `dir` with `[llm]` pointing at `url` (a fake endpoint): 3 s per
/// call, no retries, so a scripted failure shows at once.
pub fn config_with_llm(dir: &Path, url: String) -> Config {
    let mut config = config(dir);
    config.llm.url = Some(url);
    config.llm.model = "fake-model".into();
    config.llm.timeout_ms = 3_000;
    config.llm.max_retries = 0;
    config
}

/// Every record of `store` as (table, key, value), for checks that nothing of someone is
/// left, whatever the engine.
pub async fn dump(store: &dyn frontdesk::store::Store) -> Vec<(String, String, String)> {
    store
        .records()
        .await
        .expect("read every record")
        .into_iter()
        .map(|r| (r.table, r.key, r.value))
        .collect()
}

/// A new API key of `scope` on a running server.
pub async fn api_key(server: &RunningServer, name: &str, scope: Scope) -> String {
    create_api_key(server.store.as_ref(), name, scope)
        .await
        .expect("store the key")
        .key
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The widget's socket, as a browser page would drive it.
pub struct Widget {
    ws: Ws,
    pub welcome: Value,
}

impl Widget {
    /// Connects and says hello with a stored visitor token (or none) and a shop token.
    pub async fn connect(
        server: &TestServer,
        token: Option<&str>,
        customer_token: Option<&str>,
    ) -> Widget {
        let url = format!("ws://{}/ws", server.server.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let hello = json!({"type": "hello", "token": token, "customer_token": customer_token});
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            hello.to_string().into(),
        ))
        .await
        .unwrap();
        let mut widget = Widget {
            ws,
            welcome: Value::Null,
        };
        widget.welcome = widget.next_of("welcome").await;
        widget
    }

    pub fn token(&self) -> String {
        self.welcome["token"].as_str().unwrap().to_string()
    }

    pub async fn send(&mut self, text: &str) {
        let frame = json!({"type": "message", "id": 1, "text": text});
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                frame.to_string().into(),
            ))
            .await
            .unwrap();
    }

    /// Sends one raw WebSocket message (a ping frame, a huge frame...).
    pub async fn send_raw(&mut self, msg: tokio_tungstenite::tungstenite::Message) -> bool {
        self.ws.send(msg).await.is_ok()
    }

    /// Reads until the server closes the socket; its close code (`None`: dropped without
    /// one). Fails after a generous limit instead of hanging.
    pub async fn closed(&mut self) -> Option<u16> {
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .expect("the server closes the socket");
            match frame {
                Some(Ok(Message::Close(c))) => return c.map(|c| u16::from(c.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next frame; a test that waits for something that never comes fails after a
    /// generous limit instead of hanging (a guard, not a timing assertion).
    pub async fn next(&mut self) -> Value {
        let frame = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
            .await
            .expect("a frame from the server")
            .expect("socket open")
            .expect("frame");
        match frame {
            tokio_tungstenite::tungstenite::Message::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("unexpected frame {other:?}"),
        }
    }

    /// Skips frames until one of `kind` arrives.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }
}
