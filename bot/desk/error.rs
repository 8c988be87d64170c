//! What can go wrong at the desk: the caller's request (`NotFound`, `Forbidden`, `Conflict`,
//! `Invalid`), load or a passing failure (`Busy`, `Unavailable`: try again), or the disk
//! (`Storage`). Errors from below are kept as the `source()`.

use crate::nlu::NluError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("storage failed: {0}")]
    Storage(#[from] StoreError),
    #[error("too many messages waiting; try again shortly")]
    Busy,
    /// The message could not be handled now; trying again later may work (HTTP 503).
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[from] Unavailable),
}

/// Why a message could not be handled now.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("the language model failed: {0}")]
    Nlu(#[source] NluError),
    #[error("the desk has stopped")]
    Stopped,
    #[error("the desk is shutting down")]
    ShuttingDown,
    #[error("the message was dropped while handled")]
    Dropped,
    /// A lock stayed taken longer than the wait limit: the worker gives up instead of
    /// hanging, and the caller may try again.
    #[error("{0} stayed locked for more than 10 s; try again shortly")]
    LockTimeout(&'static str),
    /// The shop did not answer a check (see `commerce`); try again shortly.
    #[error("the shop could not be asked: {0}; try again shortly")]
    Shop(String),
}
