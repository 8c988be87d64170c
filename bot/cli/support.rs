//! What several commands share: one progress-bar style and the process's memory figures.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar for long work (encoding, training, evaluation, replay, benches), on
/// stderr so stdout stays clean for JSON.
pub fn progress_bar(name: &str, len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>20} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}

fn status_kb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
}

/// Resident memory of this process now, in MB (NaN where /proc is missing).
pub fn rss_mb() -> f64 {
    status_kb("VmRSS:").map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Peak resident memory of this process so far, in MB (NaN where /proc is missing).
pub fn peak_rss_mb() -> f64 {
    status_kb("VmHWM:").map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Progress of the NLU's long work ([`frontdesk::nlu::training::Progress`]) as one progress
/// bar at a time, cleared when each task finishes.
#[derive(Default)]
pub struct Bars(std::sync::Mutex<Option<ProgressBar>>);

impl Bars {
    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl frontdesk::nlu::training::Progress for Bars {
    fn start(&self, what: &str, len: u64) {
        self.with(|bar| {
            if let Some(old) = bar.replace(progress_bar(what, len)) {
                old.finish_and_clear();
            }
        });
    }

    fn inc(&self, n: u64) {
        self.with(|bar| {
            if let Some(b) = bar {
                b.inc(n);
            }
        });
    }

    fn finish(&self) {
        self.with(|bar| {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        });
    }
}

/// Runs a benchmark to its report on a fresh multi-threaded runtime, then prints it (one JSON
/// object with `json`, else the command's table).
pub fn run_bench<R: serde::Serialize>(
    json: bool,
    bench: impl std::future::Future<Output = anyhow::Result<R>>,
    print_table: impl FnOnce(&R),
) -> anyhow::Result<()> {
    use anyhow::Context;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(bench)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// A fresh data folder for one benchmark run, deleted when dropped (also on error).
pub struct BenchDir(pub std::path::PathBuf);

impl BenchDir {
    pub fn new(what: &str) -> BenchDir {
        BenchDir(std::env::temp_dir().join(format!(
            "frontdesk-bench-{what}-{}",
            uuid::Uuid::new_v4().simple()
        )))
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
