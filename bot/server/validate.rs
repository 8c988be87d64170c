//! Checks on what customers and integrations send, shared by the widget, the REST channel
//! and the console. Every refusal says what to send instead.

use super::error::AppError;
use super::AppState;
use crate::message::Profile;

/// Longest accepted channel user id.
pub const MAX_USER_ID: usize = 200;

/// Checks a channel user id (REST `user_id`): not blank, not longer than [`MAX_USER_ID`].
pub fn check_user_id(user: &str) -> Result<&str, AppError> {
    let user = user.trim();
    if user.is_empty() {
        return Err(AppError::BadRequest(
            "`user_id` is empty: send the id of the customer in your system".into(),
        ));
    }
    if user.chars().count() > MAX_USER_ID {
        return Err(AppError::BadRequest(format!(
            "`user_id` is longer than {MAX_USER_ID} characters"
        )));
    }
    Ok(user)
}

/// Checks a customer's text against the configured limit; the error says what to change.
pub fn check_text(text: &str, max_chars: usize) -> Result<(), AppError> {
    if text.trim().is_empty() {
        return Err(AppError::BadRequest(
            "`text` is empty: send the customer's message as a non-empty string".into(),
        ));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(AppError::TooLarge(format!(
            "`text` has {chars} characters; the limit is {max_chars} (server.max_text_len): \
             shorten the message or split it"
        )));
    }
    Ok(())
}

/// A trusted profile from a shop-signed customer token.
pub fn profile_from_token(state: &AppState, token: &str) -> Result<Profile, AppError> {
    let max = state.config.server.customer_token_max_secs;
    let claims = state
        .keys
        .customer
        .verify_customer(token, max)
        .map_err(|e| {
            AppError::Unauthorized(format!(
            "customer_token refused: {e}; sign it with server.shop_secret and give it an `exp` \
             at most server.customer_token_max_secs away (see the README)"
        ))
        })?;
    Ok(Profile {
        tier: claims.tier,
        lifetime_value: claims.lifetime_value,
        name: claims.name,
        email: claims.email,
        customer_id: Some(claims.customer_id),
    })
}
