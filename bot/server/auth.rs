//! Who is talking to the server: signed tokens for widget visitors and shop customers,
//! argon2 password hashes and signed session cookies for agents.
//!
//! Every token has the same shape, `BASE64URL(json) "." BASE64URL(HMAC-SHA256(secret, BASE64URL(json)))`,
//! with base64url without padding. The secret is the server secret (`server.secret` in the
//! config, or the one generated into the data dir). A shop that wants its customers' tier and
//! lifetime value to be trusted signs a [`CustomerClaims`] JSON the same way on its own server
//! and puts the token in the widget's `data-customer-token` attribute; a visitor cannot change
//! the tier without breaking the signature.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::AppError;
use super::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

type HmacSha256 = Hmac<Sha256>;

/// Why a token or password was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the token is not of the form PAYLOAD.SIGNATURE (base64url, no padding)")]
    Malformed,
    #[error("the token's signature does not match: it was not signed with this server's secret")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token's payload is not the expected JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("the token's payload is not usable: {0}")]
    Payload(String),
    /// argon2's error does not implement `std::error::Error` (no `std` feature), so only
    /// its message is kept.
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// The server secret, used for every HMAC signature.
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

/// A customer the shop vouches for. The shop signs this JSON with the server secret:
///
/// ```text
/// payload = base64url(json)            // e.g. {"customer_id":"C1001","tier":"gold","lifetime_value":4200}
/// token   = payload + "." + base64url(HMAC_SHA256(secret, payload))
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
    /// Optional expiry, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
}

impl Signer {
    pub fn verify_customer(&self, token: &str) -> Result<CustomerClaims, AuthError> {
        let claims: CustomerClaims = self.verify(token)?;
        if claims.customer_id.trim().is_empty() {
            return Err(AuthError::Payload("customer_id is empty".into()));
        }
        if matches!(claims.exp, Some(exp) if exp < chrono::Utc::now().timestamp()) {
            return Err(AuthError::Expired);
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

/// An agent's console session: the value of the HttpOnly `frontdesk_session` cookie (also
/// accepted as `Authorization: Bearer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// Always "agent_session".
    pub kind: String,
    pub agent: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Random, so two logins in the same second give different tokens.
    pub nonce: String,
}

pub const SESSION_COOKIE: &str = "frontdesk_session";
/// Sessions last twelve hours, one shift.
pub const SESSION_SECS: i64 = 12 * 3600;

impl Signer {
    pub fn issue_session(&self, agent: &str) -> String {
        self.sign(&SessionClaims {
            kind: "agent_session".into(),
            agent: agent.to_string(),
            exp: chrono::Utc::now().timestamp() + SESSION_SECS,
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// The agent name of a valid, unexpired session token.
    pub fn verify_session(&self, token: &str) -> Result<String, AuthError> {
        let claims: SessionClaims = self.verify(token)?;
        if claims.kind != "agent_session" {
            return Err(AuthError::Payload("not a session token".into()));
        }
        if claims.exp < chrono::Utc::now().timestamp() {
            return Err(AuthError::Expired);
        }
        Ok(claims.agent)
    }
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

pub(super) fn session_token(headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(token) = auth.strip_prefix("Bearer ") {
            return Some(token.trim().to_string());
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

pub(super) fn agent_of(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let token = session_token(headers)?;
    let agent = state.signer.verify_session(&token).ok()?;
    // An agent removed from the config loses access even with a valid cookie.
    state.desk.agent(&agent).map(|_| agent)
}

impl FromRequestParts<AppState> for AgentSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        agent_of(state, &parts.headers)
            .map(AgentSession)
            .ok_or_else(AppError::login_required)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_token_round_trips_and_rejects_a_forged_tier() {
        let signer = Signer::new("shop-secret");
        let claims = CustomerClaims {
            customer_id: "C1".into(),
            tier: Some("gold".into()),
            lifetime_value: Some(5000.0),
            name: None,
            email: None,
            exp: None,
        };
        let token = signer.sign(&claims);
        assert_eq!(signer.verify_customer(&token).unwrap(), claims);

        // The visitor rewrites the payload to claim platinum: the signature no longer fits.
        let (_, sig) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"customer_id":"C1","tier":"platinum"}"#);
        assert!(matches!(
            signer.verify_customer(&format!("{forged}.{sig}")),
            Err(AuthError::BadSignature)
        ));
        // Another server's secret does not verify either.
        assert!(matches!(
            Signer::new("other").verify_customer(&token),
            Err(AuthError::BadSignature)
        ));
    }

    #[test]
    fn a_visitor_token_is_not_a_session() {
        let signer = Signer::new("s");
        let visitor = signer.sign(&VisitorClaims::new_random());
        assert!(signer.verify_session(&visitor).is_err());
        let session = signer.issue_session("ana");
        assert_eq!(signer.verify_session(&session).unwrap(), "ana");
        assert!(signer.verify_visitor(&session).is_err());
    }

    #[test]
    fn expired_customer_token_is_refused() {
        let signer = Signer::new("s");
        let token = signer.sign(&CustomerClaims {
            customer_id: "C1".into(),
            tier: None,
            lifetime_value: None,
            name: None,
            email: None,
            exp: Some(1),
        });
        assert!(matches!(signer.verify_customer(&token), Err(AuthError::Expired)));
    }

    #[test]
    fn password_hash_verifies_only_the_right_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("correct horse", "not-a-hash"));
    }
}
