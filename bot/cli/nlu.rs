//! `frontdesk nlu`: one message per line on stdin, one JSON analysis per line on stdout; and
//! [`Places`], the model / intents / heads flags every NLU command shares.

use std::path::PathBuf;

use frontdesk::config::Config;
use frontdesk::nlu::{Nlu, NluOptions};

/// Where the model, intents and heads live (shared by the NLU commands): the config's
/// `[nlu]` / `[engine]` settings, then these flags on top.
#[derive(clap::Args, Debug, Clone)]
pub struct Places {
    /// Configuration file (default: ./frontdesk.toml when it exists, else built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A sentence-transformers BERT model directory (default: nlu.model_dir, else
    /// all-MiniLM-L6-v2 in the cache, fetched on first use).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Folder of intent definitions (default: engine.intents_dir, else the shipped intents).
    #[arg(long)]
    pub intents_dir: Option<PathBuf>,
    /// Folder of trained heads (default: nlu.models_dir, else the shipped heads).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
}

impl Places {
    /// The NLU options of the config file, with these flags applied on top.
    pub fn options(&self) -> anyhow::Result<NluOptions> {
        let config = Config::load(self.config.as_deref())?;
        let mut opts = frontdesk::app::nlu_options(&config)?;
        if let Some(dir) = &self.model_dir {
            opts.model_dir = Some(dir.clone());
        }
        if let Some(dir) = &self.intents_dir {
            opts.intents_dir = dir.clone();
        }
        if let Some(dir) = &self.models_dir {
            opts.models_dir = dir.clone();
        }
        Ok(opts)
    }
}

#[derive(clap::Args)]
#[command(
    long_about = "Reads one message per line on stdin and writes one JSON object per line on \
                  stdout, in order:\n\n  {\"text\", \"intent\", \"intent_confidence\", \"sentiment\", \
                  \"sentiment_scores\": {\"negative\", \"neutral\", \"positive\"}, \"anger\", \
                  \"frustration\": {\"calm\", \"frustrated\", \"angry\"}, \"entities\": \
                  [...]}\n\n`intent` is `out_of_scope` when no intent fits; `anger` is a \
                  probability (tweet-trained); `frustration` holds the support-domain head's \
                  probabilities (they sum to 1). Lines are read and answered in batches, so any number of \
                  lines runs in bounded memory. The intent head is retrained first when \
                  intents/ changed."
)]
pub struct NluArgs {
    #[command(flatten)]
    pub places: Places,
    /// Messages per encoder pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
}

pub fn run(a: NluArgs) -> anyhow::Result<()> {
    let nlu = Nlu::load(&a.places.options()?)?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    nlu.analyze_lines(stdin.lock(), stdout.lock(), a.batch.max(1))?;
    Ok(())
}
