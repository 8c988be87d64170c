//! API keys for the REST and agent APIs: `fd_ID_SECRET`, the store keeping only the SHA-256
//! of SECRET under ID, each key with one scope.

use sha2::{Digest, Sha256};

use super::error::AppError;
use super::AppState;
use crate::store::{ApiKeyRecord, Store, StoreError};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::auth::*;

/// API keys: `fd_ID_SECRET`; the store keeps the SHA-256 of SECRET under ID.
pub const API_KEY_PREFIX: &str = "fd_";

/// The one path a key of [`Scope::Shop`] may call.
pub const SHOP_PATH: &str = "/api/v1/events";

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Post customers' messages and read the conversations written with this key.
    Messages,
    /// Read queues and conversations (the agents' API).
    Agent,
    /// Same as agent, for team leads' tools.
    Lead,
    /// Everything, customers' data export and erasure and new keys included.
    Admin,
    /// The shop's own systems: post events (`POST /api/v1/events`, `crate::notices`) and
    /// nothing else, so a key in the shop's webhook sender reads no conversation.
    Shop,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Messages => "messages",
            Scope::Agent => "agent",
            Scope::Lead => "lead",
            Scope::Admin => "admin",
            Scope::Shop => "shop",
        }
    }

    /// Whether a key of this scope may do what `needed` allows.
    pub fn allows(self, needed: Scope) -> bool {
        match needed {
            Scope::Messages => matches!(self, Scope::Messages | Scope::Admin),
            Scope::Agent => matches!(self, Scope::Agent | Scope::Lead | Scope::Admin),
            Scope::Lead => matches!(self, Scope::Lead | Scope::Admin),
            Scope::Admin => self == Scope::Admin,
            Scope::Shop => matches!(self, Scope::Shop | Scope::Admin),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        match s {
            "messages" => Ok(Scope::Messages),
            "agent" => Ok(Scope::Agent),
            "lead" => Ok(Scope::Lead),
            "admin" => Ok(Scope::Admin),
            "shop" => Ok(Scope::Shop),
            other => Err(format!(
                "unknown scope {other:?}: use messages, agent, lead, admin or shop"
            )),
        }
    }
}

/// A key just made: `key` is shown once, only its hash is stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key: String,
    pub record: ApiKeyRecord,
}

fn key_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Makes and stores a key named `name` with `scope` (call the store's flush after).
pub async fn create_api_key(
    store: &dyn Store,
    name: &str,
    scope: Scope,
) -> Result<NewApiKey, StoreError> {
    let id = random_token(12);
    let secret = random_token(40);
    let record = ApiKeyRecord {
        id: id.clone(),
        name: name.to_string(),
        scope: scope.as_str().to_string(),
        hash: key_hash(&secret),
        created: chrono::Utc::now(),
    };
    store.put_api_key(&record).await?;
    Ok(NewApiKey {
        key: format!("{API_KEY_PREFIX}{id}_{secret}"),
        record,
    })
}

/// Revokes the keys whose id or name is `which`; returns the ids revoked.
pub async fn revoke_api_key(store: &dyn Store, which: &str) -> Result<Vec<String>, StoreError> {
    let mut revoked = Vec::new();
    for key in store.api_keys().await? {
        if key.id == which || key.name == which {
            store.remove_api_key(&key.id).await?;
            revoked.push(key.id);
        }
    }
    Ok(revoked)
}

/// The stored key a presented `fd_ID_SECRET` is, if any.
pub async fn verify_api_key(store: &dyn Store, presented: &str) -> Option<(ApiKeyRecord, Scope)> {
    use subtle::ConstantTimeEq as _;
    let rest = presented.trim().strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let record = store.api_key(id).await.ok()??;
    let ok: bool = key_hash(secret)
        .as_bytes()
        .ct_eq(record.hash.as_bytes())
        .into();
    let scope = record.scope.parse().ok()?;
    ok.then_some((record, scope))
}

/// The API key in `Authorization: Bearer`, when there is one and it is valid.
pub async fn api_key_of(state: &AppState, headers: &HeaderMap) -> Option<(ApiKeyRecord, Scope)> {
    let token = bearer(headers).filter(|t| t.starts_with(API_KEY_PREFIX))?;
    verify_api_key(state.store.as_ref(), &token).await
}

/// Who calls the API: a logged-in agent or an integration's key.
pub enum Caller {
    Agent { name: String, admin: bool },
    Key { record: ApiKeyRecord, scope: Scope },
}

impl Caller {
    /// May read queues and every conversation.
    pub fn is_agent(&self) -> bool {
        match self {
            Caller::Agent { .. } => true,
            Caller::Key { scope, .. } => scope.allows(Scope::Agent),
        }
    }

    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Agent { admin, .. } => *admin,
            Caller::Key { scope, .. } => scope.allows(Scope::Admin),
        }
    }

    /// A name for the audit and logs (never a secret).
    pub fn label(&self) -> String {
        match self {
            Caller::Agent { name, .. } => format!("agent:{name}"),
            Caller::Key { record, .. } => format!("key:{}", record.id),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(session) = session_of(state, &parts.headers).await {
            // A browser's cookie on a state-changing call must come from this site.
            if session.from_cookie && parts.method != axum::http::Method::GET {
                check_origin(state, &parts.headers)?;
            }
            let admin = state
                .desk
                .agent(&session.agent)
                .is_some_and(|a| a.is_admin());
            return Ok(Caller::Agent {
                name: session.agent,
                admin,
            });
        }
        if let Some((record, scope)) = api_key_of(state, &parts.headers).await {
            // A shop key is the shop's webhook sender: it posts events and reaches nothing
            // else, whatever a handler would make of a key that is not an agent's.
            if scope == Scope::Shop && parts.uri.path() != SHOP_PATH {
                return Err(AppError::Forbidden(format!(
                    "this API key has the shop scope: it may only post events to {SHOP_PATH};                      create a key with another scope for this"
                )));
            }
            return Ok(Caller::Key { record, scope });
        }
        let sent_key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start_matches("Bearer ").starts_with(API_KEY_PREFIX));
        Err(if sent_key {
            AppError::Unauthorized(
                "this API key is unknown or revoked: create a new one with \
                 `frontdesk api-key create NAME`"
                    .into(),
            )
        } else if parts.uri.path() == "/api/v1/messages" {
            AppError::api_key_required()
        } else {
            AppError::Unauthorized(
                "log in first (POST /console/api/login with {\"name\", \"password\"}, then send \
                 the frontdesk_session cookie or `Authorization: Bearer TOKEN`) or send an API \
                 key with the agent scope (`frontdesk api-key create NAME --scope agent`)"
                    .into(),
            )
        })
    }
}
