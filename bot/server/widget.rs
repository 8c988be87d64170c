//! The web widget: `widget.js` (one script tag on any page), the demo shop page, and the
//! widget's WebSocket at `/ws`.
//!
//! Socket protocol (JSON text frames). The page first sends
//! `{"type":"hello","token":T|null,"customer_token":C|null}`; the server answers `welcome`
//! with the visitor token to keep (issued when T is missing or invalid), the open
//! conversation, its history and `idle_secs` (the socket is closed, code 4000, after that
//! long without a frame from the page; `{"type":"ping"}` keeps it open). Then
//! `{"type":"message","id":ID,"text":"..."}` gets a `turn` (the bot's replies, status,
//! queue) and, at any time, `bot`, `agent`, `queue` and `status` frames for what happens in
//! the conversation (agent replies, queue moves). `ID` is echoed back; a string `ID` (1-100
//! of `A-Z a-z 0-9 . _ : -`, e.g. a UUID) is also the message's idempotency key: the page
//! sends the same id again when it retries, and the message is handled once.
//!
//! Limits (`limits.rs`): opening a socket counts against the address's new sessions and
//! open sockets (429 or 503 with `Retry-After` instead of the upgrade); each frame but
//! pings against the address's message allowance, each message against the visitor's too.
//! A message over either gets `{"type":"slow_down","id":ID,"retry_after_secs":N,"message"}`
//! instead of a turn, and the page sends it again after N seconds.

use super::auth::VisitorClaims;
use super::error::AppError;
use super::limits::{ClientAddr, Limited, SocketSlot};
use super::validate::{check_text, profile_from_token};
use super::AppState;
use crate::desk::{DeskEvent, DeskEventKind};
use crate::evaluation::report::escape;
use crate::message::{ChannelKind, ConversationId, Inbound, Profile};
use crate::metrics;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

#[path = "widget_frames.rs"]
mod frames;
use frames::*;
#[path = "widget_survey.rs"]
mod survey;

const WIDGET_JS: &str = include_str!("assets/widget.js");
const DEMO_HTML: &str = include_str!("assets/demo.html");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(demo_page))
        .route("/demo", get(demo_page))
        .route("/widget.js", get(widget_js))
        .route("/ws", get(socket))
}

async fn widget_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        WIDGET_JS,
    )
}

#[derive(Deserialize)]
struct DemoQuery {
    /// Pretend the shop has signed this customer in (a demo of `data-customer-token`);
    /// only with the demo shop and `[demo] enabled = true`.
    customer: Option<String>,
}

/// Where pages load the widget from: `server.public_url`, else the request's own host with
/// the request's scheme (a protocol-relative URL, so an https page loads it over https).
fn widget_src(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(public) = &state.config.server.public_url {
        return format!("{}/widget.js", public.trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("127.0.0.1:8080");
    format!("//{host}/widget.js")
}

/// The demo shop. With the demo shop backend and `[demo] enabled = true`, `/?customer=ID`
/// plays the part of the shop's own server after its login: it signs a short-lived token
/// for that customer id (tier and lifetime value then come from the shop data, never from
/// the visitor). Otherwise the page is the guest view only.
async fn demo_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DemoQuery>,
) -> Html<String> {
    let minting = state.config.demo.enabled && state.config.commerce.backend == "demo";
    let customer = q.customer.map(|c| c.trim().to_string()).filter(|c| {
        minting
            && !c.is_empty()
            && c.len() <= 64
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    });
    let (who, attr) = match &customer {
        Some(id) => {
            let ttl = state.config.server.customer_token_max_secs.min(3600) as i64;
            let token = state.keys.customer.sign(&super::auth::CustomerClaims {
                customer_id: id.clone(),
                tier: None,
                lifetime_value: None,
                name: None,
                email: None,
                exp: Some(chrono::Utc::now().timestamp() + ttl),
            });
            (
                format!(
                    "Signed in as customer <b>{}</b> (demo). <a href=\"/\">Sign out</a>",
                    escape(id)
                ),
                format!(" data-customer-token=\"{}\"", escape(&token)),
            )
        }
        None if minting => (
            "You are browsing as a guest. Demo sign-in (what your shop's login would do): \
             <a href=\"/?customer=C1001\">Emma, standard customer</a> · \
             <a href=\"/?customer=C1004\">Noah, VIP customer</a>"
                .to_string(),
            String::new(),
        ),
        None => ("You are browsing as a guest.".to_string(), String::new()),
    };
    Html(
        DEMO_HTML
            .replace("{{WIDGET_SRC}}", &escape(&widget_src(&state, &headers)))
            .replace("{{WHO}}", &who)
            .replace("{{CUSTOMER_ATTR}}", &attr),
    )
}

/// The close code of a socket closed for idleness: the page reconnects when the visitor is
/// back rather than at once.
pub const IDLE_CLOSE_CODE: u16 = 4000;

/// The upgrade to the widget's socket, unless the address holds its most sockets, the
/// server holds its most, or the address opens sessions too fast.
async fn socket(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    ws: WebSocketUpgrade,
) -> Response {
    let slot = match state.limits.open_socket(ip) {
        Ok(slot) => slot,
        Err(limited) => return limited.into_response(),
    };
    if let Err(limited) = state.limits.session(ip) {
        return limited.into_response();
    }
    // The longest message a page may send, in bytes (a message of max_text_len characters,
    // 4 bytes each at most, in its JSON frame): frames are refused past it too, so a socket
    // never makes the server buffer more (tungstenite's own frame limit is 16 MiB).
    let most = state.config.server.max_text_len * 4 + 4096;
    ws.max_message_size(most)
        .max_frame_size(most)
        .on_upgrade(move |socket| async move {
            metrics::widget_socket(1.0);
            if let Err(e) = Session::run(socket, state, ip, slot).await {
                tracing::debug!(error = %e, "widget socket ended");
            }
            metrics::widget_socket(-1.0);
        })
}

/// One widget connection.
struct Session {
    socket: WebSocket,
    state: AppState,
    /// The client's address, for the limits.
    ip: IpAddr,
    /// Its place under the socket caps, freed when the session ends.
    _slot: SocketSlot,
    user: String,
    profile: Option<Profile>,
    conversation: Option<ConversationId>,
    /// What the page shows already, so that the courier's lines are not shown twice.
    shown: Shown,
    /// The visitor's token, sent again with a fresh `welcome` after a resync.
    token: String,
}

type SocketResult = Result<(), axum::Error>;

impl Session {
    /// One more message from this visitor: the visitor's allowance first, then the
    /// address's, so one visitor sending too fast does not use up the allowance of everyone
    /// else behind the same address.
    pub(super) fn allowance(&self) -> Result<(), Limited> {
        self.state
            .limits
            .customer_message(&format!("web:{}", self.user))
            .and_then(|()| self.state.limits.address_message(self.ip))
    }

    async fn send(&mut self, frame: &ToPage) -> SocketResult {
        let text = serde_json::to_string(frame).expect("frames serialise");
        self.socket.send(Message::Text(text.into())).await
    }

    async fn run(
        mut socket: WebSocket,
        state: AppState,
        ip: IpAddr,
        slot: SocketSlot,
    ) -> SocketResult {
        // The page speaks first; a socket that says nothing is dropped.
        let hello = tokio::time::timeout(Duration::from_secs(15), socket.recv()).await;
        let Ok(Some(Ok(Message::Text(text)))) = hello else {
            return Ok(());
        };
        let (token, customer_token) = match serde_json::from_str::<FromPage>(&text) {
            Ok(FromPage::Hello {
                token,
                customer_token,
            }) => (token, customer_token),
            _ => {
                let frame = ToPage::Error {
                    id: None,
                    message: "send {\"type\":\"hello\"} first".into(),
                };
                let _ = socket
                    .send(Message::Text(
                        serde_json::to_string(&frame).unwrap_or_default().into(),
                    ))
                    .await;
                return Ok(());
            }
        };
        let visitor = token
            .as_deref()
            .and_then(|t| state.keys.widget.verify_visitor(t).ok())
            .unwrap_or_else(VisitorClaims::new_random);
        let token = state.keys.widget.sign(&visitor);
        let mut session = Session {
            socket,
            state: state.clone(),
            ip,
            _slot: slot,
            user: visitor.sub.clone(),
            profile: None,
            conversation: None,
            shown: Shown::default(),
            token: token.clone(),
        };
        if let Some(ct) = customer_token.as_deref().filter(|t| !t.is_empty()) {
            match profile_from_token(&state, ct) {
                Ok(profile) => {
                    session.user =
                        format!("shop-{}", profile.customer_id.clone().unwrap_or_default());
                    session.profile = Some(profile);
                }
                Err(e) => {
                    session
                        .send(&ToPage::Error {
                            id: None,
                            message: e.to_string(),
                        })
                        .await?;
                }
            }
        }
        let mut watch = state.hub.open();
        watch.serve_customer(&crate::message::Identity::new(ChannelKind::Web, &session.user).key());
        session.conversation = state
            .desk
            .conversation_of(ChannelKind::Web, &session.user)
            .await
            .ok()
            .flatten();
        if let Some(id) = &session.conversation {
            watch.follow(id);
        }
        session.welcome().await?;

        let mut stopping = state.stopping.clone();
        let idle = state.limits.socket_idle();
        let quiet = state.limits.socket_quiet();
        let mut heard = tokio::time::Instant::now();
        let mut spoke = heard;
        loop {
            // Closed when the page sends nothing (pings count), or no message (they do not).
            let deadline = [
                idle.map(|d| (heard + d, "no frame")),
                quiet.map(|d| (spoke + d, "no message")),
            ]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at);
            let silence = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                incoming = session.socket.recv() => {
                    // Any frame from the page (a WebSocket ping too) shows it is there.
                    heard = tokio::time::Instant::now();
                    match incoming {
                        Some(Ok(Message::Text(text))) => {
                            if !is_ping(&text) {
                                spoke = heard;
                            }
                            session.on_frame(&text, &mut watch).await?
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        _ => {}
                    }
                },
                Some(event) = watch.events.recv() => session.on_event(event).await?,
                _ = silence => {
                    metrics::limited("idle_socket");
                    let (at, what) = deadline.expect("a deadline fired");
                    let since = if what == "no frame" { heard } else { spoke };
                    let secs = (at - since).as_secs();
                    let close = axum::extract::ws::CloseFrame {
                        code: IDLE_CLOSE_CODE,
                        reason: format!("idle: {what} for {secs} seconds").into(),
                    };
                    let _ = session.socket.send(Message::Close(Some(close))).await;
                    break;
                }
                _ = super::until_stopped(&mut stopping) => {
                    let _ = session.socket.send(Message::Close(None)).await;
                    break;
                }
            }
        }
        Ok(())
    }

    async fn on_frame(&mut self, text: &str, watch: &mut super::hub::Watch) -> SocketResult {
        let frame = serde_json::from_str::<FromPage>(text);
        if matches!(frame, Ok(FromPage::Ping)) {
            return Ok(());
        }
        let (id, text) = match frame {
            Ok(FromPage::Message { id, text }) => (id, text),
            Ok(FromPage::Survey {
                conversation_id,
                survey,
                score,
                skip,
            }) => {
                let page = survey::PageAnswer {
                    conversation_id,
                    survey,
                    score,
                    skip,
                };
                return self.on_survey_answer(page).await;
            }
            // Anything else costs the address's allowance; past it, no answer at all.
            other => {
                if self.state.limits.address_message(self.ip).is_err() {
                    return Ok(());
                }
                let Err(e) = other else { return Ok(()) };
                let message = format!(
                    "could not read the frame: {e}; send {{\"type\":\"message\",\"text\":\"...\"}}"
                );
                return self.send(&ToPage::Error { id: None, message }).await;
            }
        };
        let checked =
            check_text(&text, self.state.config.server.max_text_len).and_then(|()| match &id {
                Some(FrameId::Text(key)) => {
                    super::api::check_message_id(key, "id").map(|k| Some(k.to_string()))
                }
                _ => Ok(None),
            });
        let message_id = match checked {
            Ok(message_id) => message_id,
            Err(e) => {
                if self.state.limits.address_message(self.ip).is_err() {
                    return Ok(());
                }
                return self
                    .send(&ToPage::Error {
                        id,
                        message: e.to_string(),
                    })
                    .await;
            }
        };
        if let Err(limited) = self.allowance() {
            return self.slow_down(id, limited).await;
        }
        let mut msg = Inbound::new(ChannelKind::Web, self.user.clone(), text);
        if let Some(key) = message_id {
            msg = msg.with_message_id(key);
        }
        msg.profile = self.profile.clone();
        msg.origin = Some(super::limits::address_key(self.ip));
        // While the turn runs (an LLM may be writing its answer) the drafts go out as they
        // come; other events wait until the turn's frame is sent, as before.
        let intake = self.state.intake.clone();
        let receiving = async move { intake.receive(msg).await };
        tokio::pin!(receiving);
        let mut held = Vec::new();
        let received = loop {
            tokio::select! {
                r = &mut receiving => break r,
                Some(event) = watch.events.recv() => match event.kind {
                    DeskEventKind::BotDraft { text, .. } => self.send(&ToPage::Draft { text }).await?,
                    DeskEventKind::BotDraftCleared { .. } => self.send(&ToPage::DraftCleared).await?,
                    _ => held.push(event),
                },
            }
        };
        let sent = self.on_turn(id, received, watch).await;
        for event in held {
            self.on_event(event).await?;
        }
        sent
    }

    /// Sends the frame of a handled message: its turn, or why it failed.
    async fn on_turn(
        &mut self,
        id: Option<FrameId>,
        received: Result<crate::intake::Received, crate::desk::DeskError>,
        watch: &mut super::hub::Watch,
    ) -> SocketResult {
        match received.map_err(AppError::from) {
            Ok(received) => {
                let turn = received.turn;
                watch.follow(&turn.conversation_id);
                self.conversation = Some(turn.conversation_id.clone());
                if let Some(id) = &turn.id {
                    self.shown.turn(id.clone());
                }
                self.send(&ToPage::Turn {
                    id,
                    conversation_id: turn.conversation_id,
                    status: turn.status,
                    replies: turn.replies,
                    queue: turn.queue,
                })
                .await
            }
            Err(e) => {
                self.send(&ToPage::Error {
                    id,
                    message: e.to_string(),
                })
                .await
            }
        }
    }

    async fn slow_down(&mut self, id: Option<FrameId>, limited: Limited) -> SocketResult {
        self.send(&ToPage::SlowDown {
            id,
            retry_after_secs: limited.retry_after_secs(),
            message: limited.widget_note(),
        })
        .await
    }

    async fn on_event(&mut self, event: DeskEvent) -> SocketResult {
        let frame = match event.kind {
            DeskEventKind::Line {
                agent,
                text,
                time,
                turn,
                key,
                survey: asked,
                ..
            } => {
                if !self.shown.first_time(turn, key, time) {
                    return Ok(());
                }
                match (asked, agent) {
                    (Some(ask), _) => survey::question(event.conversation_id, ask, text),
                    (None, Some(agent)) => ToPage::Agent { agent, text },
                    (None, None) => ToPage::Bot { text },
                }
            }
            DeskEventKind::QueuePosition { queue, position } => ToPage::Queue { queue, position },
            DeskEventKind::StatusChanged { status } => ToPage::Status { status },
            DeskEventKind::BotDraft { text, .. } => ToPage::Draft { text },
            DeskEventKind::BotDraftCleared { .. } => ToPage::DraftCleared,
            // The agents' live view: the customer's screens get the courier's lines.
            DeskEventKind::BotReply { .. }
            | DeskEventKind::AgentReply { .. }
            | DeskEventKind::Queued { .. }
            | DeskEventKind::CustomerMessage { .. }
            | DeskEventKind::DeliveryFailed { .. }
            | DeskEventKind::SummaryWritten => return Ok(()),
            // Other nodes' events may have been missed: the page gets the whole state again
            // (a `welcome`, as after a reconnect).
            DeskEventKind::Resync => return self.welcome().await,
        };
        self.send(&frame).await
    }

    /// Sends a `welcome`: the conversation so far, whose lines are then not shown again.
    async fn welcome(&mut self) -> SocketResult {
        let (frame, newest) = frames::welcome(
            &self.state,
            self.conversation.clone(),
            self.user.clone(),
            self.token.clone(),
        )
        .await;
        self.shown.history_until = newest;
        self.send(&frame).await
    }
}
