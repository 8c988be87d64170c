//! Local natural-language understanding: one encoder pass per message feeds the intent,
//! sentiment and anger heads; entities come from rules.

pub mod analysis;
pub mod bench;
pub mod bert;
pub mod cmd;
pub mod encoder;
pub mod entities;
pub mod features;
pub mod heads;
pub mod intents;
pub mod kernels;
pub mod model;
pub mod sentiment;

/// What can go wrong understanding a message; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum NluError {
    #[error("model: {0}")]
    Model(String),
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("training failed: {0}")]
    Train(String),
    #[error("{0}")]
    Head(String),
    #[error("{0}")]
    Other(String),
}
