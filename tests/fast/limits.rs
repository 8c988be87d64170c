//! The abuse limits (`[limits]`, `bot/server/limits.rs`) as a client meets them, on a real
//! server: 429 with `Retry-After` and a JSON error saying when to try again, while other
//! addresses and customers are still served; the widget's `slow_down` frame; the caps on
//! open sockets (per address and in all); idle sockets closed; `/health` answering from
//! cached figures; the accept loop's guards (`bot/server/accept.rs`): connections that never
//! finish their request head are closed, and an address holds at most
//! `limits.connections_per_ip` connections (a trusted proxy is not capped). Two client
//! addresses come from a trusted proxy's `X-Forwarded-For`, or from a socket bound to
//! 127.0.0.2.

use crate::support::nlu::KeywordNlu;
use crate::support::server::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A server that believes `X-Forwarded-For` from 127.0.0.1, with `limits` applied to the
/// example configuration.
async fn serve_limited(
    dir: &std::path::Path,
    limits: impl FnOnce(&mut frontdesk::config::LimitsConfig),
) -> TestServer {
    let mut config = config(dir);
    config.server.trusted_proxies = vec!["127.0.0.1".into()];
    limits(&mut config.limits);
    serve_with(config, KeywordNlu).await
}

/// POST /api/v1/messages as a client at `from` (through the trusted proxy); returns the
/// status, the `Retry-After` header and the body.
async fn post_from(s: &TestServer, from: &str, body: Value) -> (u16, Option<String>, Value) {
    let res = s
        .http
        .post(s.at("/api/v1/messages"))
        .bearer_auth(&s.key)
        .header("x-forwarded-for", from)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, res.json().await.unwrap_or(Value::Null))
}

/// Opens the widget's socket as a client at `from` (through the trusted proxy); a refused
/// upgrade gives its status and `Retry-After`.
async fn open_socket(s: &TestServer, from: &str) -> Result<Ws, (u16, Option<String>)> {
    let mut req = format!("ws://{}/ws", s.server.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("x-forwarded-for", from.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(res)) => Err((
            res.status().as_u16(),
            res.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
        )),
        Err(e) => panic!("the socket failed otherwise: {e}"),
    }
}

/// Opens the socket and says hello; returns it with the welcome.
async fn widget_from(s: &TestServer, from: &str) -> (Ws, Value) {
    let mut ws = open_socket(s, from).await.expect("the socket opens");
    send(&mut ws, json!({"type": "hello", "token": null})).await;
    let welcome = next_of(&mut ws, "welcome").await;
    (ws, welcome)
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The next frame (`Err` with the close frame's code when the server closed the socket).
async fn next(ws: &mut Ws) -> Result<Value, Option<CloseCode>> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a frame from the server");
        match frame {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(c))) => return Err(c.map(|c| c.code)),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return Err(None),
        }
    }
}

async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next(ws).await.expect("the socket stays open");
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// `frontdesk_limited_total{reason="..."}` on /metrics.
async fn limited_count(s: &TestServer, reason: &str) -> f64 {
    let text = s.metrics_text().await;
    let needle = format!("frontdesk_limited_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn an_address_over_its_rate_gets_429_with_retry_after_while_another_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_limited(dir.path(), |l| {
        l.api_ip_messages_per_sec = 1.0;
        l.api_ip_messages_burst = 3;
    })
    .await;
    let before = limited_count(&s, "api_ip_messages").await;
    for i in 0..3 {
        let (status, _, body) = post_from(
            &s,
            "203.0.113.7",
            json!({"user_id": format!("flood-{i}"), "text": "where is my order 10001"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry, body) = post_from(
        &s,
        "203.0.113.7",
        json!({"user_id": "flood-9", "text": "where is my order 10001"}),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry.as_deref(), Some("1"), "Retry-After in whole seconds");
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert_eq!(body["error"]["retry_after_secs"], 1, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("too many messages from your address")
            && message.contains("try again in 1 second"),
        "{message}"
    );
    // Another address behind the same proxy is still served.
    let (status, _, body) = post_from(
        &s,
        "198.51.100.9",
        json!({"user_id": "calm", "text": "where is my order 10001"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A bad key from the flooded address is limited as well (it costs the address too).
    let res = s
        .http
        .post(s.at("/api/v1/messages"))
        .bearer_auth("fd_not_a_key")
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"user_id": "x", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    assert!(limited_count(&s, "api_ip_messages").await >= before + 2.0);
    // After the wait it was told, the address is served again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, body) = post_from(
        &s,
        "203.0.113.7",
        json!({"user_id": "flood-10", "text": "where is my order 10001"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    s.shutdown().await;
}

/// Without a trusted proxy the peer address counts: a client cannot escape its limit by
/// writing its own `X-Forwarded-For`, and a client at another address (127.0.0.2) is served.
#[tokio::test]
async fn the_peer_address_counts_and_a_forged_forwarded_for_does_not_help() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.api_ip_messages_per_sec = 0.5;
    config.limits.api_ip_messages_burst = 2;
    let s = serve_with(config, KeywordNlu).await;
    for i in 0..2 {
        let (status, _, body) = post_from(
            &s,
            &format!("198.51.100.{i}"),
            json!({"user_id": format!("u{i}"), "text": "hello"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry, body) = post_from(
        &s,
        "198.51.100.3",
        json!({"user_id": "u3", "text": "hello"}),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry.as_deref(), Some("2"), "{body}");

    let other = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let res = other
        .post(s.at("/api/v1/messages"))
        .bearer_auth(&s.key)
        .json(&json!({"user_id": "u4", "text": "hello"}))
        .send()
        .await;
    match res {
        Ok(res) => assert_eq!(
            res.status().as_u16(),
            200,
            "127.0.0.2 has its own allowance"
        ),
        // Some systems only route 127.0.0.1; the proxy test above covers two addresses.
        Err(e) => eprintln!("127.0.0.2 is not usable here ({e}); skipped that part"),
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_customer_over_its_rate_is_limited_while_others_at_the_address_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_limited(dir.path(), |l| {
        l.customer_messages_per_sec = 0.5;
        l.customer_messages_burst = 2;
    })
    .await;
    let hello = |user: &str| json!({"user_id": user, "text": "hello"});
    for _ in 0..2 {
        let (status, _, body) = post_from(&s, "203.0.113.8", hello("alice")).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry, body) = post_from(&s, "203.0.113.8", hello("alice")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry.as_deref(), Some("2"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too many messages from this customer"),
        "{body}"
    );
    let (status, _, body) = post_from(&s, "203.0.113.8", hello("bob")).await;
    assert_eq!(status, 200, "another customer at the same address: {body}");

    // On the widget, the visitor is told to wait, kindly, and the message can be sent
    // again with the same id once the wait is over.
    let (mut ws, welcome) = widget_from(&s, "203.0.113.9").await;
    assert!(welcome["idle_secs"].as_u64().unwrap() > 0, "{welcome}");
    for i in 0..2 {
        let id = format!("m-{i}");
        send(
            &mut ws,
            json!({"type": "message", "id": id, "text": "hello"}),
        )
        .await;
        let turn = next_of(&mut ws, "turn").await;
        assert_eq!(turn["id"], id.as_str());
    }
    send(
        &mut ws,
        json!({"type": "message", "id": "m-2", "text": "where is my order 10001"}),
    )
    .await;
    let slow = next_of(&mut ws, "slow_down").await;
    assert_eq!(slow["id"], "m-2");
    assert_eq!(slow["retry_after_secs"], 2);
    assert_eq!(
        slow["message"],
        "You're sending messages faster than we can read them \u{2014} please wait 2 seconds."
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    send(
        &mut ws,
        json!({"type": "message", "id": "m-2", "text": "where is my order 10001"}),
    )
    .await;
    let turn = next_of(&mut ws, "turn").await;
    assert_eq!(turn["id"], "m-2");
    assert!(limited_count(&s, "customer_messages").await >= 2.0);
    s.shutdown().await;
}

#[tokio::test]
async fn message_ids_must_be_short_and_plain() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    let (status, body) = s
        .post_message(json!({"user_id": "ids", "text": "hello", "message_id": "a b"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`message_id` must be 1 to 100 characters"),
        "{body}"
    );
    let (status, body) = s
        .post_message(json!({"user_id": "ids", "text": "hello", "message_id": "x".repeat(101)}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = s
        .post_message(json!({
            "user_id": "ids", "text": "hello",
            "message_id": "0b6f5c9e-6a5e-4a8e-9b53-2b0d2f0c1e11"
        }))
        .await;
    assert_eq!(status, 200, "{body}");

    let (mut ws, _) = widget_from(&s, "127.0.0.1").await;
    send(
        &mut ws,
        json!({"type": "message", "id": "no spaces please", "text": "hello"}),
    )
    .await;
    let error = next_of(&mut ws, "error").await;
    assert_eq!(error["id"], "no spaces please");
    assert!(
        error["message"].as_str().unwrap().contains("`id` must be"),
        "{error}"
    );
    send(
        &mut ws,
        json!({"type": "message", "id": "c1f4d7e2-0000-4000-8000-000000000001", "text": "hello"}),
    )
    .await;
    let turn = next_of(&mut ws, "turn").await;
    assert_eq!(turn["id"], "c1f4d7e2-0000-4000-8000-000000000001");
    s.shutdown().await;
}

/// One address holding its most sockets cannot open another, while a visitor elsewhere
/// still connects; a closed socket frees its place.
#[tokio::test]
async fn the_21st_socket_of_an_address_is_refused_while_others_connect() {
    let dir = tempfile::tempdir().unwrap();
    // The defaults: 20 sockets per address.
    let s = serve_limited(dir.path(), |_| {}).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(
            open_socket(&s, "203.0.113.20")
                .await
                .expect("within the cap"),
        );
    }
    let (status, retry) = open_socket(&s, "203.0.113.20").await.err().unwrap();
    assert_eq!(status, 429);
    assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
    let (_other, welcome) = widget_from(&s, "198.51.100.20").await;
    assert!(welcome["token"].is_string(), "{welcome}");
    let health = s.health().await;
    assert_eq!(health["components"]["widget_sockets"], 21, "{health}");

    // A socket closed frees its place (the server notices the close a moment later).
    held.pop().unwrap().close(None).await.unwrap();
    crate::support::eventually("a place for the address again", || async {
        open_socket(&s, "203.0.113.20").await.ok()
    })
    .await;
    assert!(limited_count(&s, "sockets_per_ip").await >= 1.0);
    s.shutdown().await;
}

#[tokio::test]
async fn the_server_refuses_sockets_beyond_its_total_with_503() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_limited(dir.path(), |l| {
        l.sockets_per_ip = 2;
        l.sockets_total = 3;
    })
    .await;
    let _a1 = open_socket(&s, "203.0.113.30").await.unwrap();
    let _a2 = open_socket(&s, "203.0.113.30").await.unwrap();
    let (status, _) = open_socket(&s, "203.0.113.30").await.err().unwrap();
    assert_eq!(status, 429, "the address's own cap first");
    let _b1 = open_socket(&s, "203.0.113.31").await.unwrap();
    let (status, retry) = open_socket(&s, "203.0.113.32").await.err().unwrap();
    assert_eq!(status, 503);
    assert!(retry.is_some());
    // HTTP is not affected.
    let (status, _, body) =
        post_from(&s, "203.0.113.32", json!({"user_id": "h", "text": "hello"})).await;
    assert_eq!(status, 200, "{body}");
    s.shutdown().await;
}

#[tokio::test]
async fn an_address_opening_sessions_too_fast_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_limited(dir.path(), |l| {
        l.ip_sessions_per_min = 6.0;
        l.ip_sessions_burst = 2;
    })
    .await;
    for _ in 0..2 {
        let (ws, _) = widget_from(&s, "203.0.113.40").await;
        drop(ws);
    }
    let (status, retry) = open_socket(&s, "203.0.113.40").await.err().unwrap();
    assert_eq!(status, 429);
    assert_eq!(retry.as_deref(), Some("10"), "6 a minute: one every 10 s");
    widget_from(&s, "203.0.113.41").await;
    s.shutdown().await;
}

/// A socket that says nothing is closed after `socket_idle_secs` (code 4000, which the
/// widget takes as "reconnect when the visitor is back"); pings keep a socket open.
#[tokio::test]
async fn idle_sockets_are_closed_and_pings_keep_one_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_limited(dir.path(), |l| l.socket_idle_secs = 1).await;
    let started = std::time::Instant::now();
    let (mut idle, welcome) = widget_from(&s, "203.0.113.50").await;
    assert_eq!(welcome["idle_secs"], 1);
    let (mut pinging, _) = widget_from(&s, "203.0.113.51").await;
    let pings = async {
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            send(&mut pinging, json!({"type": "ping"})).await;
        }
    };
    let (closed, ()) = tokio::join!(next(&mut idle), pings);
    assert_eq!(closed.err(), Some(Some(CloseCode::Library(4000))));
    assert!(started.elapsed() >= Duration::from_secs(1));
    // 2.4 s of pings later, the pinging socket still answers.
    send(
        &mut pinging,
        json!({"type": "message", "id": 7, "text": "where is my order 10001"}),
    )
    .await;
    let turn = next_of(&mut pinging, "turn").await;
    assert_eq!(turn["id"], 7);
    assert!(limited_count(&s, "idle_socket").await >= 1.0);
    crate::support::eventually("the idle socket's place freed", || async {
        let health = s.health().await;
        (health["components"]["widget_sockets"] == 1).then_some(())
    })
    .await;
    s.shutdown().await;
}

/// With many customers waiting, `/health` still answers at once, and a flood of probes
/// reads one cached snapshot (recomputed at most every 5 s) instead of scanning the queues
/// each time.
#[tokio::test]
async fn health_answers_from_cached_figures_under_a_flood() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_keyword(dir.path()).await;
    for i in 0..40 {
        s.say(&format!("waiting-{i}"), "I want to talk to a human agent")
            .await;
    }
    let started = std::time::Instant::now();
    let health = s.health().await;
    assert_eq!(health["waiting"], 40, "{health}");
    let as_of = health["figures_as_of"].as_str().unwrap().to_string();
    let probes = (0..300).map(|_| {
        let req = s.http.get(s.at("/health"));
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200);
            res.json::<Value>().await.unwrap()
        }
    });
    let answers = futures::future::join_all(probes).await;
    let snapshots: std::collections::HashSet<String> = answers
        .iter()
        .map(|a| a["figures_as_of"].as_str().unwrap().to_string())
        .collect();
    assert!(
        snapshots.len() <= 2,
        "300 probes read at most two snapshots: {snapshots:?}"
    );
    assert!(answers.iter().all(|a| a["waiting"] == 40));
    // Within the 5 s the first answer's snapshot is shared.
    if started.elapsed() < Duration::from_secs(4) {
        assert_eq!(snapshots.len(), 1, "{snapshots:?}");
        assert!(snapshots.contains(&as_of));
    }
    s.shutdown().await;
}

/// A raw TCP connection to `server` from `from` (the socket bound to that address first);
/// `None` when that address cannot be used here (some systems only route 127.0.0.1).
async fn connect_from(from: &str, server: SocketAddr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    let ip: IpAddr = from.parse().unwrap();
    socket.bind(SocketAddr::new(ip, 0)).ok()?;
    socket.connect(server).await.ok()
}

/// Reads until the server closes `conn` (end of stream or reset); whatever it sent first
/// (an error status, say) is returned. `None`: still open after `bound`.
async fn closed_by_server(conn: &mut TcpStream, bound: Duration) -> Option<String> {
    tokio::time::timeout(bound, async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&got).into_owned(),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
}

/// `GET /health` on a raw connection from `from`: the whole response, or `None` when the
/// address cannot be used or the server closed the connection without answering.
async fn raw_health(from: &str, server: SocketAddr) -> Option<String> {
    let mut conn = connect_from(from, server).await?;
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: frontdesk\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let response = closed_by_server(&mut conn, Duration::from_secs(30)).await?;
    (!response.is_empty()).then_some(response)
}

/// `frontdesk_connections_refused_total{reason="..."}` on /metrics, read from 127.0.0.2.
async fn refused_count(s: &TestServer, reason: &str) -> Option<f64> {
    let text = raw_metrics("127.0.0.2", s.server.addr).await?;
    let needle = format!("frontdesk_connections_refused_total{{reason=\"{reason}\"}} ");
    Some(
        text.lines()
            .find_map(|l| l.strip_prefix(&needle))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0),
    )
}

async fn raw_metrics(from: &str, server: SocketAddr) -> Option<String> {
    let mut conn = connect_from(from, server).await?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: frontdesk\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    closed_by_server(&mut conn, Duration::from_secs(30)).await
}

/// A connection that sends part of a request head and then nothing, or nothing at all, is
/// closed after `limits.header_read_timeout_secs`: idle connections cannot pile up until
/// the server runs out of open files. Complete requests are still answered.
#[tokio::test]
async fn a_connection_that_never_finishes_its_request_head_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.header_read_timeout_secs = 1;
    let s = serve_with(config, KeywordNlu).await;
    let addr = s.server.addr;
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: frontdesk\r\nX-Slow: ")
        .await
        .unwrap();
    let mut first_bytes = TcpStream::connect(addr).await.unwrap();
    first_bytes.write_all(b"GE").await.unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    for (what, conn) in [
        ("a partial request head", &mut partial),
        ("two bytes", &mut first_bytes),
        ("nothing", &mut silent),
    ] {
        assert!(
            closed_by_server(conn, Duration::from_secs(10))
                .await
                .is_some(),
            "a connection that sent {what} is still open 10 s later (timeout: 1 s)"
        );
    }
    // A keep-alive connection answers its requests, then is closed once idle as long.
    let mut keep = TcpStream::connect(addr).await.unwrap();
    keep.write_all(b"GET /health HTTP/1.1\r\nHost: frontdesk\r\n\r\n")
        .await
        .unwrap();
    let response = closed_by_server(&mut keep, Duration::from_secs(10))
        .await
        .expect("the idle keep-alive connection is closed");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let health = raw_health("127.0.0.1", addr).await.expect("an answer");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    s.shutdown().await;
}

/// An address holding `limits.connections_per_ip` connections gets its next one closed at
/// once (counted on /metrics), while a client at another address (127.0.0.2) is served; a
/// closed connection frees its place.
#[tokio::test]
async fn connections_beyond_the_per_address_cap_are_closed_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.connections_per_ip = 5;
    // Long enough that the held connections are not closed by the header timeout meanwhile.
    config.limits.header_read_timeout_secs = 60;
    let s = serve_with(config, KeywordNlu).await;
    let addr = s.server.addr;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut sixth = TcpStream::connect(addr).await.unwrap();
    let _ = sixth
        .write_all(b"GET /health HTTP/1.1\r\nHost: frontdesk\r\n\r\n")
        .await;
    let answer = closed_by_server(&mut sixth, Duration::from_secs(10))
        .await
        .expect("the 6th connection of 127.0.0.1 is closed at once");
    assert!(answer.is_empty(), "closed without an answer: {answer}");

    match raw_health("127.0.0.2", addr).await {
        Some(health) => {
            assert!(health.starts_with("HTTP/1.1 200"), "{health}");
            let refused = refused_count(&s, "per_address").await.unwrap();
            assert!(refused >= 1.0, "refusals are counted: {refused}");
        }
        None => eprintln!("127.0.0.2 is not usable here; skipped that part"),
    }

    // A connection closed frees its place (the server notices the close a moment later).
    drop(held.pop());
    let health = crate::support::eventually("a place for 127.0.0.1 again", || async {
        raw_health("127.0.0.1", addr).await
    })
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    drop(held);
    s.shutdown().await;
}

/// A trusted proxy is not capped: every client behind it shares its address.
#[tokio::test]
async fn a_trusted_proxy_is_not_capped() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve_limited(dir.path(), |l| {
        l.connections_per_ip = 5;
        l.header_read_timeout_secs = 60;
    })
    .await;
    let addr = s.server.addr;
    let mut held = Vec::new();
    for _ in 0..12 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    let health = raw_health("127.0.0.1", addr)
        .await
        .expect("the proxy's 13th connection is served");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let (status, _, body) =
        post_from(&s, "203.0.113.60", json!({"user_id": "p", "text": "hello"})).await;
    assert_eq!(status, 200, "{body}");
    drop(held);
    s.shutdown().await;
}

/// One address cannot fill the conversation workers with REST turns: past
/// `limits.api_ip_in_flight` answers being written at once, its next message gets 429 at once,
/// while another address is served (the turn held open here is an LLM answer the fake model
/// is still writing).
#[tokio::test]
async fn rest_messages_in_flight_from_one_address_are_capped() {
    use crate::support::fakes::llm::{answer_json, Fake, Reply};
    let fake = Fake::default();
    fake.then(Reply::Gated(answer_json(
        "Standard delivery to Italy costs 6.95 EUR.",
        &["shipping-zones"],
        false,
    )));
    let url = fake.start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.limits.api_ip_in_flight = 1;
    cfg.llm.url = Some(url);
    cfg.llm.timeout_ms = 15_000;
    cfg.llm.min_passage_score = 0.05;
    let s =
        std::sync::Arc::new(serve_with_help(cfg, crate::support::kb::demo_help_centre(0.99)).await);
    let held = {
        let s = s.clone();
        tokio::spawn(async move {
            s.post_message(json!({"user_id": "slow",
                "text": "how much is shipping to italy in the european union zone"}))
                .await
        })
    };
    while fake.calls().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = s
        .post_message(json!({"user_id": "next", "text": "hello"}))
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(body.to_string().contains("at once"), "{body}");
    let other = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    match other
        .post(s.at("/api/v1/messages"))
        .bearer_auth(&s.key)
        .json(&json!({"user_id": "elsewhere", "text": "hello"}))
        .send()
        .await
    {
        Ok(res) => assert_eq!(res.status().as_u16(), 200, "another address is served"),
        Err(e) => eprintln!("127.0.0.2 is not usable here ({e}); skipped that part"),
    }
    fake.gate.notify_one();
    let (status, _) = held.await.unwrap();
    assert_eq!(status, 200);
    // the place is free again
    let (status, body) = s
        .post_message(json!({"user_id": "next", "text": "hello"}))
        .await;
    assert_eq!(status, 200, "{body}");
}
