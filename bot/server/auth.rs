//! Who is talking to the server: signed tokens for widget visitors and shop customers,
//! argon2 password hashes and server-side sessions for agents, API keys for integrations.
//!
//! Every token has the same shape, `BASE64URL(json) "." BASE64URL(HMAC-SHA256(key, BASE64URL(json)))`,
//! with base64url without padding. Each purpose has its own key ([`Keys`]), derived with
//! HKDF-SHA256 from the master secret (`server.secret`, or the one generated into the data
//! dir): a token of one kind never verifies as another. Customer tokens are signed with
//! `server.shop_secret` when it is set (so a shop holds a key that signs customers and
//! nothing else), else with the key derived for them; they must carry `exp`, no further
//! away than `server.customer_token_max_secs`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::AppError;
use super::AppState;
use crate::store::{SessionRecord, Store, StoreError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

type HmacSha256 = Hmac<Sha256>;

/// Why a token or password was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token is not of the form PAYLOAD.SIGNATURE (base64url, no padding)")]
    Malformed,
    #[error(
        "the token's signature does not match: it was not signed with this server's key for it"
    )]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token has no `exp` (expiry, Unix seconds); customer tokens must carry one")]
    NoExpiry,
    #[error("the token's `exp` is more than {0} seconds away (server.customer_token_max_secs)")]
    TooLong(u64),
    #[error("the token's payload is not the expected JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("the token's payload is not usable: {0}")]
    Payload(String),
    /// argon2's error does not implement `std::error::Error` (no `std` feature), so only
    /// its message is kept.
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// One HMAC key, used for one purpose.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Signer {
            key: secret.as_ref().to_vec(),
        }
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length");
        mac.update(data);
        mac
    }

    /// Signs any serialisable claims into a token.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        let json = serde_json::to_vec(claims).expect("claims serialise");
        let payload = URL_SAFE_NO_PAD.encode(json);
        let sig = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Checks the signature (in constant time) and decodes the claims.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<T, AuthError> {
        let (payload, sig) = token.trim().split_once('.').ok_or(AuthError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| AuthError::Malformed)?;
        self.mac(payload.as_bytes())
            .verify_slice(&sig)
            .map_err(|_| AuthError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| AuthError::Malformed)?;
        serde_json::from_slice(&json).map_err(AuthError::Json)
    }

    /// A MAC of `data` as base64url (the console's CSRF token of a session id).
    fn tag(&self, data: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(data.as_bytes()).finalize().into_bytes())
    }
}

/// The keys of each purpose, derived from the master secret.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Anonymous widget visitors' tokens.
    pub widget: Signer,
    /// Shop customers' tokens: `server.shop_secret` itself when set.
    pub customer: Signer,
    /// Agent session tokens.
    pub session: Signer,
    /// CSRF tokens of the console (a MAC of the session id).
    csrf: Signer,
}

/// HKDF-SHA256 of the master secret for one purpose.
fn derive(master: &[u8], purpose: &str) -> Signer {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(b"frontdesk key derivation v1"), master);
    let mut okm = [0u8; 32];
    hk.expand(purpose.as_bytes(), &mut okm)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    Signer::new(okm)
}

impl Keys {
    /// The keys of `master`; customer tokens are signed with `shop_secret` when given.
    pub fn derive(master: impl AsRef<[u8]>, shop_secret: Option<&str>) -> Keys {
        let master = master.as_ref();
        Keys {
            widget: derive(master, "widget-token"),
            customer: match shop_secret.filter(|s| !s.is_empty()) {
                Some(shop) => Signer::new(shop),
                None => derive(master, "customer-token"),
            },
            session: derive(master, "agent-session"),
            csrf: derive(master, "console-csrf"),
        }
    }

    /// The CSRF token that goes with session `sid`.
    pub fn csrf_of(&self, sid: &str) -> String {
        self.csrf.tag(sid)
    }
}

/// An anonymous widget visitor, issued by the server on first connect and kept by the
/// browser in localStorage so a reload resumes the same conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitorClaims {
    /// Always "visitor"; keeps a visitor token from being accepted as another kind.
    pub kind: String,
    /// Stable visitor id, the widget channel's user id.
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
}

impl VisitorClaims {
    pub fn new_random() -> Self {
        VisitorClaims {
            kind: "visitor".into(),
            sub: format!("v-{}", uuid::Uuid::new_v4().simple()),
            iat: chrono::Utc::now().timestamp(),
        }
    }
}

/// A customer the shop vouches for. The shop signs this JSON with `server.shop_secret`:
///
/// ```text
/// payload = base64url(json)            // e.g. {"customer_id":"C1001","tier":"gold","exp":1767225600}
/// token   = payload + "." + base64url(HMAC_SHA256(shop_secret, payload))
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerClaims {
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Expiry, Unix seconds: required, at most `server.customer_token_max_secs` away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

impl Signer {
    /// A customer token's claims: signed with this key, with an `exp` in the future and at
    /// most `max_secs` away.
    pub fn verify_customer(&self, token: &str, max_secs: u64) -> Result<CustomerClaims, AuthError> {
        let claims: CustomerClaims = self.verify(token)?;
        if claims.customer_id.trim().is_empty() {
            return Err(AuthError::Payload("customer_id is empty".into()));
        }
        let now = chrono::Utc::now().timestamp();
        match claims.exp {
            None => return Err(AuthError::NoExpiry),
            Some(exp) if exp < now => return Err(AuthError::Expired),
            Some(exp) if exp - now > max_secs as i64 => return Err(AuthError::TooLong(max_secs)),
            Some(_) => {}
        }
        Ok(claims)
    }

    pub fn verify_visitor(&self, token: &str) -> Result<VisitorClaims, AuthError> {
        let claims: VisitorClaims = self.verify(token)?;
        if claims.kind != "visitor" {
            return Err(AuthError::Payload("not a visitor token".into()));
        }
        Ok(claims)
    }
}

/// An agent's console session token: the value of the HttpOnly `frontdesk_session` cookie
/// (also accepted as `Authorization: Bearer`). It names a session kept in the store's
/// `sessions` tree; logout deletes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// Always "agent_session".
    pub kind: String,
    /// The session id in the store.
    pub sid: String,
    pub agent: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

pub const SESSION_COOKIE: &str = "frontdesk_session";
/// The header the console sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A fingerprint of a password hash: a session opened before the password changed ends.
pub fn fingerprint(password_hash: &str) -> String {
    hex::encode(&Sha256::digest(password_hash.as_bytes())[..12])
}

/// A new session for `agent` (whose password hash is `password_hash`) lasting `secs`:
/// stored, then returned as (token, session id).
pub async fn open_session(
    keys: &Keys,
    store: &dyn Store,
    agent: &str,
    password_hash: &str,
    secs: u64,
) -> Result<(String, String), StoreError> {
    let sid = random_token(32);
    let expires = chrono::Utc::now() + chrono::Duration::seconds(secs as i64);
    store
        .put_session(
            &sid,
            &SessionRecord {
                agent: agent.to_string(),
                expires,
                fingerprint: fingerprint(password_hash),
            },
        )
        .await?;
    let token = keys.session.sign(&SessionClaims {
        kind: "agent_session".into(),
        sid: sid.clone(),
        agent: agent.to_string(),
        exp: expires.timestamp(),
    });
    Ok((token, sid))
}

/// Hashes an agent password into the argon2 PHC string that goes into the config's
/// `agents[].password_hash` (`frontdesk hash-password`).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// True when `password` matches the PHC hash. A malformed hash never matches.
pub fn verify_password(password: &str, phc_hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(phc_hash) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// An argon2 hash of a random password with the same algorithm and parameters as `like`,
/// so that checking a password against it costs what checking a real agent's does.
pub fn dummy_hash_like(like: Option<&str>) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
    let password = random_token(24);
    let salt = SaltString::generate(&mut OsRng);
    if let Some(parsed) = like.and_then(|h| PasswordHash::new(h).ok()) {
        let params = argon2::Params::try_from(&parsed);
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm);
        let version = parsed
            .version
            .and_then(|v| argon2::Version::try_from(v).ok())
            .unwrap_or_default();
        if let (Ok(params), Ok(algorithm)) = (params, algorithm) {
            if let Ok(h) = argon2::Argon2::new(algorithm, version, params)
                .hash_password(password.as_bytes(), &salt)
            {
                return h.to_string();
            }
        }
    }
    hash_password(&password).unwrap_or_default()
}

/// A random secret or password of `len` URL-safe characters.
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// A logged-in agent: from the `frontdesk_session` cookie or `Authorization: Bearer`.
/// Rejects with 401 and a JSON error when there is none or it is not valid.
pub struct AgentSession(pub String);

/// A valid session: its agent, its id, and whether it came in a cookie (which a browser
/// sends by itself, so state-changing calls also need the CSRF token).
#[derive(Debug, Clone)]
pub struct Session {
    pub agent: String,
    pub sid: String,
    pub from_cookie: bool,
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The valid session of this request: signed with the session key, unexpired, still in
/// the store, of an agent still in the config whose password has not changed since.
pub async fn session_of(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let (token, from_cookie) = match bearer(headers).filter(|t| !t.starts_with(API_KEY_PREFIX)) {
        Some(t) => (t, false),
        None => (session_cookie(headers)?, true),
    };
    let claims: SessionClaims = state.keys.session.verify(&token).ok()?;
    let now = chrono::Utc::now();
    if claims.kind != "agent_session" || claims.exp < now.timestamp() {
        return None;
    }
    let record = state.store.session(&claims.sid).await.ok()??;
    if record.expires < now || record.agent != claims.agent {
        return None;
    }
    // An agent removed from the config, or whose password changed, loses access.
    let agent = state.desk.agent(&record.agent)?;
    if fingerprint(&agent.password_hash) != record.fingerprint {
        // Also what a node whose config hashed the same password again (another salt) sees
        // of the other nodes' sessions: say so where an operator looks.
        tracing::warn!(agent = %record.agent,
            "a console session refused: it was made with another password hash for this agent (the password changed, or the nodes' configs differ: give every node the same [[agents]] entries)");
        return None;
    }
    Some(Session {
        agent: record.agent,
        sid: claims.sid,
        from_cookie,
    })
}

pub(super) async fn agent_of(state: &AppState, headers: &HeaderMap) -> Option<String> {
    session_of(state, headers).await.map(|s| s.agent)
}

impl FromRequestParts<AppState> for AgentSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        agent_of(state, &parts.headers)
            .await
            .map(AgentSession)
            .ok_or_else(AppError::login_required)
    }
}

/// The origin the console must be used from: `server.public_url`'s, else the request's
/// own Host (compared without the scheme, which a proxy may have changed).
pub fn origin_matches(state: &AppState, headers: &HeaderMap, origin: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    if let Some(public) = &state.config.server.public_url {
        if let Ok(url) = reqwest::Url::parse(public) {
            return url.origin().ascii_serialization() == origin;
        }
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = origin.split_once("://").map(|(_, a)| a);
    matches!((host, authority), (Some(h), Some(a)) if h.eq_ignore_ascii_case(a))
}

/// Refuses a request whose `Origin` header names another site.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    match headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""))
    {
        Some(origin) if !origin_matches(state, headers, origin) => Err(AppError::Forbidden(
            "cross-site request refused: the Origin does not match this server (server.public_url)"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// A logged-in agent's state-changing call: the Origin (when sent) is this server and the
/// CSRF token of the session is in the `X-CSRF-Token` header.
pub struct AgentAction(pub String);

impl FromRequestParts<AppState> for AgentAction {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let session = session_of(state, &parts.headers)
            .await
            .ok_or_else(AppError::login_required)?;
        check_origin(state, &parts.headers)?;
        check_csrf(state, &parts.headers, &session.sid)?;
        Ok(AgentAction(session.agent))
    }
}

pub fn check_csrf(state: &AppState, headers: &HeaderMap, sid: &str) -> Result<(), AppError> {
    use subtle::ConstantTimeEq as _;
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let expected = state.keys.csrf_of(sid);
    if sent.as_bytes().ct_eq(expected.as_bytes()).into() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "missing or wrong CSRF token: send the `csrf` value from the login in the \
             X-CSRF-Token header"
                .into(),
        ))
    }
}

pub use super::api_keys::*;

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
