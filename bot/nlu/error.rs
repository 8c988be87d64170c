//! [`NluError`]: what can go wrong, grouped by what it concerns. Every message says what to
//! do about it; an error that caused it (I/O, tokenizer, candle, safetensors...) is kept as
//! the [`source`](std::error::Error::source), not flattened into the text.

use std::sync::Arc;

use crate::intents::IntentError;

/// The underlying error of an [`NluError`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong understanding a message; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum NluError {
    /// The encoder's files: missing, unreadable, corrupt or not a BERT model.
    #[error("model: {message}")]
    Model {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// Turning a batch of texts into features.
    #[error("encoding failed: {message}")]
    Encode {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// Fitting a head.
    #[error("training failed: {message}")]
    Train {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// A stored head: missing, unreadable, or not matching the model or its task.
    #[error("{message}")]
    Head {
        message: String,
        #[source]
        source: Option<Source>,
    },
    /// A labelled data or validation file, or the stream `frontdesk nlu` reads and writes.
    #[error("{message}")]
    Data {
        message: String,
        #[source]
        source: Option<Source>,
    },
    #[error(transparent)]
    Intents(#[from] IntentError),
    /// The [`NluService`](crate::NluService) worker is gone.
    #[error("the NLU worker stopped; restart frontdesk")]
    Stopped,
    /// One failed encoder pass, reported to every message of its batch.
    #[error(transparent)]
    Batch(Arc<NluError>),
}

macro_rules! constructors {
    ($($plain:ident, $with:ident => $variant:ident;)*) => {
        impl NluError {
            $(
                pub(crate) fn $plain(message: impl Into<String>) -> Self {
                    NluError::$variant { message: message.into(), source: None }
                }

                pub(crate) fn $with(message: impl Into<String>, source: impl Into<Source>) -> Self {
                    NluError::$variant { message: message.into(), source: Some(source.into()) }
                }
            )*
        }
    };
}

constructors! {
    model, model_from => Model;
    encode, encode_from => Encode;
    train, train_from => Train;
    head, head_from => Head;
    data, data_from => Data;
}

/// Tensor work only happens while fitting heads (and in the bench's stock reference).
impl From<candle_core::Error> for NluError {
    fn from(e: candle_core::Error) -> Self {
        NluError::train_from("tensor computation", e)
    }
}

/// The error and its causes on one line, `a: b: c`, for logs.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn the_cause_is_kept_as_source() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = NluError::data_from("cannot read x.tsv", io);
        assert_eq!(e.to_string(), "cannot read x.tsv");
        assert_eq!(e.source().unwrap().to_string(), "gone");
        assert_eq!(chain(&e), "cannot read x.tsv: gone");
    }
}
