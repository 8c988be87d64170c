//! `frontdesk bench nlu`: latency, throughput and memory of the NLU pipeline, with stock
//! candle-transformers BERT measured on the same texts in the same run as a yardstick
//! (machines differ from one session to the next; the ratio is what carries over).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use frontdesk::config::Config;
use frontdesk::nlu::bench::{self, StockBert, TokenCounter};
use frontdesk::nlu::encoder::{Encoder, ModelFiles};
use frontdesk::nlu::Nlu;

use super::support::{peak_rss_mb, progress_bar};

/// Short messages are what a support chat mostly sees: 10-20 word pieces.
const SHORT: std::ops::RangeInclusive<usize> = 10..=20;
const BATCH_SIZES: [usize; 5] = [1, 8, 16, 32, 64];

#[derive(clap::Args)]
pub struct BenchNluArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Messages to time, one per line (default: the `examples` of the YAML files in
    /// `intents/`); only those of 10-20 word pieces are used.
    #[arg(long)]
    pub texts: Option<PathBuf>,
    /// Folder of intent definitions that supplies the default messages (default:
    /// engine.intents_dir, else the shipped intents).
    #[arg(long)]
    pub intents: Option<PathBuf>,
    /// Batch-1 calls timed after warm-up (texts are cycled when there are fewer).
    #[arg(long, default_value_t = 2000)]
    pub messages: usize,
    /// Skip the stock candle BERT reference measurement.
    #[arg(long)]
    pub no_reference: bool,
    /// Time the encoder alone (`Encoder::encode_features`) instead of the whole NLU
    /// pipeline (encoder, intent, sentiment and anger heads, entities).
    #[arg(long)]
    pub encoder_only: bool,
    /// Trained heads for the NLU pipeline (default: nlu.models_dir, else the shipped heads).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Model directory (default: nlu.model_dir, else all-MiniLM-L6-v2 in the cache, fetched
    /// when missing).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Configuration file (default: ./frontdesk.toml when it exists, else built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// ONNX Runtime's figures from the same run (the JSON `tests/bench/onnx_reference.py`
    /// prints): adds our ratios to it and the targets to the report
    #[arg(long, value_name = "JSON")]
    pub versus: Option<PathBuf>,
}

/// Figures of one implementation on the bench texts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub throughput_per_s: f64,
    pub best_batch: usize,
    /// Messages per second at each batch size tried.
    pub throughput_by_batch: Vec<(usize, f64)>,
    /// What made the batch-1 tail: the encoder's helper threads during the timed calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<Tail>,
}

/// The helper threads during the timed batch-1 calls: stalls (a wait for a helper much
/// longer than its chunk), calls in which a product ran alone because the team was backing
/// off after one, and the p99 of the calls that never did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tail {
    pub stalls: u64,
    pub calls_alone: usize,
    pub p99_shared_ms: f64,
}

#[derive(serde::Serialize)]
struct Report {
    p50_ms: f64,
    p99_ms: f64,
    throughput_per_s: f64,
    rss_mb: f64,
    best_batch: usize,
    throughput_by_batch: Vec<(usize, f64)>,
    pipeline: String,
    kernels: String,
    messages_timed: usize,
    distinct_texts: usize,
    mean_tokens: f64,
    reference: Option<Figures>,
    tail: Option<Tail>,
    /// Reference p50 divided by ours: how many times faster at batch 1.
    p50_speedup: Option<f64>,
    /// Against ONNX Runtime (`--versus`).
    versus: Option<Versus>,
    /// Weight format in use (`int8` only if its load-time check held).
    weights: String,
    throughput_speedup: Option<f64>,
}

pub fn run(a: BenchNluArgs) -> anyhow::Result<()> {
    let config = Config::load(a.config.as_deref())?;
    let mut opts = frontdesk::app::nlu_options(&config)?;
    if let Some(dir) = &a.model_dir {
        opts.model_dir = Some(dir.clone());
    }
    if let Some(dir) = &a.intents {
        opts.intents_dir = dir.clone();
    }
    if let Some(dir) = &a.models_dir {
        opts.models_dir = dir.clone();
    }
    let files = ModelFiles::resolve(opts.model_dir.as_deref(), &opts.cache_dir)?;
    let tokenizer = TokenCounter::load(&files)?;
    let all = match &a.texts {
        Some(p) => texts_from_file(p)?,
        None => bench::intent_examples(&opts.intents_dir)?,
    };
    let mut texts = Vec::new();
    let mut tokens = 0usize;
    for t in all {
        let n = tokenizer.count(&t)?;
        if SHORT.contains(&n) {
            tokens += n;
            texts.push(t);
        }
    }
    drop(tokenizer);
    if texts.is_empty() {
        bail!(
            "no message of 10-20 word pieces to time: give --texts FILE with one short message \
             per line"
        );
    }
    let mean_tokens = tokens as f64 / texts.len() as f64;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let messages = a.messages.max(1000);
    tracing::info!(
        texts = refs.len(),
        mean_tokens,
        "timing {messages} batch-1 calls"
    );

    let nlu = if a.encoder_only {
        None
    } else {
        match Nlu::load(&opts) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!("timing the encoder alone: the NLU pipeline did not load: {e}");
                None
            }
        }
    };
    let (pipeline, ours, weights) = match nlu {
        Some(nlu) => {
            let weights = nlu.encoder_weights();
            let f = measure("frontdesk nlu", &refs, messages, |batch| {
                nlu.analyze(batch).map(|_| ()).map_err(Into::into)
            })?;
            ("nlu (Nlu::analyze)", f, weights)
        }
        None => {
            let encoder = Encoder::load(&files, &opts.encoder)?;
            let weights = encoder.weights();
            let f = measure("frontdesk encoder", &refs, messages, |batch| {
                encoder
                    .encode_features(batch)
                    .map(|_| ())
                    .map_err(Into::into)
            })?;
            ("encoder (encode_features)", f, weights)
        }
    };
    // Peak so far: one model loaded. The reference below loads a second one.
    let rss_mb = peak_rss_mb();

    let reference = if a.no_reference {
        None
    } else {
        let stock = StockBert::load(&files)?;
        // Fewer calls: the reference is slower and only serves as a yardstick.
        Some(measure("stock candle BERT", &refs, 1000, |batch| {
            stock.encode(batch).map_err(Into::into)
        })?)
    };
    let report = Report {
        p50_ms: ours.p50_ms,
        p99_ms: ours.p99_ms,
        tail: ours.tail.clone(),
        throughput_per_s: ours.throughput_per_s,
        rss_mb,
        best_batch: ours.best_batch,
        throughput_by_batch: ours.throughput_by_batch.clone(),
        pipeline: pipeline.to_string(),
        kernels: bench::kernels(),
        weights: weights_in_use(weights),
        versus: match &a.versus {
            Some(path) => Some(Versus::read(path, &ours)?),
            None => None,
        },
        messages_timed: messages,
        distinct_texts: refs.len(),
        mean_tokens,
        p50_speedup: reference.as_ref().map(|r| r.p50_ms / ours.p50_ms),
        throughput_speedup: reference
            .as_ref()
            .map(|r| ours.throughput_per_s / r.throughput_per_s),
        reference,
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Report) {
    println!(
        "{} texts of 10-20 word pieces (mean {:.1}), {} batch-1 calls, kernels {}, weights {}",
        r.distinct_texts, r.mean_tokens, r.messages_timed, r.kernels, r.weights
    );
    println!(
        "{:<28} {:>9} {:>9} {:>14}",
        "", "p50 ms", "p99 ms", "msg/s (batch)"
    );
    let row = |name: &str, f: &Figures| {
        println!(
            "{:<28} {:>9.3} {:>9.3} {:>9.1} ({})",
            name, f.p50_ms, f.p99_ms, f.throughput_per_s, f.best_batch
        );
    };
    row(
        &r.pipeline,
        &Figures {
            p50_ms: r.p50_ms,
            p99_ms: r.p99_ms,
            throughput_per_s: r.throughput_per_s,
            best_batch: r.best_batch,
            throughput_by_batch: Vec::new(),
            tail: None,
        },
    );
    if let Some(reference) = &r.reference {
        row("stock candle BERT", reference);
        println!(
            "speed-up over stock: p50 {:.2}x, throughput {:.2}x",
            r.p50_speedup.unwrap_or(0.0),
            r.throughput_speedup.unwrap_or(0.0)
        );
    }
    let by: Vec<String> = r
        .throughput_by_batch
        .iter()
        .map(|(b, t)| format!("{b}: {t:.0}/s"))
        .collect();
    println!("throughput by batch size: {}", by.join(", "));
    if let Some(t) = &r.tail {
        println!(
            "batch-1 tail: {} helper stalls, {} calls ran a product alone after one; p99 of \
             the others {:.3} ms",
            t.stalls, t.calls_alone, t.p99_shared_ms
        );
    }
    println!(
        "peak RSS {:.1} MB (before the reference is loaded)",
        r.rss_mb
    );
    if let Some(v) = &r.versus {
        v.print(r.kernels.as_str());
    }
}

/// Batch-1 latency over `calls` calls after warm-up, then throughput at each batch size.
fn measure(
    name: &str,
    texts: &[&str],
    calls: usize,
    run: impl Fn(&[&str]) -> anyhow::Result<()>,
) -> anyhow::Result<Figures> {
    let warmup = 100;
    // Throughput: at least one pass over the texts and about 1000 messages per batch size.
    let per_batch = texts.len().max(1000);
    let total = warmup + calls + BATCH_SIZES.len() * per_batch;
    let bar = progress_bar(name, total as u64);
    for t in texts.iter().cycle().take(warmup) {
        run(&[t])?;
        bar.inc(1);
    }
    let mut lat = Vec::with_capacity(calls);
    let mut shared = Vec::with_capacity(calls);
    let team_before = bench::team_counters();
    for t in texts.iter().cycle().take(calls) {
        let alone_before = bench::team_counters().alone_backing_off;
        let t0 = Instant::now();
        run(&[t])?;
        let took = t0.elapsed();
        lat.push(took);
        if bench::team_counters().alone_backing_off == alone_before {
            shared.push(took);
        }
        bar.inc(1);
    }
    let team_after = bench::team_counters();
    lat.sort();
    shared.sort();
    let tail = (team_after.shared > team_before.shared).then(|| Tail {
        stalls: team_after.stalls - team_before.stalls,
        calls_alone: calls - shared.len(),
        p99_shared_ms: if shared.is_empty() {
            f64::NAN
        } else {
            ms(percentile(&shared, 0.99))
        },
    });
    let mut by_batch = Vec::new();
    for b in BATCH_SIZES {
        let msgs: Vec<&str> = texts.iter().cycle().take(per_batch).copied().collect();
        let t0 = Instant::now();
        for chunk in msgs.chunks(b) {
            run(chunk)?;
            bar.inc(chunk.len() as u64);
        }
        by_batch.push((b, msgs.len() as f64 / t0.elapsed().as_secs_f64()));
    }
    bar.finish_and_clear();
    let (best_batch, best) = by_batch
        .iter()
        .copied()
        .fold((0, 0.0), |a, b| if b.1 > a.1 { b } else { a });
    Ok(Figures {
        p50_ms: ms(percentile(&lat, 0.50)),
        p99_ms: ms(percentile(&lat, 0.99)),
        throughput_per_s: best,
        best_batch,
        throughput_by_batch: by_batch,
        tail,
    })
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn texts_from_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --texts {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// The weights in use (int8 falls back to f32 when its load-time check fails), with the
/// dot product int8 runs on.
fn weights_in_use(used: frontdesk::nlu::WeightFormat) -> String {
    match used {
        frontdesk::nlu::WeightFormat::Int8 => format!("int8 ({})", bench::int8_dot()),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Our figures as ratios of ONNX Runtime int8's, measured in the same run.
#[derive(Debug, serde::Serialize)]
struct Versus {
    onnx_p50_ms: f64,
    onnx_p99_ms: f64,
    onnx_best_per_s: f64,
    /// Ours over theirs (lower is better).
    p50_ratio: f64,
    /// Ours over theirs (higher is better).
    throughput_ratio: f64,
    /// Our p99 over our p50.
    tail_ratio: f64,
    /// Our best throughput at batch 16-32 over batch 1.
    batching_gain: f64,
}

impl Versus {
    fn read(path: &Path, ours: &Figures) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading ONNX Runtime's figures from {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(text.trim()).with_context(|| {
            format!(
                "{}: not the JSON tests/bench/onnx_reference.py prints",
                path.display()
            )
        })?;
        let num = |x: &serde_json::Value, what: &str| {
            x.as_f64()
                .with_context(|| format!("{}: no number `{what}`", path.display()))
        };
        let (p50, p99) = (num(&v["p50_ms"], "p50_ms")?, num(&v["p99_ms"], "p99_ms")?);
        let best = num(&v["best"][1], "best[1]")?;
        let at = |b: usize| {
            ours.throughput_by_batch
                .iter()
                .find(|(n, _)| *n == b)
                .map_or(0.0, |(_, t)| *t)
        };
        let batched = at(16).max(at(32));
        Ok(Self {
            onnx_p50_ms: p50,
            onnx_p99_ms: p99,
            onnx_best_per_s: best,
            p50_ratio: ours.p50_ms / p50,
            throughput_ratio: ours.throughput_per_s / best,
            tail_ratio: ours.p99_ms / ours.p50_ms,
            batching_gain: batched / at(1).max(f64::MIN_POSITIVE),
        })
    }

    fn print(&self, kernels: &str) {
        let (p50_target, thr_target) = match kernels {
            "Avx512" => (0.5, 2.0),
            _ => (0.8, 1.3),
        };
        let mark = |ok: bool| if ok { "met" } else { "not met" };
        println!(
            "against ONNX Runtime int8 (p50 {:.3} ms, p99 {:.3} ms, best {:.0}/s):",
            self.onnx_p50_ms, self.onnx_p99_ms, self.onnx_best_per_s
        );
        println!(
            "  p50 {:.2}x theirs (target <= {p50_target}x: {}), throughput {:.2}x (target >= \
             {thr_target}x: {})",
            self.p50_ratio,
            mark(self.p50_ratio <= p50_target),
            self.throughput_ratio,
            mark(self.throughput_ratio >= thr_target)
        );
        println!(
            "  our p99 {:.2}x our p50 (target <= 1.5x: {}), batch 16-32 {:.2}x batch 1 (target \
             >= 2.5x: {})",
            self.tail_ratio,
            mark(self.tail_ratio <= 1.5),
            self.batching_gain,
            mark(self.batching_gain >= 2.5)
        );
    }
}
