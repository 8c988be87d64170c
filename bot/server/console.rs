//! The agent console: login, the page and its API (queues, claim, transcript, reply, hand
//! back, close) and a live event socket. Everything but the login page and the login call
//! needs a session: pages redirect to the login, API calls answer 401.

use super::auth::{
    agent_of, check_origin, open_session, session_of, verify_password, AgentAction, AgentSession,
    SESSION_COOKIE,
};
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::desk::assist::canned::{CannedReplies, RenderedReply};
use crate::desk::assist::AssistError;
use crate::desk::{AgentView, Conversation, Desk, DeskEventKind, QueueView};
use crate::llm::LlmError;
use crate::message::ConversationId;
use crate::metrics;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

const CONSOLE_HTML: &str = include_str!("assets/console.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const COMMON_JS: &str = include_str!("assets/common.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/login", get(login_page))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/common.js", get(common_script))
        .route("/console/assets/console.css", get(style))
        .route("/console/api/login", post(login))
        .route("/console/api/logout", post(logout))
        .route("/console/api/me", get(me))
        .route("/console/api/csrf", get(csrf))
        .route("/console/api/queues", get(queues))
        .route("/console/api/agents", get(agents))
        .route("/console/api/conversations/{id}", get(conversation))
        .route("/console/api/conversations/{id}/claim", post(claim))
        .route("/console/api/conversations/{id}/reply", post(reply))
        .route("/console/api/conversations/{id}/canned", get(canned))
        .route("/console/api/conversations/{id}/suggest", post(suggest))
        .route("/console/api/conversations/{id}/hand_back", post(hand_back))
        .route("/console/api/conversations/{id}/verify", post(verify))
        .route("/console/api/conversations/{id}/block", post(block))
        .route("/console/api/customers/{id}/unblock", post(unblock))
        .route("/console/api/conversations/{id}/close", post(close))
        .route("/console/ws", get(live))
}

async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match agent_of(&state, &headers).await {
        Some(_) => Html(CONSOLE_HTML).into_response(),
        None => Redirect::to("/console/login").into_response(),
    }
}

async fn login_page() -> Html<&'static str> {
    Html(LOGIN_HTML)
}

async fn script(_agent: AgentSession) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CONSOLE_JS,
    )
}

async fn common_script(_agent: AgentSession) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        COMMON_JS,
    )
}

async fn style(_agent: AgentSession) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        CONSOLE_CSS,
    )
}

#[derive(Deserialize)]
struct Login {
    name: String,
    password: String,
}

#[derive(Serialize)]
struct LoggedIn {
    agent: String,
    display_name: String,
    /// The session token, also set as an HttpOnly cookie; scripts may send it as
    /// `Authorization: Bearer TOKEN`.
    token: String,
    /// Sent back in the `X-CSRF-Token` header on every state-changing console call.
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    super::limits::ClientAddr(ip): super::limits::ClientAddr,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, AppError> {
    check_origin(&state, &headers)?;
    let refused = || AppError::Unauthorized("unknown agent or wrong password".into());
    let name = body.name.trim().to_string();
    if name.chars().count() > crate::config::MAX_AGENT_NAME {
        return Err(refused());
    }
    let guard = state.logins.clone();
    // the client's address, `X-Forwarded-For` believed only from `server.trusted_proxies`;
    // the attempt is counted as failed from here until the password proves right
    let attempt = match guard.begin(&name, super::limits::address_key(ip)) {
        Ok(a) => a,
        Err(why) => {
            tracing::warn!(name = ?name, %ip, "console login throttled");
            return Err(AppError::TooMany(why.to_string()));
        }
    };
    if !attempt.wait.is_zero() {
        tokio::time::sleep(attempt.wait).await;
    }
    let agent = state.desk.agent(&name).cloned();
    // Verify against an equally costly throwaway hash for unknown names too, so timing
    // does not tell which agent names exist.
    let hash = match &agent {
        Some(a) => a.password_hash.clone(),
        None => {
            let like = state.config.agents.first().map(|a| a.password_hash.clone());
            let guard = guard.clone();
            tokio::task::spawn_blocking(move || {
                guard
                    .dummy
                    .get_or_init(|| super::auth::dummy_hash_like(like.as_deref()))
                    .clone()
            })
            .await
            .map_err(|e| AppError::Internal(format!("password check stopped: {e}")))?
        }
    };
    // At most a few password checks at once: a flood of logins cannot take every CPU.
    let permit = tokio::time::timeout(super::logins::HASHING_WAIT, guard.hashing.acquire())
        .await
        .map_err(|_| AppError::Busy("too many logins at once; try again in a moment".into()))?
        .map_err(|_| AppError::Busy("the server is stopping".into()))?;
    let password = body.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::Internal(format!("password check stopped: {e}")))?;
    drop(permit);
    let agent = match agent {
        Some(a) if ok => a,
        _ => {
            tracing::info!(name = ?name, %ip, "console login refused");
            return Err(refused());
        }
    };
    attempt.succeeded();
    let secs = state.config.server.session_secs;
    let (token, sid) = open_session(
        &state.keys,
        state.store.as_ref(),
        &agent.name,
        &agent.password_hash,
        secs,
    )
    .await
    .map_err(|e| AppError::Internal(format!("could not keep the session: {e}")))?;
    {
        state
            .store
            .flush()
            .await
            .map_err(|e| AppError::Internal(format!("could not keep the session: {e}")))?;
    }
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={secs}{}",
        secure_flag(&state)
    );
    tracing::info!(agent = %agent.name, "agent logged in");
    let body = LoggedIn {
        agent: agent.name.clone(),
        display_name: agent.display().to_string(),
        csrf: state.keys.csrf_of(&sid),
        token,
    };
    Ok(([(header::SET_COOKIE, cookie)], ApiJson(body)).into_response())
}

/// `; Secure` when the server is reached over https (`server.public_url`).
fn secure_flag(state: &AppState) -> &'static str {
    match &state.config.server.public_url {
        Some(u) if u.starts_with("https://") => "; Secure",
        _ => "",
    }
}

/// Ends the session on the server (the token stops working at once) and clears the cookie.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(session) = session_of(&state, &headers).await {
        check_origin(&state, &headers)?;
        super::auth::check_csrf(&state, &headers, &session.sid)?;
        state
            .store
            .remove_session(&session.sid)
            .await
            .and(Ok(()))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let _ = state.store.flush().await;
        tracing::info!(agent = %session.agent, "agent logged out");
    }
    let cookie = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        secure_flag(&state)
    );
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

#[derive(Serialize)]
struct Csrf {
    csrf: String,
}

/// The CSRF token of the current session (for a console page opened after the login).
async fn csrf(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<ApiJson<Csrf>, AppError> {
    let session = session_of(&state, &headers)
        .await
        .ok_or_else(AppError::login_required)?;
    Ok(ApiJson(Csrf {
        csrf: state.keys.csrf_of(&session.sid),
    }))
}

async fn me(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
) -> Result<ApiJson<AgentView>, AppError> {
    state
        .desk
        .agents()
        .await
        .into_iter()
        .find(|a| a.name == agent)
        .map(ApiJson)
        .ok_or_else(AppError::login_required)
}

async fn queues(
    _agent: AgentSession,
    State(state): State<AppState>,
) -> Result<ApiJson<Vec<QueueView>>, AppError> {
    Ok(ApiJson(state.desk.queues().await?))
}

async fn agents(_agent: AgentSession, State(state): State<AppState>) -> ApiJson<Vec<AgentView>> {
    ApiJson(state.desk.agents().await)
}

/// A transcript with each agent's display name, for the console.
#[derive(Serialize)]
struct TranscriptView {
    #[serde(flatten)]
    conversation: Conversation,
    agent_names: std::collections::BTreeMap<String, String>,
}

async fn conversation(
    _agent: AgentSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    transcript(&state, &id).await
}

/// Conversation `id` with its transcript and the agents' display names.
pub(super) async fn transcript(state: &AppState, id: &str) -> Result<Response, AppError> {
    let conversation = load(&state.desk, id).await?;
    let agent_names = state
        .desk
        .agents()
        .await
        .into_iter()
        .map(|a| (a.name, a.display_name))
        .collect();
    Ok(ApiJson(TranscriptView {
        conversation,
        agent_names,
    })
    .into_response())
}

async fn load(desk: &Desk, id: &str) -> Result<Conversation, AppError> {
    desk.conversation(&ConversationId(id.to_string()))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id}")))
}

async fn claim(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Conversation>, AppError> {
    Ok(ApiJson(
        state.desk.claim(&agent, &ConversationId(id)).await?,
    ))
}

#[derive(Deserialize)]
struct AgentText {
    text: String,
}

async fn reply(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AgentText>,
) -> Result<ApiJson<Conversation>, AppError> {
    super::validate::check_text(&body.text, state.config.server.max_text_len)?;
    let id = ConversationId(id);
    state.desk.agent_reply(&agent, &id, &body.text).await?;
    Ok(ApiJson(load(&state.desk, id.as_str()).await?))
}

#[derive(Deserialize)]
struct CannedSearch {
    /// Words every reply found holds (in its title or text); none: every reply.
    #[serde(default)]
    q: String,
}

#[derive(Serialize)]
struct CannedFound {
    /// The canned replies found, filled in for this conversation (placeholders such as
    /// `[order number]` where it cannot tell), for the agent to edit before sending.
    replies: Vec<RenderedReply>,
    /// Whether `POST .../suggest` can draft a reply (an LLM is configured).
    can_suggest: bool,
}

/// The canned replies matching `?q=`, each filled in for conversation `id` and the agent.
async fn canned(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(search): Query<CannedSearch>,
) -> Result<ApiJson<CannedFound>, AppError> {
    let replies = CannedReplies::load(state.config.assist.canned_replies.as_deref())
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let agent_name = state.desk.agent(&agent).map(|a| a.display().to_string());
    let facts = state
        .desk
        .reply_facts(
            &ConversationId(id.clone()),
            agent_name.as_deref(),
            &state.config.assist.tracking_url,
        )
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id}")))?;
    Ok(ApiJson(CannedFound {
        replies: replies.find(&search.q, &facts),
        can_suggest: state.desk.llm().is_some(),
    }))
}

#[derive(Serialize)]
struct Suggestion {
    /// The LLM's draft of the agent's next reply; never sent by itself.
    text: String,
}

/// A draft reply for conversation `id` from the LLM: 409 without an LLM, 504 when it does
/// not answer in time, 502 when it fails or its draft does not pass the guardrails.
async fn suggest(
    AgentAction(_agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Suggestion>, Response> {
    match state.desk.suggest_reply(&ConversationId(id.clone())).await {
        Ok(text) => Ok(ApiJson(Suggestion { text })),
        Err(AssistError::NoLlm) => {
            Err(AppError::Conflict(AssistError::NoLlm.to_string()).into_response())
        }
        Err(AssistError::Desk(e)) => Err(AppError::from(e).into_response()),
        Err(AssistError::Llm(e)) => Err(llm_failure(&e)),
    }
}

/// An LLM failure as the console shows it: what happened and what the agent can do.
fn llm_failure(e: &LlmError) -> Response {
    let (status, code, message) = match e {
        LlmError::Timeout(after) => (
            StatusCode::GATEWAY_TIMEOUT,
            "llm_timeout",
            format!(
                "the LLM did not answer within {} s; try again, or pick a canned reply",
                after.as_secs()
            ),
        ),
        LlmError::BudgetSpent(scope) => (
            StatusCode::TOO_MANY_REQUESTS,
            "llm_budget",
            format!(
                "the LLM's token budget is spent ({scope}); write the reply yourself or pick a \
                 canned reply"
            ),
        ),
        LlmError::Blocked(why) => (
            StatusCode::BAD_GATEWAY,
            "llm_refused",
            format!(
                "the LLM's draft was not used because {why}; try again, or write the reply \
                 yourself"
            ),
        ),
        other => (
            StatusCode::BAD_GATEWAY,
            "llm_failed",
            format!(
                "the LLM could not draft a reply: {other}; try again later, or pick a canned reply"
            ),
        ),
    };
    tracing::warn!(reason = e.reason(), error = %e, "suggested reply failed");
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

async fn hand_back(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Conversation>, AppError> {
    let id = ConversationId(id);
    state.desk.hand_back(&agent, &id).await?;
    Ok(ApiJson(load(&state.desk, id.as_str()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Verify {
    /// The order the customer asks about.
    order: String,
    /// The email address or postcode on it, as the customer told the agent.
    proof: String,
}

/// The owning agent typed the order and the email or postcode the customer gave; the shop
/// confirms them, or the call fails (and counts as a wrong check of the order).
async fn verify(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Verify>,
) -> Result<ApiJson<Conversation>, AppError> {
    let id = ConversationId(id);
    state
        .desk
        .verify_customer(&agent, &id, &body.order, &body.proof)
        .await?;
    Ok(ApiJson(load(&state.desk, id.as_str()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockBody {
    reason: String,
}

/// Blocks the conversation's customer (abuse, a flood): it closes, and their messages are
/// refused until an agent unblocks them.
async fn block(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BlockBody>,
) -> Result<ApiJson<serde_json::Value>, AppError> {
    let id = ConversationId(id);
    let customer = state.desk.block_customer(&agent, &id, &body.reason).await?;
    audit_block(&state, &agent, "block", &customer).await?;
    Ok(ApiJson(
        serde_json::json!({ "customer": customer, "blocked": true }),
    ))
}

async fn unblock(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(customer): Path<String>,
) -> Result<ApiJson<serde_json::Value>, AppError> {
    state.desk.unblock_customer(&agent, &customer).await?;
    audit_block(&state, &agent, "unblock", &customer).await?;
    Ok(ApiJson(
        serde_json::json!({ "customer": customer, "blocked": false }),
    ))
}

/// Blocking and unblocking are written to the audit (who, what; the customer as a hash).
async fn audit_block(
    state: &AppState,
    agent: &str,
    action: &str,
    customer: &str,
) -> Result<(), AppError> {
    state
        .store
        .audit(&crate::store::AuditLine {
            time: chrono::Utc::now(),
            action: format!("{action} by agent {agent}"),
            subject: super::privacy::subject_hash(customer),
            actor: format!("agent:{agent}"),
        })
        .await
        .map_err(|e| AppError::from(crate::desk::DeskError::Storage(e)))
}

async fn close(
    AgentAction(agent): AgentAction,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Conversation>, AppError> {
    let id = ConversationId(id);
    state.desk.close(&agent, &id).await?;
    Ok(ApiJson(load(&state.desk, id.as_str()).await?))
}

/// Every desk event, as JSON text frames, while the session lasts; the console refreshes
/// what an event touches.
async fn live(
    _agent: AgentSession,
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let session = session_of(&state, &headers)
        .await
        .ok_or_else(AppError::login_required)?;
    // A page of another site may open a socket with the agent's cookie: browsers always
    // send Origin, so a cookie session needs one that is this server.
    let origin = headers.get(header::ORIGIN);
    if origin.is_some() || session.from_cookie {
        let ok = origin
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| super::auth::origin_matches(&state, &headers, o));
        if !ok {
            return Err(AppError::Forbidden(
                "cross-site WebSocket refused: the Origin does not match this server".into(),
            ));
        }
    }
    Ok(ws.on_upgrade(move |socket| forward_events(socket, state)))
}

async fn forward_events(mut socket: WebSocket, state: AppState) {
    let mut events = state.desk.subscribe();
    let mut stopping = state.stopping.clone();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                // The customer's own copy of a line the agents saw as it was written.
                Ok(event) if matches!(event.kind, DeskEventKind::Line { .. }) => {}
                Ok(event) => {
                    let Ok(text) = serde_json::to_string(&event) else { continue };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                // Missed some: tell the page to reload everything.
                Err(RecvError::Lagged(_)) => {
                    if socket.send(Message::Text(r#"{"type":"resync"}"#.into())).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                _ => {}
            },
            _ = super::until_stopped(&mut stopping) => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
        }
    }
}

/// Counts escalations and agent replies from the desk's events.
pub fn spawn_event_metrics(desk: Desk, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let mut events = desk.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => match event.kind {
                        DeskEventKind::Queued { queue, .. } => metrics::escalated(&queue),
                        DeskEventKind::AgentReply { .. } => metrics::agent_replied(),
                        _ => {}
                    },
                    Err(RecvError::Lagged(n)) => tracing::debug!(missed = n, "metrics lagged behind events"),
                    Err(RecvError::Closed) => break,
                },
                _ = super::until_stopped(&mut stopping) => break,
            }
        }
    });
}
