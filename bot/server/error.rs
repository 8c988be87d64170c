//! One error type for every handler: each becomes a status and a JSON body
//! `{"error": {"code", "message"}}` whose message says what to fix.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// Well-formed but refused by the checks (a configuration change that does not pass).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    TooMany(String),
    #[error("{0}")]
    Internal(String),
}

/// A window (`since`) that does not read: 400 with what to write instead.
impl From<crate::cockpit::BadSince> for AppError {
    fn from(e: crate::cockpit::BadSince) -> Self {
        AppError::BadRequest(e.to_string())
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::TooLarge(_) => "too_large",
            AppError::Unprocessable(_) => "refused",
            AppError::Unsupported(_) => "unsupported_media_type",
            AppError::Busy(_) => "busy",
            AppError::TooMany(_) => "too_many_requests",
            AppError::Internal(_) => "internal",
        }
    }

    pub fn api_key_required() -> Self {
        AppError::Unauthorized(
            "an API key is needed: create one with `frontdesk api-key create NAME` (or ask an \
             admin) and send it as `Authorization: Bearer KEY`"
                .into(),
        )
    }

    pub fn login_required() -> Self {
        AppError::Unauthorized(
            "log in first: POST /console/api/login with {\"name\", \"password\"}, then send the \
             frontdesk_session cookie or `Authorization: Bearer TOKEN`"
                .into(),
        )
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}});
        (status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => AppError::Unsupported(
                "send the body as JSON with the header `Content-Type: application/json`".into(),
            ),
            JsonRejection::JsonSyntaxError(e) => {
                AppError::BadRequest(format!("the body is not valid JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => AppError::BadRequest(format!(
                "the JSON does not have the expected fields: {}",
                e.body_text()
            )),
            JsonRejection::BytesRejection(e) => {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::TooLarge("the request body is too large; send a shorter text".into())
                } else {
                    AppError::BadRequest(format!("could not read the body: {}", e.body_text()))
                }
            }
            other => AppError::BadRequest(other.body_text()),
        }
    }
}

/// `Json` whose rejections are [`AppError`]s, so a malformed body gets the same JSON error
/// shape as everything else.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

impl From<crate::desk::DeskError> for AppError {
    fn from(e: crate::desk::DeskError) -> Self {
        use crate::desk::DeskError as D;
        match e {
            D::NotFound => AppError::NotFound("no such conversation".into()),
            D::Forbidden(m) => AppError::Forbidden(m),
            D::Conflict(m) => AppError::Conflict(m),
            D::Invalid(m) => AppError::BadRequest(m),
            D::Busy => {
                AppError::Busy("too many messages are waiting; try again in a moment".into())
            }
            D::Unavailable(m) => AppError::Busy(format!("temporarily unavailable: {m}")),
            other => AppError::Internal(other.to_string()),
        }
    }
}
