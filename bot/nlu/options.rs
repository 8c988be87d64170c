//! Every setting the NLU reads, passed in by the caller: the crate itself reads no
//! environment variables (the application's config layer maps `FRONTDESK_*` onto these).

use std::path::PathBuf;

use crate::encoder::{IsaChoice, WeightFormat};

/// Where the NLU finds its model, intents and trained heads, and how the encoder runs.
#[derive(Debug, Clone)]
pub struct NluOptions {
    /// A sentence-transformers BERT model directory; `None` uses all-MiniLM-L6-v2 in
    /// `cache_dir/models` (fetched on first use).
    pub model_dir: Option<PathBuf>,
    /// Model download and feature caches (default: the user cache folder + `frontdesk`).
    pub cache_dir: PathBuf,
    /// Intent definitions (default `intents`).
    pub intents_dir: PathBuf,
    /// Trained heads (default `models`): `sentiment.safetensors`, `anger.safetensors`,
    /// `frustration.safetensors` and the intent head `intents-<hash12>.safetensors`, retrained
    /// here when intents/ changed.
    pub models_dir: PathBuf,
    /// Validation data for the out-of-scope threshold when the intent head is retrained
    /// (`out_of_scope_val.txt`, `in_scope_val.csv`); `None`, missing files or files that do not
    /// match the intents give the default threshold.
    pub validation_dir: Option<PathBuf>,
    pub encoder: EncoderOptions,
}

impl Default for NluOptions {
    fn default() -> Self {
        Self {
            model_dir: None,
            cache_dir: default_cache_dir(),
            intents_dir: PathBuf::from("intents"),
            models_dir: PathBuf::from("models"),
            validation_dir: None,
            encoder: EncoderOptions::default(),
        }
    }
}

/// `~/.cache/frontdesk` (the platform's cache folder), or the temp folder without one.
fn default_cache_dir() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("frontdesk")
}

/// How the encoder runs.
///
/// `isa`, `threads` and `spin_us` set up process-wide kernels and helper threads: the first
/// encoder loaded in a process fixes them, later loads with other values reuse the first
/// ones. `weights` is per encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderOptions {
    /// How the layer weights are kept in memory (default f16: half the memory).
    pub weights: WeightFormat,
    /// Matrix kernels: the widest the CPU offers, or a narrower one (never a wider one).
    pub isa: IsaChoice,
    /// Threads sharing one encoder pass, the caller included; `None`: the CPU count, at most 4.
    pub threads: Option<usize>,
    /// How long an idle helper thread spins before it sleeps, in microseconds.
    pub spin_us: u64,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            weights: WeightFormat::F16,
            isa: IsaChoice::Auto,
            threads: None,
            spin_us: 50,
        }
    }
}
