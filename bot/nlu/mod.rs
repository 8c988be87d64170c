//! Local natural-language understanding: one encoder pass per message feeds the intent,
//! sentiment and anger heads; entities come from rules.

pub mod analysis;
pub mod bench;
pub mod cmd;
pub mod encoder;
pub mod model;

/// What can go wrong understanding a message; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum NluError {
    #[error("model: {0}")]
    Model(String),
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("{0}")]
    Other(String),
}
