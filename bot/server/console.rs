//! The agent console: login, the page and its API (queues, claim, transcript, reply, hand
//! back, close) and a live event socket. Everything but the login page and the login call
//! needs a session: pages redirect to the login, API calls answer 401.

use super::auth::{agent_of, verify_password, AgentSession, SESSION_COOKIE, SESSION_SECS};
use super::error::{ApiJson, AppError};
use super::AppState;
use crate::desk::{AgentView, Conversation, Desk, DeskEventKind, QueueView};
use crate::message::ConversationId;
use crate::metrics;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

const CONSOLE_HTML: &str = include_str!("assets/console.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/login", get(login_page))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/console.css", get(style))
        .route("/console/api/login", post(login))
        .route("/console/api/logout", post(logout))
        .route("/console/api/me", get(me))
        .route("/console/api/queues", get(queues))
        .route("/api/v1/queues", get(queues))
        .route("/console/api/agents", get(agents))
        .route("/console/api/conversations/{id}", get(conversation))
        .route("/api/v1/conversations/{id}", get(conversation))
        .route("/console/api/conversations/{id}/claim", post(claim))
        .route("/console/api/conversations/{id}/reply", post(reply))
        .route("/console/api/conversations/{id}/hand_back", post(hand_back))
        .route("/console/api/conversations/{id}/close", post(close))
        .route("/console/ws", get(live))
}

async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match agent_of(&state, &headers) {
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
}

async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, AppError> {
    let refused = || AppError::Unauthorized("unknown agent or wrong password".into());
    let agent = state.desk.agent(body.name.trim()).cloned();
    // Verify against a throwaway hash for unknown names too, so timing does not tell
    // which agent names exist.
    let hash = agent
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(dummy_hash);
    let password = body.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| AppError::Internal(format!("password check stopped: {e}")))?;
    let agent = match agent {
        Some(a) if ok => a,
        _ => {
            tracing::info!(name = %body.name, "console login refused");
            return Err(refused());
        }
    };
    let token = state.signer.issue_session(&agent.name);
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECS}"
    );
    tracing::info!(agent = %agent.name, "agent logged in");
    let body = LoggedIn {
        agent: agent.name.clone(),
        display_name: agent.display().to_string(),
        token,
    };
    Ok(([(header::SET_COOKIE, cookie)], ApiJson(body)).into_response())
}

/// An argon2 hash of a random password nobody knows.
fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        super::auth::hash_password(&super::auth::random_token(24)).unwrap_or_default()
    })
    .clone()
}

async fn logout() -> impl IntoResponse {
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)])
}

async fn me(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
) -> Result<ApiJson<AgentView>, AppError> {
    state
        .desk
        .agents()
        .into_iter()
        .find(|a| a.name == agent)
        .map(ApiJson)
        .ok_or_else(AppError::login_required)
}

async fn queues(
    _agent: AgentSession,
    State(state): State<AppState>,
) -> Result<ApiJson<Vec<QueueView>>, AppError> {
    Ok(ApiJson(state.desk.queues()?))
}

async fn agents(_agent: AgentSession, State(state): State<AppState>) -> ApiJson<Vec<AgentView>> {
    ApiJson(state.desk.agents())
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
    let conversation = load(&state.desk, &id)?;
    let agent_names = state
        .desk
        .agents()
        .into_iter()
        .map(|a| (a.name, a.display_name))
        .collect();
    Ok(ApiJson(TranscriptView {
        conversation,
        agent_names,
    })
    .into_response())
}

fn load(desk: &Desk, id: &str) -> Result<Conversation, AppError> {
    desk.conversation(&ConversationId(id.to_string()))?
        .ok_or_else(|| AppError::NotFound(format!("no conversation {id}")))
}

async fn claim(
    AgentSession(agent): AgentSession,
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
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AgentText>,
) -> Result<ApiJson<Conversation>, AppError> {
    super::validate::check_text(&body.text, state.config.server.max_text_len)?;
    let id = ConversationId(id);
    state.desk.agent_reply(&agent, &id, &body.text).await?;
    Ok(ApiJson(load(&state.desk, id.as_str())?))
}

async fn hand_back(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Conversation>, AppError> {
    let id = ConversationId(id);
    state.desk.hand_back(&agent, &id).await?;
    Ok(ApiJson(load(&state.desk, id.as_str())?))
}

async fn close(
    AgentSession(agent): AgentSession,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<ApiJson<Conversation>, AppError> {
    let id = ConversationId(id);
    state.desk.close(&agent, &id).await?;
    Ok(ApiJson(load(&state.desk, id.as_str())?))
}

/// Every desk event, as JSON text frames, while the session lasts; the console refreshes
/// what an event touches.
async fn live(
    _agent: AgentSession,
    State(state): State<AppState>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| forward_events(socket, state))
}

async fn forward_events(mut socket: WebSocket, state: AppState) {
    let mut events = state.desk.subscribe();
    let mut stopping = state.stopping.clone();
    loop {
        tokio::select! {
            event = events.recv() => match event {
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
