//! What the help centre embeds with: the encoder (`Nlu`, `NluService`) or a fake in tests.
//! Split from `mod.rs`.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::nlu::{Nlu, NluError, NluService};

/// Sentence embeddings, L2-normalised, in input order (the encoder, or a fake in tests).
pub trait Embedder: Send + Sync {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NluError>;
    /// Names the model, so cached embeddings of another one are never reused.
    fn model(&self) -> String;
}

impl Embedder for Nlu {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NluError> {
        Nlu::embed(self, texts)
    }
    fn model(&self) -> String {
        // the width and a probe vector identify the encoder well enough
        let probe = Nlu::embed(self, &["help centre"]).unwrap_or_default();
        let head: Vec<String> = probe
            .first()
            .map(|v| v.iter().take(8).map(|x| format!("{x:.4}")).collect())
            .unwrap_or_default();
        format!("{}:{}", probe.first().map_or(0, Vec::len), head.join(","))
    }
}

/// The encoder behind the NLU worker, called directly (for the passages, off the async
/// threads).
impl Embedder for NluService {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, NluError> {
        Nlu::embed(self.nlu(), texts)
    }
    fn model(&self) -> String {
        Embedder::model(self.nlu())
    }
}

/// A question's embedding, computed off the caller's task (the NLU worker in the product).
pub trait QueryEmbedder: Send + Sync + 'static {
    fn embed_query(&self, text: String) -> BoxFuture<'static, Result<Vec<f32>, NluError>>;
}

impl QueryEmbedder for NluService {
    fn embed_query(&self, text: String) -> BoxFuture<'static, Result<Vec<f32>, NluError>> {
        let service = self.clone();
        Box::pin(async move {
            let mut v = service.embed(&[text.as_str()]).await?;
            v.pop().ok_or(NluError::Stopped)
        })
    }
}

impl<E: Embedder + 'static> QueryEmbedder for Arc<E> {
    fn embed_query(&self, text: String) -> BoxFuture<'static, Result<Vec<f32>, NluError>> {
        let e = Arc::clone(self);
        Box::pin(async move {
            let mut v = e.embed(&[text.as_str()])?;
            v.pop().ok_or(NluError::Stopped)
        })
    }
}
