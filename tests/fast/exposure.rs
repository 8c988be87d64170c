//! What a stranger can reach or hold: published passwords, another address's lock-out,
//! sockets that only ping, huge frames, `/metrics`, a flooding platform sender, one pressing
//! buttons without end.

use crate::support::server::*;
use frontdesk::desk::survey::SurveyAnswer;
use frontdesk::intake::{Intake, Pressed};
use frontdesk::message::{ChannelKind, ConversationId, Identity, Inbound, Survey};
use frontdesk::throttle::Rate;
use serde_json::json;

/// `frontdesk init` writes agents with passwords of their own, shown once; the documented
/// demo password opens nothing, the printed one does.
#[tokio::test]
async fn an_init_folders_agents_have_passwords_nobody_published() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("shop-bot");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("init")
        .arg(&folder)
        .output()
        .expect("frontdesk init");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let password = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("ana "))
        .map(|p| p.trim().to_string())
        .unwrap_or_else(|| panic!("no password for ana in {printed}"));
    let toml = std::fs::read_to_string(folder.join("frontdesk.toml")).unwrap();
    assert!(!toml.contains(&password), "only the hash is written");
    let mut config =
        frontdesk::config::Config::load_with_env(Some(&folder.join("frontdesk.toml")), |_| None)
            .unwrap();
    config.server.bind = "127.0.0.1:0".into();
    config.server.data_dir = dir.path().join("data");
    let s = serve_with(config, crate::support::nlu::KeywordNlu).await;
    let (status, _) = s.try_login(("ana", "ana-demo-password")).await;
    assert_eq!(status, 401);
    let (status, body) = s.try_login(("ana", &password)).await;
    assert_eq!(status, 200, "{body}");
    s.shutdown().await;
}

/// A server behind a proxy it trusts, so tests can speak from many addresses.
async fn behind_proxy(dir: &std::path::Path) -> TestServer {
    let mut c = config(dir);
    c.server.trusted_proxies = vec!["127.0.0.1".into()];
    serve_with(c, crate::support::nlu::KeywordNlu).await
}

async fn login_from(s: &TestServer, ip: &str, password: &str) -> u16 {
    s.http
        .post(s.at("/console/api/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"name": "ana", "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Wrong passwords for ana from one address stop that address, not ana: she logs in from
/// her own. Guesses from many addresses slow the name; her known address is not slowed.
/// A name of a thousand characters is refused before anything is checked.
#[tokio::test]
async fn a_guesser_elsewhere_cannot_lock_an_agent_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = behind_proxy(dir.path()).await;
    let mut codes = Vec::new();
    for i in 0..12 {
        codes.push(login_from(&s, "198.51.100.1", &format!("guess-{i}")).await);
    }
    assert_eq!(&codes[..5], &[401; 5], "{codes:?}");
    assert!(codes[5..].iter().all(|c| *c == 429), "{codes:?}");
    assert_eq!(login_from(&s, "198.51.100.1", ANA.1).await, 429);
    assert_eq!(login_from(&s, "203.0.113.5", ANA.1).await, 200);
    // An IPv6 host cannot rotate through its /64: its addresses count as one.
    for i in 0..5 {
        assert_eq!(
            login_from(&s, &format!("2001:db8:1:2::{i}"), "guess").await,
            401
        );
    }
    assert_eq!(login_from(&s, "2001:db8:1:2::99", ANA.1).await, 429);
    // The name has failed 10 times from everywhere: it is slowed for strangers (one attempt
    // per 5 s: of ten at once, one is checked now, one waits its slot, the rest are told to
    // come back), never for the address she logged in from.
    let strangers = (0..10).map(|i| {
        let s = &s;
        async move { login_from(s, &format!("198.51.100.{}", 10 + i), "guess").await }
    });
    let codes = futures::future::join_all(strangers).await;
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 8, "{codes:?}");
    assert_eq!(login_from(&s, "203.0.113.5", ANA.1).await, 200);
    let (status, _) = s.try_login((&"x".repeat(1000), "whatever")).await;
    assert_eq!(status, 401);
    s.shutdown().await;
}

/// A page that only pings is closed once it has sent no message for `socket_quiet_secs`;
/// a frame past the message cap (16 MiB here) is refused without being buffered whole.
#[tokio::test]
async fn a_pinging_quiet_socket_is_closed_and_a_huge_frame_refused() {
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.limits.socket_quiet_secs = 1;
    let s = serve_with(c, crate::support::nlu::KeywordNlu).await;
    let mut page = Widget::connect(&s, None, None).await;
    let pinger = async {
        for _ in 0..40 {
            if !page
                .send_raw(Message::Text(r#"{"type":"ping"}"#.into()))
                .await
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    pinger.await;
    assert_eq!(
        page.closed().await,
        Some(frontdesk::server::widget::IDLE_CLOSE_CODE)
    );

    let mut page = Widget::connect(&s, None, None).await;
    let huge = "x".repeat(16 * 1024 * 1024);
    page.send_raw(Message::Text(huge.into())).await;
    let code = page.closed().await;
    assert!(code.is_none() || code == Some(1009), "{code:?}");
    // The server is fine for the next visitor.
    let mut next = Widget::connect(&s, None, None).await;
    next.send("hello").await;
    next.next_of("turn").await;
    s.shutdown().await;
}

/// `/metrics` answers this machine (the default) and a scraper with the key; another
/// address gets 403.
#[tokio::test]
async fn metrics_are_for_monitoring_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.server.trusted_proxies = vec!["127.0.0.1".into()];
    c.server.metrics_key = Some("k".repeat(40));
    let s = serve_with(c, crate::support::nlu::KeywordNlu).await;
    let get = |ip: Option<&str>, key: Option<&str>| {
        let mut req = s.http.get(s.at("/metrics"));
        if let Some(ip) = ip {
            req = req.header("x-forwarded-for", ip);
        }
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(None, None).await, 200);
    assert_eq!(get(Some("198.51.100.3"), None).await, 403);
    assert_eq!(get(Some("198.51.100.3"), Some("wrong")).await, 403);
    assert_eq!(get(Some("198.51.100.3"), Some(&"k".repeat(40))).await, 200);
    s.shutdown().await;
}

/// A Telegram sender past their allowance is not read (no turn, no store) and is told once;
/// another sender is unaffected.
#[tokio::test]
async fn a_flooding_platform_sender_is_limited_and_told_once() {
    let dir = tempfile::tempdir().unwrap();
    let desk = crate::support::desk::keyword_desk(dir.path());
    let intake = Intake::new(desk.clone()).with_platform_rate(Rate::per_min(6.0, 3), 1000);
    let mut told = 0;
    for i in 0..20 {
        let msg = Inbound::new(ChannelKind::Telegram, "4242", format!("spam {i}"))
            .with_message_id(format!("{i}"));
        let got = intake.receive(msg).await.unwrap();
        if got.direct && !got.turn.replies.is_empty() {
            told += 1;
            assert!(got.turn.replies[0].text.contains("faster than I can read"));
        }
    }
    assert_eq!(told, 1);
    let id = desk
        .conversation_of(ChannelKind::Telegram, "4242")
        .await
        .unwrap()
        .unwrap();
    let stored = desk.conversation(&id).await.unwrap().unwrap().messages;
    let customer = stored.iter().filter(|m| m.text.starts_with("spam")).count();
    assert_eq!(customer, 3, "the burst only");
    let other = Inbound::new(ChannelKind::Telegram, "4343", "where is my order 10001");
    assert!(!intake.receive(other).await.unwrap().direct);
}

/// Survey button presses cost store reads like messages: a Telegram or Discord sender who
/// presses without end is cut off by the same allowance, and others are not.
#[tokio::test]
async fn a_platform_sender_pressing_buttons_without_end_is_limited() {
    let dir = tempfile::tempdir().unwrap();
    let desk = crate::support::desk::keyword_desk(dir.path());
    let intake = Intake::new(desk.clone()).with_platform_rate(Rate::per_min(6.0, 3), 1000);
    let presser = Identity::new(ChannelKind::Telegram, "4242");
    // A well-formed press for a conversation that is not theirs (a replayed or forged one).
    let elsewhere = ConversationId("0b5e6c1e-3f0a-4f57-9d3c-2a7d1c7f2e11".into());
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        let pressed = intake
            .answer_press(&presser, &elsewhere, Survey::Csat, SurveyAnswer::Score(5))
            .await
            .unwrap();
        outcomes.push(pressed);
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|p| **p == Pressed::NotCounted)
            .count(),
        3,
        "the burst is read (and counts nothing): {outcomes:?}"
    );
    assert!(outcomes[3..].iter().all(|p| *p == Pressed::TooFast));
    // Messages share that allowance: the presser's next message is not read either.
    let msg = Inbound::new(ChannelKind::Telegram, "4242", "where is my order 10001");
    assert!(intake.receive(msg).await.unwrap().direct);
    // Another sender is served.
    let other = Identity::new(ChannelKind::Telegram, "4343");
    assert_eq!(
        intake
            .answer_press(&other, &elsewhere, Survey::Csat, SurveyAnswer::Score(5))
            .await
            .unwrap(),
        Pressed::NotCounted
    );
}
