//! The fake Discord gateway: one WebSocket session per connection, speaking the opcodes
//! serenity uses (HELLO, IDENTIFY -> READY or close 4004, heartbeat ACKs, RESUME refused,
//! MESSAGE_CREATE dispatches queued by the test).

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};

use super::discord::{bot_user_json, Shared, BOT_USER_ID};

pub(super) async fn socket(
    State(shared): State<Arc<Shared>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |ws| session(shared, ws))
}

fn frame(payload: Value) -> WsMessage {
    WsMessage::Text(payload.to_string().into())
}

/// One gateway session: HELLO, wait for IDENTIFY, READY, then heartbeats and dispatches.
async fn session(shared: Arc<Shared>, mut ws: WebSocket) {
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}, "s": null, "t": null});
    if ws.send(frame(hello)).await.is_err() {
        return;
    }
    let mut seq: u64 = 0;
    let mut ready = false;
    loop {
        let mut changes = shared.rec.watch();
        if ready {
            let pending: Vec<(String, Value)> =
                shared.inner.lock().unwrap().events.drain(..).collect();
            let mut pending = pending.into_iter();
            while let Some((event, data)) = pending.next() {
                seq += 1;
                let payload = json!({"op": 0, "t": event, "s": seq, "d": data});
                if ws.send(frame(payload)).await.is_err() {
                    // The session is gone: what it did not get waits for the next one.
                    let mut inner = shared.inner.lock().unwrap();
                    for (i, e) in std::iter::once((event, data)).chain(pending).enumerate() {
                        inner.events.insert(i, e);
                    }
                    return;
                }
                let id = data["id"].as_str().and_then(|id| id.parse().ok());
                if let (true, Some(id)) = (event == "MESSAGE_CREATE", id) {
                    let at = std::time::Instant::now();
                    shared.inner.lock().unwrap().dispatched.push((id, at));
                }
            }
        }
        let incoming = tokio::select! {
            msg = ws.recv() => msg,
            _ = changes.changed() => continue,
        };
        let Some(Ok(msg)) = incoming else { return };
        let payload: Value = match msg {
            WsMessage::Text(text) => serde_json::from_str(text.as_str()).unwrap_or(Value::Null),
            WsMessage::Close(_) => return,
            _ => continue,
        };
        match payload["op"].as_u64() {
            Some(1) => {
                let ack = json!({"op": 11, "d": null, "s": null, "t": null});
                if ws.send(frame(ack)).await.is_err() {
                    return;
                }
            }
            Some(2) => {
                let token = payload["d"]["token"].as_str().unwrap_or_default();
                if token.trim_start_matches("Bot ") != shared.token {
                    shared.rec.reject();
                    let close = CloseFrame {
                        code: 4004,
                        reason: "Authentication failed.".into(),
                    };
                    let _ = ws.send(WsMessage::Close(Some(close))).await;
                    return;
                }
                let intents = payload["d"]["intents"].as_u64().unwrap_or(0);
                seq += 1;
                let ready_payload = json!({"op": 0, "t": "READY", "s": seq, "d": {
                    "v": 10, "user": bot_user_json(), "guilds": [], "session_id": "fake-session",
                    "resume_gateway_url": shared.gateway_url.lock().unwrap().clone(),
                    "shard": [0, 1], "application": {"id": BOT_USER_ID.to_string(), "flags": 0}
                }});
                if ws.send(frame(ready_payload)).await.is_err() {
                    return;
                }
                ready = true;
                shared.inner.lock().unwrap().identified.push(intents);
                shared.rec.bump();
            }
            Some(6) => {
                // No session survives in the fake: ask the client to identify again.
                let invalid = json!({"op": 9, "d": false, "s": null, "t": null});
                if ws.send(frame(invalid)).await.is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
}
