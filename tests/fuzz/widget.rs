//! The widget's WebSocket frames (`/ws`), through the real server (keyword NLU, abuse limits
//! off so that every frame reaches the parser rather than a `slow_down`): the page's
//! first frame (`hello`, with a visitor token and a shop's customer token) on a new socket
//! per input, then any frames on one open socket. Every frame the server sends must be a
//! JSON object of a known type; a socket must survive any frame (a sentinel frame after
//! each one must still be answered); a tampered visitor or customer token must never
//! resume that visitor or log in that customer.

use std::time::Duration;

use frontdesk::server::auth::VisitorClaims;
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{
    cases, check, edits, field, fuzz, json, json_bytes, mutate, object, odd_number, optional,
    runtime, string, text, Edit,
};
use crate::support::server::{customer, TestServer};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const FRAME_TYPES: &[&str] = &[
    "welcome",
    "turn",
    "bot",
    "agent",
    "queue",
    "status",
    "error",
    "slow_down",
];
/// How long a frame the server owes may take (a guard against a hang, not a timing check).
const PATIENCE: Duration = Duration::from_secs(30);

async fn connect(server: &TestServer) -> Ws {
    let url = format!("ws://{}/ws", server.server.addr);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connect")
        .0
}

/// The next frame from the server, checked: `None` when the socket closed.
async fn next_frame(ws: &mut Ws) -> Result<Option<Value>, TestCaseError> {
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .map_err(|_| TestCaseError::fail("no frame from the server in 30 s"))?;
        let text = match frame {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
        };
        let value: Value = serde_json::from_str(text.as_str())
            .map_err(|e| TestCaseError::fail(format!("frame is not JSON ({e}): {text}")))?;
        let kind = value["type"].as_str().unwrap_or("");
        check(FRAME_TYPES.contains(&kind), || {
            format!("frame of unknown type: {value}")
        })?;
        if kind == "error" {
            check(
                !value["message"].as_str().unwrap_or("").trim().is_empty(),
                || format!("error frame without a message: {value}"),
            )?;
        }
        return Ok(Some(value));
    }
}

/// A token field of a hello frame: the valid token, the valid token damaged, another kind
/// of token, anything.
#[derive(Debug, Clone)]
enum TokenField {
    Absent,
    Valid,
    Damaged(Vec<Edit>),
    /// The other token kind (a visitor token as a customer token and the reverse).
    Crossed,
    Other(Value),
}

fn token_field() -> BoxedStrategy<TokenField> {
    prop_oneof![
        1 => Just(TokenField::Absent),
        2 => Just(TokenField::Valid),
        4 => edits().prop_map(TokenField::Damaged),
        1 => Just(TokenField::Crossed),
        2 => prop_oneof![Just(Value::Null), string(), json()].prop_map(TokenField::Other),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
struct Hello {
    kind: Option<Value>,
    token: TokenField,
    customer_token: TokenField,
    /// Edits of the whole frame's JSON.
    damage: Option<Vec<Edit>>,
}

fn hello() -> BoxedStrategy<Hello> {
    let kind = field(
        prop_oneof![
            6 => Just(json!("hello")),
            1 => Just(json!("message")),
            1 => Just(json!("Hello")),
            1 => string(),
        ]
        .boxed(),
    )
    .damaged();
    (
        kind,
        token_field(),
        token_field(),
        prop::option::weighted(0.15, edits()),
    )
        .prop_map(|(kind, token, customer_token, damage)| Hello {
            kind,
            token,
            customer_token,
            damage,
        })
        .boxed()
}

fn token_value(field: &TokenField, valid: &str, crossed: &str) -> Option<Value> {
    match field {
        TokenField::Absent => None,
        TokenField::Valid => Some(json!(valid)),
        TokenField::Damaged(edits) => Some(json!(mutate(valid, edits))),
        TokenField::Crossed => Some(json!(crossed)),
        TokenField::Other(v) => Some(v.clone()),
    }
}

#[test]
fn hello_frames() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let server = rt.block_on(crate::harness::serve(dir.path()));
    let keys = server.server.keys.clone();
    let visitor = VisitorClaims {
        kind: "visitor".into(),
        sub: "v-fuzz-known".into(),
        iat: chrono::Utc::now().timestamp(),
    };
    let visitor_token = keys.widget.sign(&visitor);
    let customer_token = keys
        .customer
        .sign(&customer("C-FUZZ", Some("gold"), Some(500.0)));

    fuzz("widget::hello_frames", cases(), hello(), |hello, t| {
        let mut frame = serde_json::Map::new();
        if let Some(kind) = &hello.kind {
            frame.insert("type".into(), kind.clone());
        }
        if let Some(t) = token_value(&hello.token, &visitor_token, &customer_token) {
            frame.insert("token".into(), t);
        }
        if let Some(t) = token_value(&hello.customer_token, &customer_token, &visitor_token) {
            frame.insert("customer_token".into(), t);
        }
        let mut text = Value::Object(frame).to_string();
        if let Some(edits) = &hello.damage {
            text = mutate(&text, edits);
        }
        // What the server read, as far as this test can tell (a frame it could not read
        // must not resume anyone).
        let sent: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let sent_token = sent["token"].as_str().map(str::trim);
        let sent_customer = sent["customer_token"].as_str().map(str::trim);
        rt.block_on(async {
            let mut ws = connect(&server).await;
            ws.send(Message::Text(text.clone().into()))
                .await
                .map_err(|e| TestCaseError::fail(format!("send: {e}")))?;
            while let Some(frame) = next_frame(&mut ws).await? {
                if frame["type"] != "welcome" {
                    t.note(if frame["type"] == "error" {
                        "error frames"
                    } else {
                        "other frames"
                    });
                    continue;
                }
                t.note(match frame["user"].as_str() {
                    Some("v-fuzz-known") => "welcome: visitor resumed",
                    Some("shop-C-FUZZ") => "welcome: customer signed in",
                    _ => "welcome: new visitor",
                });
                let user = frame["user"].as_str().unwrap_or("");
                check(!user.is_empty(), || {
                    format!("welcome without a user: {frame}")
                })?;
                check(
                    user != visitor.sub || sent_token == Some(visitor_token.as_str()),
                    || format!("resumed visitor {user} with the token in {text}"),
                )?;
                check(
                    user != "shop-C-FUZZ" || sent_customer == Some(customer_token.as_str()),
                    || format!("logged in customer {user} with the token in {text}"),
                )?;
                // The returned token is the visitor's own, valid one.
                let token = frame["token"].as_str().unwrap_or("");
                let back = keys.widget.verify_visitor(token);
                check(back.is_ok(), || {
                    format!("welcome with a token that does not verify: {frame}")
                })?;
                break;
            }
            let _ = ws.close(None).await;
            Ok(())
        })
    });
    rt.block_on(server.shutdown());
}

fn message_frame() -> BoxedStrategy<Value> {
    object(vec![
        (
            "type",
            field(
                prop_oneof![
                    6 => Just(json!("message")),
                    1 => Just(json!("hello")),
                    1 => Just(json!("ping")),
                    1 => string(),
                ]
                .boxed(),
            ),
        ),
        (
            "id",
            optional(
                prop_oneof![
                    2 => odd_number(),
                    2 => "[A-Za-z0-9._:-]{1,100}".prop_map(Value::from),
                    1 => "[A-Za-z0-9._:-]{101,120}".prop_map(Value::from),
                    1 => string(),
                ]
                .boxed(),
            ),
        ),
        (
            "text",
            field(
                prop_oneof![
                    4 => text(),
                    1 => text().prop_map(|code| format!("/link {code}")),
                ]
                .prop_map(Value::String)
                .boxed(),
            ),
        ),
    ])
}

#[test]
fn frames_on_an_open_socket() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let server = rt.block_on(crate::harness::serve(dir.path()));
    let socket = tokio::sync::Mutex::new(None::<Ws>);
    let sentinel = std::sync::atomic::AtomicU64::new(1 << 60);

    let frames = (json_bytes(message_frame()), prop::bool::weighted(0.05));
    fuzz(
        "widget::frames_on_an_open_socket",
        cases(),
        frames,
        |(bytes, binary), t| {
            rt.block_on(async {
                let mut guard = socket.lock().await;
                if guard.is_none() {
                    let mut ws = connect(&server).await;
                    ws.send(Message::Text(json!({"type": "hello"}).to_string().into()))
                        .await
                        .unwrap();
                    loop {
                        let frame = next_frame(&mut ws).await?.expect("a welcome");
                        if frame["type"] == "welcome" {
                            break;
                        }
                    }
                    *guard = Some(ws);
                }
                let ws = guard.as_mut().unwrap();
                let frame = if binary {
                    Message::Binary(bytes.clone().into())
                } else {
                    Message::Text(String::from_utf8_lossy(&bytes).into_owned().into())
                };
                // After the frame, one the server must answer with an error of this id: it
                // shows the socket still reads frames after the one under test.
                let id = sentinel.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let probe = json!({"type": "message", "id": id, "text": "   "});
                let sent = async {
                    ws.send(frame).await?;
                    ws.send(Message::Text(probe.to_string().into())).await
                };
                if let Err(e) = sent.await {
                    *guard = None;
                    return Err(TestCaseError::fail(format!("socket closed on send: {e}")));
                }
                loop {
                    match next_frame(ws).await {
                        Ok(Some(frame)) if frame["type"] == "error" && frame["id"] == id => {
                            return Ok(())
                        }
                        Ok(Some(frame)) => t.note(match frame["type"].as_str() {
                            Some("turn") => "turn frames",
                            Some("error") => "error frames",
                            _ => "other frames",
                        }),
                        Ok(None) => {
                            *guard = None;
                            return Err(TestCaseError::fail(
                                "the server closed the socket after this frame",
                            ));
                        }
                        Err(e) => {
                            *guard = None;
                            return Err(e);
                        }
                    }
                }
            })
        },
    );
    rt.block_on(server.shutdown());
}
