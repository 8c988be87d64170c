//! Tokens and keys: visitor, customer and agent-session tokens (`auth::Signer`) and API keys
//! (`api_keys::verify_api_key`). Arbitrary strings, token-shaped strings with payloads of
//! any shape, and valid tokens damaged by truncation, bit flips and insertions must be
//! refused without a panic; a token of one kind must never verify as another; only the
//! exact token (up to surrounding whitespace, which is trimmed) is accepted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use frontdesk::server::auth::{
    create_api_key, verify_api_key, CustomerClaims, Keys, Scope, SessionClaims, Signer,
    VisitorClaims,
};
use frontdesk::store::SledStore;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde_json::{json, Value};

use crate::harness::{
    any_chars, cases, check, edits, field, fuzz, json, mutate, object, odd_number, string, text,
    Edit,
};

/// The server's default `server.customer_token_max_secs`.
const MAX_SECS: u64 = 86_400;

fn keys() -> Keys {
    Keys::derive(b"fuzz master secret", Some("fuzz shop secret"))
}

/// Which key signs a token-shaped input.
#[derive(Debug, Clone)]
enum Signature {
    /// The key the verifier uses: the payload decides.
    Right,
    /// Another purpose's key.
    OtherKey,
    /// Random bytes of a given length.
    Random(Vec<u8>),
    /// Any text after the dot.
    Text(String),
}

#[derive(Debug, Clone)]
enum Input {
    /// Any text.
    Text(String),
    /// `base64url(bytes) "." signature`.
    Bytes(Vec<u8>, Signature),
    /// `base64url(json) "." signature`, the JSON shaped like claims of some kind.
    Claims(Value, Signature),
}

fn signature() -> BoxedStrategy<Signature> {
    prop_oneof![
        3 => Just(Signature::Right),
        1 => Just(Signature::OtherKey),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Signature::Random),
        1 => text().prop_map(Signature::Text),
    ]
    .boxed()
}

/// Claims of every kind, with fields of the right and wrong types.
fn claims() -> BoxedStrategy<Value> {
    let now = chrono::Utc::now().timestamp();
    let time = prop_oneof![
        4 => (-10i64..(2 * MAX_SECS as i64)).prop_map(move |d| json!(now + d)),
        1 => (-10_000i64..0).prop_map(move |d| json!(now + d)),
        2 => odd_number(),
    ]
    .boxed();
    object(vec![
        (
            "kind",
            field(
                prop_oneof![
                    Just(json!("visitor")),
                    Just(json!("agent_session")),
                    Just(json!("Visitor")),
                    string()
                ]
                .boxed(),
            ),
        ),
        ("sub", field(string())),
        ("iat", field(time.clone())),
        ("sid", field(string())),
        ("agent", field(string())),
        (
            "customer_id",
            field(prop_oneof![Just(json!("C1001")), Just(json!("  ")), string()].boxed()),
        ),
        (
            "tier",
            field(prop_oneof![Just(Value::Null), Just(json!("gold")), string()].boxed()),
        ),
        ("lifetime_value", field(odd_number())),
        ("name", field(string())),
        ("email", field(string())),
        ("exp", field(time)),
    ])
}

fn input() -> BoxedStrategy<Input> {
    prop_oneof![
        2 => prop_oneof![text(), any_chars(80), "[A-Za-z0-9_.-]{0,120}"].prop_map(Input::Text),
        1 => (prop::collection::vec(any::<u8>(), 0..64), signature())
            .prop_map(|(b, s)| Input::Bytes(b, s)),
        4 => (prop_oneof![claims(), json()], signature()).prop_map(|(c, s)| Input::Claims(c, s)),
    ]
    .boxed()
}

fn token_of(payload: &[u8], signature: &Signature, right: &Signer, other: &Signer) -> String {
    let encoded = URL_SAFE_NO_PAD.encode(payload);
    match signature {
        Signature::Right | Signature::OtherKey => {
            let signer = if matches!(signature, Signature::Right) {
                right
            } else {
                other
            };
            match serde_json::from_slice::<Value>(payload) {
                // `Signer::sign` takes claims: the same JSON, signed through the public API.
                Ok(v) => signer.sign(&v),
                // Not JSON: no signer makes such a token; a wrong signature.
                Err(_) => format!("{encoded}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
            }
        }
        Signature::Random(bytes) => format!("{encoded}.{}", URL_SAFE_NO_PAD.encode(bytes)),
        Signature::Text(text) => format!("{encoded}.{text}"),
    }
}

#[test]
fn token_shaped_inputs() {
    let keys = keys();
    let now = || chrono::Utc::now().timestamp();
    fuzz(
        "tokens::token_shaped_inputs",
        cases(),
        input(),
        |input, t| {
            // (token, payload the right key signed, if it did)
            // (the token for each verifier, the claims the right key signed, if it did)
            let (widget, customer, session, signed) = match &input {
                Input::Text(t) => (t.clone(), t.clone(), t.clone(), None),
                Input::Bytes(_, s) | Input::Claims(_, s) => {
                    let payload = match &input {
                        Input::Claims(v, _) => v.to_string().into_bytes(),
                        Input::Bytes(b, _) => b.clone(),
                        Input::Text(_) => unreachable!("handled above"),
                    };
                    // What the verifier decodes: `Signer::sign` writes the value as JSON text and
                    // the verifier reads that text back (not the value: serde_json's float parsing
                    // may differ from the value's float in the last bit).
                    let signed = match s {
                        Signature::Right => serde_json::from_slice::<Value>(&payload)
                            .ok()
                            .map(|v| v.to_string()),
                        _ => None,
                    };
                    (
                        token_of(&payload, s, &keys.widget, &keys.session),
                        token_of(&payload, s, &keys.customer, &keys.widget),
                        token_of(&payload, s, &keys.session, &keys.customer),
                        signed,
                    )
                }
            };
            // Visitor tokens: only a payload signed with the widget key, of the visitor shape.
            let got = keys.widget.verify_visitor(&widget);
            let want = signed
                .as_ref()
                .and_then(|v| serde_json::from_str::<VisitorClaims>(v).ok())
                .filter(|c| c.kind == "visitor");
            check(got.as_ref().ok() == want.as_ref(), || {
                format!("visitor token {widget:?}: got {got:?}, expected {want:?}")
            })?;
            t.note(if got.is_ok() {
                "visitor accepted"
            } else {
                "visitor refused"
            });
            if let Err(e) = &got {
                check(!e.to_string().is_empty(), || "empty error".into())?;
            }
            // Customer tokens: a customer id and an `exp` at most MAX_SECS away, in the future.
            let before = now();
            let got = keys.customer.verify_customer(&customer, MAX_SECS);
            let after = now();
            let want = |now: i64| {
                signed
                    .as_ref()
                    .and_then(|v| serde_json::from_str::<CustomerClaims>(v).ok())
                    .filter(|c| !c.customer_id.trim().is_empty())
                    .filter(|c| {
                        c.exp
                            .is_some_and(|e| e >= now && e - now <= MAX_SECS as i64)
                    })
            };
            let (want_before, want_after) = (want(before), want(after));
            t.note(if got.is_ok() {
                "customer accepted"
            } else {
                "customer refused"
            });
            if want_before == want_after {
                check(got.as_ref().ok() == want_before.as_ref(), || {
                    format!("customer token {customer:?}: got {got:?}, expected {want_before:?}")
                })?;
            }
            // Agent session tokens (their expiry and store record are checked by the server).
            let got = keys.session.verify::<SessionClaims>(&session);
            let want = signed
                .as_ref()
                .and_then(|v| serde_json::from_str::<SessionClaims>(v).ok());
            check(got.as_ref().ok() == want.as_ref(), || {
                format!("session token {session:?}: got {got:?}, expected {want:?}")
            })?;
            t.note(if got.is_ok() {
                "session accepted"
            } else {
                "session refused"
            });
            Ok(())
        },
    );
}

/// Which valid token is damaged.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Visitor,
    Customer,
    Session,
}

#[test]
fn damaged_tokens() {
    let keys = keys();
    let visitor = keys.widget.sign(&VisitorClaims {
        kind: "visitor".into(),
        sub: "v-1".into(),
        iat: 1,
    });
    let customer = keys.customer.sign(&CustomerClaims {
        customer_id: "C1001".into(),
        tier: Some("gold".into()),
        lifetime_value: Some(1200.0),
        name: None,
        email: None,
        exp: Some(chrono::Utc::now().timestamp() + 3600),
    });
    let session = keys.session.sign(&SessionClaims {
        kind: "agent_session".into(),
        sid: "s1".into(),
        agent: "ana".into(),
        exp: chrono::Utc::now().timestamp() + 3600,
    });
    let kind = prop_oneof![
        Just(Kind::Visitor),
        Just(Kind::Customer),
        Just(Kind::Session)
    ];
    fuzz(
        "tokens::damaged_tokens",
        cases(),
        (kind, edits()),
        |(kind, edits): (Kind, Vec<Edit>), t| {
            let original = match kind {
                Kind::Visitor => &visitor,
                Kind::Customer => &customer,
                Kind::Session => &session,
            };
            let damaged = mutate(original, &edits);
            let same = damaged.trim() == original.as_str();
            t.note(if same {
                "unchanged by the edits"
            } else {
                "damaged"
            });
            let visitor_ok = keys.widget.verify_visitor(&damaged).is_ok();
            let customer_ok = keys.customer.verify_customer(&damaged, MAX_SECS).is_ok();
            let session_ok = keys.session.verify::<SessionClaims>(&damaged).is_ok();
            let accepted = [
                (Kind::Visitor, visitor_ok),
                (Kind::Customer, customer_ok),
                (Kind::Session, session_ok),
            ];
            for (k, ok) in accepted {
                let expected = same && std::mem::discriminant(&k) == std::mem::discriminant(&kind);
                check(ok == expected, || {
                    format!("{kind:?} token damaged to {damaged:?}: {k:?} key accepted={ok}")
                })?;
            }
            Ok(())
        },
    );
}

#[derive(Debug, Clone)]
enum KeyInput {
    /// Any text.
    Text(String),
    /// `fd_` and any text.
    Prefixed(String),
    /// A real key's id with any secret.
    RealId(usize, String),
    /// A real key, damaged.
    Damaged(usize, Vec<Edit>),
}

#[test]
fn api_keys() {
    let store = SledStore::temporary().expect("temporary store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let scopes = [Scope::Messages, Scope::Agent, Scope::Lead, Scope::Admin];
    let made: Vec<_> = scopes
        .iter()
        .map(|s| {
            rt.block_on(create_api_key(&store, "fuzz", *s))
                .expect("create a key")
        })
        .collect();
    let n = made.len();
    let input = prop_oneof![
        1 => prop_oneof![text(), any_chars(60)].prop_map(KeyInput::Text),
        1 => prop_oneof![text(), "[A-Za-z0-9_]{0,60}"].prop_map(KeyInput::Prefixed),
        1 => (0..n, prop_oneof![text(), "[A-Za-z0-9]{40}"]).prop_map(|(i, s)| KeyInput::RealId(i, s)),
        3 => (0..n, edits()).prop_map(|(i, e)| KeyInput::Damaged(i, e)),
    ];
    fuzz("tokens::api_keys", cases(), input, |input, t| {
        let presented = match &input {
            KeyInput::Text(t) => t.clone(),
            KeyInput::Prefixed(t) => format!("fd_{t}"),
            KeyInput::RealId(i, s) => format!("fd_{}_{s}", made[*i].record.id),
            KeyInput::Damaged(i, e) => mutate(&made[*i].key, e),
        };
        let got = rt.block_on(verify_api_key(&store, &presented));
        let want = made.iter().find(|k| k.key == presented.trim());
        t.note(if want.is_some() {
            "real key"
        } else {
            "not a key"
        });
        match (&got, want) {
            (None, None) => Ok(()),
            (Some((record, scope)), Some(key)) => check(
                record.id == key.record.id && scope.as_str() == key.record.scope,
                || format!("{presented:?} accepted as {} {scope:?}", record.id),
            ),
            _ => Err(TestCaseError::fail(format!(
                "{presented:?}: accepted={}, is a real key={}",
                got.is_some(),
                want.is_some()
            ))),
        }
    });
}
