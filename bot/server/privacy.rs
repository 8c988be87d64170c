//! Customers' data and keys, for admins: export everything stored about a customer as JSON,
//! erase it (leaving an audit line with a hash of the id only), and make API keys while the
//! server runs. The same functions back `frontdesk customer export|erase`.

use super::api_keys::Caller;
use super::auth::{create_api_key, Scope};
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::store::{AuditLine, CustomerExport, Erased, Store, StoreError};
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

pub use crate::store::subject_hash;

/// Everything stored about customer `id` (their id, or the shop's id for them), with an
/// audit line naming `actor` (`agent:NAME`, `key:ID`, `cli`).
pub async fn export_customer(
    store: &dyn Store,
    id: &str,
    actor: &str,
) -> Result<Option<CustomerExport>, StoreError> {
    let export = store.export_customer(id).await?;
    if export.is_some() {
        store
            .audit(&AuditLine {
                time: chrono::Utc::now(),
                action: "export".into(),
                subject: subject_hash(id),
                actor: actor.into(),
            })
            .await?;
    }
    Ok(export)
}

/// Removes everything stored about customer `id` (every customer record with that id or
/// shop id), with an audit line naming `actor`.
pub async fn erase_customer(
    store: &dyn Store,
    id: &str,
    actor: &str,
) -> Result<Option<Erased>, StoreError> {
    store
        .erase_customer(
            id,
            &AuditLine {
                time: chrono::Utc::now(),
                action: "erase".into(),
                subject: subject_hash(id),
                actor: actor.into(),
            },
        )
        .await
}

fn admin_only(caller: &Caller) -> Result<(), AppError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only an admin (an agent with role = \"admin\", or an API key with the admin scope) \
             may do this"
                .into(),
        ))
    }
}

fn internal(e: StoreError) -> AppError {
    AppError::Internal(e.to_string())
}

pub(super) async fn export(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<CustomerExport>, AppError> {
    admin_only(&caller)?;
    let export = export_customer(state.store.as_ref(), &id, &caller.label())
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::NotFound(format!("no customer {id}")))?;
    state.store.flush().await.map_err(internal)?;
    tracing::info!(by = %caller.label(), "customer data exported");
    Ok(ApiJson(export))
}

pub(super) async fn erase(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Erased>, AppError> {
    admin_only(&caller)?;
    let erased = erase_customer(state.store.as_ref(), &id, &caller.label())
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::NotFound(format!("no customer {id}")))?;
    state.store.flush().await.map_err(internal)?;
    // The help centre remembers the last few questions as asked: none may outlive an erase.
    if let Some(help) = state.desk.help_centre() {
        help.forget_questions();
    }
    tracing::info!(by = %caller.label(), "customer data erased");
    Ok(ApiJson(erased))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKeyRequest {
    name: String,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Serialize)]
pub(super) struct NewKeyResponse {
    id: String,
    name: String,
    scope: String,
    /// Shown once; only its hash is kept.
    key: String,
}

pub(super) async fn create_key(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewKeyRequest>,
) -> Result<ApiJson<NewKeyResponse>, AppError> {
    admin_only(&caller)?;
    let scope: Scope = body
        .scope
        .as_deref()
        .unwrap_or("messages")
        .parse()
        .map_err(AppError::BadRequest)?;
    let name = body.name.trim();
    if name.is_empty() {
        return Err(AppError::BadRequest(
            "`name` is empty: name the integration".into(),
        ));
    }
    let new = create_api_key(state.store.as_ref(), name, scope)
        .await
        .map_err(internal)?;
    state.store.flush().await.map_err(internal)?;
    tracing::info!(by = %caller.label(), key = %new.record.id, scope = scope.as_str(), "API key created");
    Ok(ApiJson(NewKeyResponse {
        id: new.record.id,
        name: new.record.name,
        scope: new.record.scope,
        key: new.key,
    }))
}
