//! REST and console bodies: `POST /api/v1/messages` (`PostMessage` and its checks), the
//! console's login, reply and verify bodies and the admins' new-key body. First the pure
//! parse and checks on arbitrary bytes; then the same kinds of bodies through the real
//! server (keyword NLU, abuse limits off), where the extractor, the checks and the handlers all run: every
//! answer must be a 2xx or a 4xx with the `{"error": {"code", "message"}}` shape, never a
//! 500 or a dropped connection (a panicking handler), and the server must still be healthy
//! at the end.

use frontdesk::server::api::{check_message_id, PostMessage, MAX_MESSAGE_ID};
use frontdesk::server::auth::Scope;
use frontdesk::server::validate::{check_text, check_user_id, MAX_USER_ID};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::{json, Value};

use crate::harness::{
    cases, check, field, fuzz, json_bytes, object, optional, runtime, string, text,
};
use crate::support::server::ANA;

/// The server's default `server.max_text_len`.
const MAX_TEXT: usize = 2_000;

/// Text of a customer's message: mostly [`text`], sometimes a link command with an
/// arbitrary code (which reaches the desk's code lookup and its lock-out).
fn message_text() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => text(),
        1 => text().prop_map(|code| format!("/link {code}")),
    ]
    .prop_map(Value::String)
    .boxed()
}

fn post_message() -> BoxedStrategy<Value> {
    object(vec![
        ("user_id", field(string())),
        ("text", field(message_text())),
        (
            "customer_token",
            optional(prop_oneof![Just(Value::Null), string()].boxed()),
        ),
        (
            "message_id",
            optional(
                prop_oneof![
                    2 => "[A-Za-z0-9._:-]{1,100}".prop_map(Value::from),
                    1 => "[A-Za-z0-9._:-]{101,120}".prop_map(Value::from),
                    1 => Just(Value::Null),
                    2 => string(),
                ]
                .boxed(),
            ),
        ),
    ])
}

#[test]
fn post_message_body() {
    fuzz(
        "rest::post_message_body",
        cases(),
        json_bytes(post_message()),
        |bytes, t| {
            let Ok(body) = serde_json::from_slice::<PostMessage>(&bytes) else {
                t.note("refused");
                return Ok(());
            };
            t.note("parsed");
            let user = body.user_id.trim();
            let user_ok = !user.is_empty() && user.chars().count() <= MAX_USER_ID;
            match check_user_id(&body.user_id) {
                Ok(checked) => check(user_ok && checked == user, || {
                    format!("user_id {:?} accepted as {checked:?}", body.user_id)
                })?,
                Err(e) => check(!user_ok && !e.to_string().is_empty(), || {
                    format!("user_id {:?} refused: {e}", body.user_id)
                })?,
            }
            let text_ok = !body.text.trim().is_empty() && body.text.chars().count() <= MAX_TEXT;
            match check_text(&body.text, MAX_TEXT) {
                Ok(()) => check(text_ok, || format!("text {:?} accepted", body.text))?,
                Err(e) => check(!text_ok && !e.to_string().is_empty(), || {
                    format!("text {:?} refused: {e}", body.text)
                })?,
            }
            if let Some(id) = &body.message_id {
                let id_ok = !id.is_empty()
                    && id.len() <= MAX_MESSAGE_ID
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".:_-".contains(c));
                match check_message_id(id, "message_id") {
                    Ok(checked) => check(id_ok && checked == id, || {
                        format!("message_id {id:?} accepted as {checked:?}")
                    })?,
                    Err(e) => check(!id_ok && e.to_string().contains("message_id"), || {
                        format!("message_id {id:?} refused: {e}")
                    })?,
                }
            }
            Ok(())
        },
    );
}

/// Where a generated request goes.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// `POST /api/v1/messages` with a `messages` key.
    Messages,
    /// `POST /api/v1/api-keys` with an `admin` key.
    NewKey,
    /// `POST /console/api/login`, no session.
    Login,
    /// `POST /console/api/conversations/{id}/reply` as a logged-in agent.
    Reply,
    /// `POST /console/api/conversations/{id}/verify` as a logged-in agent.
    Verify,
}

#[derive(Debug, Clone)]
struct Request {
    endpoint: Endpoint,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    /// The conversation id in the path (console calls).
    id: String,
}

fn request() -> BoxedStrategy<Request> {
    let login = object(vec![
        (
            "name",
            field(prop_oneof![Just(json!("ana")), Just(json!(" ben ")), string()].boxed()),
        ),
        ("password", field(string())),
    ]);
    let new_key = object(vec![
        ("name", field(string())),
        (
            "scope",
            optional(
                prop_oneof![
                    Just(json!("messages")),
                    Just(json!("agent")),
                    Just(json!("admin")),
                    Just(Value::Null),
                    string()
                ]
                .boxed(),
            ),
        ),
    ]);
    let reply = object(vec![("text", field(message_text()))]);
    let verify = object(vec![("customer_id", field(string()))]);
    let endpoint = prop_oneof![
        6 => Just(Endpoint::Messages).prop_flat_map(move |e| json_bytes(post_message()).prop_map(move |b| (e, b))),
        2 => Just(Endpoint::NewKey).prop_flat_map(move |e| json_bytes(new_key.clone()).prop_map(move |b| (e, b))),
        // Each login that parses costs an argon2 check (until the throttle refuses): few.
        1 => Just(Endpoint::Login).prop_flat_map(move |e| json_bytes(login.clone()).prop_map(move |b| (e, b))),
        2 => Just(Endpoint::Reply).prop_flat_map(move |e| json_bytes(reply.clone()).prop_map(move |b| (e, b))),
        2 => Just(Endpoint::Verify).prop_flat_map(move |e| json_bytes(verify.clone()).prop_map(move |b| (e, b))),
    ];
    let content_type = prop_oneof![
        8 => Just(Some("application/json")),
        1 => Just(Some("application/json; charset=utf-8")),
        1 => Just(None),
        1 => Just(Some("text/plain")),
        1 => Just(Some("application/problem+json")),
    ];
    (endpoint, content_type, text())
        .prop_map(|((endpoint, body), content_type, id)| Request {
            endpoint,
            body,
            content_type,
            id,
        })
        .boxed()
}

/// `text` as one path segment: every byte but letters and digits percent-encoded. Only
/// dots (`.`, `%2E`) would be a dot segment, which the client's URL parser removes: such ids
/// get a letter in front.
fn segment(text: &str) -> String {
    let text = if text.trim_matches('.').is_empty() {
        format!("x{text}")
    } else {
        text.to_string()
    };
    let encoded: String = text
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    if encoded.is_empty() {
        "none".into()
    } else {
        encoded
    }
}

#[test]
fn bodies_through_the_server() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let server = rt.block_on(crate::harness::serve(dir.path()));
    let admin = rt.block_on(server.api_key(Scope::Admin));
    let (session, csrf) = rt.block_on(async {
        let agent = server.login(ANA).await;
        (agent.token.clone(), agent.csrf.clone())
    });
    // A conversation ana owns, so that replies and verifications reach the desk.
    let owned = rt.block_on(async {
        let turn = server.say("fuzz-owner", "I want a human agent").await;
        let id = turn["conversation_id"].as_str().unwrap().to_string();
        let res = server
            .http
            .post(server.at(&format!("/console/api/conversations/{id}/claim")))
            .bearer_auth(&session)
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "ana claims the conversation");
        id
    });

    fuzz(
        "rest::bodies_through_the_server",
        cases(),
        (request(), any::<bool>()),
        |(req, to_owned), t| {
            rt.block_on(async {
                let id = if to_owned {
                    owned.clone()
                } else {
                    segment(&req.id)
                };
                let (path, bearer, with_csrf) = match req.endpoint {
                    Endpoint::Messages => {
                        ("/api/v1/messages".to_string(), Some(&server.key), false)
                    }
                    Endpoint::NewKey => ("/api/v1/api-keys".to_string(), Some(&admin), false),
                    Endpoint::Login => ("/console/api/login".to_string(), None, false),
                    Endpoint::Reply => (
                        format!("/console/api/conversations/{id}/reply"),
                        Some(&session),
                        true,
                    ),
                    Endpoint::Verify => (
                        format!("/console/api/conversations/{id}/verify"),
                        Some(&session),
                        true,
                    ),
                };
                let mut call = server.http.post(server.at(&path)).body(req.body.clone());
                if let Some(ct) = req.content_type {
                    call = call.header("content-type", ct);
                }
                if let Some(bearer) = bearer {
                    call = call.bearer_auth(bearer);
                }
                if with_csrf {
                    call = call.header("x-csrf-token", &csrf);
                }
                let res = call.send().await.map_err(|e| {
                    TestCaseError::fail(format!("{path}: no answer ({e}): did a handler panic?"))
                })?;
                let status = res.status().as_u16();
                t.note(match status {
                    200..=299 => "2xx",
                    400 => "400",
                    401 => "401",
                    403 => "403",
                    404 => "404",
                    405 => "405",
                    409 => "409",
                    413 => "413",
                    415 => "415",
                    422 => "422",
                    429 => "429",
                    _ => "other",
                });
                let bytes = res.bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                check(
                    status < 500 || (status == 503 && body["error"]["code"] == "busy"),
                    || format!("{path}: {status} {body}"),
                )?;
                if status >= 400 {
                    let message = body["error"]["message"].as_str().unwrap_or("");
                    check(
                        body["error"]["code"].is_string() && !message.trim().is_empty(),
                        || format!("{path}: {status} without an error message: {bytes:?}"),
                    )?;
                } else {
                    check(body.is_object() || body.is_array(), || {
                        format!("{path}: {status} with a body that is not JSON: {bytes:?}")
                    })?;
                }
                Ok(())
            })
        },
    );
    rt.block_on(async {
        server.health().await;
        server.shutdown().await;
    });
}
