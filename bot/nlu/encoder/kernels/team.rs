//! A small team of helper threads that share one product with the calling thread.
//!
//! A batch-1 pass is two dozen products of a few hundred microseconds each, too short for a
//! general thread pool's hand-off. Here the caller posts a job and starts on it at once; the
//! helpers, spinning briefly between jobs, claim chunks from a shared counter. A helper that
//! is asleep or descheduled (the machine may be busy) costs nothing: the caller simply takes
//! more chunks itself, and only waits for chunks a helper has already claimed. When such a
//! wait is long (a helper lost its core mid-chunk to another program), callers work alone
//! for a while, since a single thread beats two on a saturated machine.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How the process-wide team is made; fixed by the first [`configure`] or the first use.
#[derive(Clone, Copy)]
struct Settings {
    /// Threads in all, the caller included; `None`: the CPU count, at most 4.
    threads: Option<usize>,
    /// How long an idle helper spins before it sleeps (default 50 us): long enough to
    /// bridge the gaps between the products of one pass, short enough not to take a busy
    /// machine's CPU from the caller between messages.
    spin: Duration,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

fn settings() -> Settings {
    *SETTINGS.get_or_init(|| Settings {
        threads: None,
        spin: Duration::from_micros(50),
    })
}

/// Choose the team's size and spin before it starts. The first call wins (the team is one
/// per process and its threads, once started, stay); so does the default if a product ran
/// before any call.
pub(crate) fn configure(threads: Option<usize>, spin: Duration) {
    let _ = SETTINGS.set(Settings { threads, spin });
}

/// What the team did since the process started, for `bench nlu`: products shared with the
/// helpers, products run alone because the team was backing off after a stall or busy with
/// another caller's product, and stalls (waits for a helper much longer than a chunk).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TeamCounters {
    pub shared: u64,
    pub alone_backing_off: u64,
    pub alone_busy: u64,
    pub stalls: u64,
}

static SHARED: AtomicU64 = AtomicU64::new(0);
static ALONE_BACKING_OFF: AtomicU64 = AtomicU64::new(0);
static ALONE_BUSY: AtomicU64 = AtomicU64::new(0);
static STALLS: AtomicU64 = AtomicU64::new(0);

/// The counters so far.
pub fn counters() -> TeamCounters {
    TeamCounters {
        shared: SHARED.load(Ordering::Relaxed),
        alone_backing_off: ALONE_BACKING_OFF.load(Ordering::Relaxed),
        alone_busy: ALONE_BUSY.load(Ordering::Relaxed),
        stalls: STALLS.load(Ordering::Relaxed),
    }
}

/// A wait for helpers longer than this (plus three chunks' time) counts as a stall.
const STALL_GRACE: Duration = Duration::from_micros(100);
/// After a stall soon after another ([`STALLS_APART`]), callers work alone this long before
/// they try the helpers again; each further stall soon after doubles it, up to
/// [`MAX_BACK_OFF`]. A lone stall (a helper preempted once in a while: a 2-core machine
/// running anything else, a hypervisor's hiccup) costs only its own wait, not the next
/// fifty messages' worth of lone work; a machine that stays saturated, where stalls come
/// one after another, soon backs off long.
const BACK_OFF: Duration = Duration::from_millis(1);
const MAX_BACK_OFF: Duration = Duration::from_millis(50);
/// A stall within this of the previous one counts as "soon after".
const STALLS_APART: Duration = Duration::from_millis(20);

/// Run `work(i)` for every `i` in `0..chunks`, on the caller and any free helper threads.
/// Returns when all chunks are done. Chunks must write disjoint data.
pub(crate) fn for_each_chunk(chunks: usize, work: &(dyn Fn(usize) + Sync)) {
    let team = team();
    if chunks <= 1 || team.helpers.is_empty() {
        (0..chunks).for_each(work);
        return;
    }
    // One job at a time: a second concurrent caller runs on its own thread; so does every
    // caller while the team backs off after a stall.
    let backing_off =
        (team.clock.elapsed().as_micros() as u64) < team.alone_until_us.load(Ordering::Relaxed);
    let busy = team.busy.try_lock();
    if backing_off || busy.is_err() {
        let counter = if backing_off {
            &ALONE_BACKING_OFF
        } else {
            &ALONE_BUSY
        };
        counter.fetch_add(1, Ordering::Relaxed);
        (0..chunks).for_each(work);
        return;
    }
    SHARED.fetch_add(1, Ordering::Relaxed);
    // SAFETY: helpers call `work` only for a chunk they claimed below `chunks`, and this
    // function does not return before every claimed chunk is finished, so the borrow
    // outlives every use. The lifetime is erased only to pass it through the shared slot.
    let work: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(work) };
    let job = Arc::new(Job {
        work,
        chunks,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
    });
    *team.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(job.clone());
    team.epoch.fetch_add(1, Ordering::SeqCst);
    for h in &team.helpers {
        if h.sleeping.load(Ordering::SeqCst) {
            h.thread.unpark();
        }
    }
    let started = Instant::now();
    let mine = job.run();
    let worked = started.elapsed();
    // Helpers may still hold chunks that borrow the caller's data: wait for them even when
    // a chunk panicked, and only then report it.
    while job.done.load(Ordering::Acquire) < chunks {
        std::hint::spin_loop();
    }
    let waited = started.elapsed() - worked;
    *team.slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
    // Waiting much longer than a chunk takes means a helper lost its core mid-chunk (other
    // programs are using the CPU): work alone for a while rather than stall on it again.
    let per_chunk = worked / mine.max(1) as u32;
    if waited > STALL_GRACE + per_chunk * 3 {
        STALLS.fetch_add(1, Ordering::Relaxed);
        let now = team.clock.elapsed();
        let now_us = now.as_micros() as u64;
        let last_us = team.last_stall_us.swap(now_us, Ordering::Relaxed);
        let soon = now_us
            .checked_sub(last_us)
            .is_some_and(|apart| apart < STALLS_APART.as_micros() as u64);
        let back_off = match soon {
            true => (team.back_off_us.load(Ordering::Relaxed) * 2)
                .clamp(BACK_OFF.as_micros() as u64, MAX_BACK_OFF.as_micros() as u64),
            false => 0,
        };
        team.back_off_us.store(back_off, Ordering::Relaxed);
        team.alone_until_us
            .store(now_us + back_off, Ordering::Relaxed);
    }
    if job.panicked.load(Ordering::Acquire) {
        panic!("a chunk of an encoder kernel panicked");
    }
}

/// Threads that share work: the caller plus the helpers.
pub(crate) fn threads() -> usize {
    team().helpers.len() + 1
}

struct Job {
    work: &'static (dyn Fn(usize) + Sync),
    chunks: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    panicked: AtomicBool,
}

impl Job {
    /// Claim and run chunks until none is left; returns how many this thread ran.
    fn run(&self) -> usize {
        let mut ran = 0;
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.chunks {
                return ran;
            }
            ran += 1;
            let work = self.work;
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(i))).is_err() {
                self.panicked.store(true, Ordering::Release);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

struct Helper {
    thread: Thread,
    sleeping: Arc<AtomicBool>,
}

struct Team {
    helpers: Vec<Helper>,
    slot: Arc<Mutex<Option<Arc<Job>>>>,
    epoch: Arc<AtomicUsize>,
    busy: Mutex<()>,
    clock: Instant,
    /// Microseconds on `clock` before which callers work alone.
    alone_until_us: AtomicU64,
    /// When the last stall was (microseconds on `clock`; `u64::MAX`: none yet), and the
    /// back-off it started.
    last_stall_us: AtomicU64,
    back_off_us: AtomicU64,
}

/// The process-wide team: `threads` threads in all (default: the CPU count, at most 4), so
/// `threads = 1` keeps every pass on the calling thread.
fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| {
        let Settings { threads, spin } = settings();
        let wanted = threads
            .unwrap_or_else(|| {
                thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
                    .min(4)
            })
            .max(1);
        let slot = Arc::new(Mutex::new(None));
        let epoch = Arc::new(AtomicUsize::new(0));
        let helpers = (1..wanted)
            .filter_map(|i| spawn_helper(i, slot.clone(), epoch.clone(), spin))
            .collect();
        Team {
            helpers,
            slot,
            epoch,
            busy: Mutex::new(()),
            clock: Instant::now(),
            alone_until_us: AtomicU64::new(0),
            last_stall_us: AtomicU64::new(u64::MAX),
            back_off_us: AtomicU64::new(0),
        }
    })
}

fn spawn_helper(
    i: usize,
    slot: Arc<Mutex<Option<Arc<Job>>>>,
    epoch: Arc<AtomicUsize>,
    spin: Duration,
) -> Option<Helper> {
    let sleeping = Arc::new(AtomicBool::new(false));
    let asleep = sleeping.clone();
    let handle = thread::Builder::new()
        .name(format!("frontdesk-encoder-{i}"))
        .spawn(move || helper_loop(&slot, &epoch, &asleep, spin))
        .map_err(|e| tracing::warn!("encoder helper thread not started: {e}"))
        .ok()?;
    Some(Helper {
        thread: handle.thread().clone(),
        sleeping,
    })
}

fn helper_loop(
    slot: &Mutex<Option<Arc<Job>>>,
    epoch: &AtomicUsize,
    sleeping: &AtomicBool,
    spin: Duration,
) {
    let mut seen = epoch.load(Ordering::SeqCst);
    loop {
        let idle_since = Instant::now();
        let mut spins = 0u32;
        while epoch.load(Ordering::Acquire) == seen {
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(64) && idle_since.elapsed() > spin {
                sleeping.store(true, Ordering::SeqCst);
                // The poster bumps the epoch before it looks at `sleeping`, so either it
                // sees us asleep and unparks, or we see its epoch here.
                if epoch.load(Ordering::SeqCst) == seen {
                    thread::park();
                }
                sleeping.store(false, Ordering::SeqCst);
            }
        }
        seen = epoch.load(Ordering::Acquire);
        let job = slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(job) = job {
            job.run();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_runs_exactly_once() {
        for chunks in [0, 1, 2, 7, 100] {
            let hits: Vec<AtomicUsize> = (0..chunks).map(|_| AtomicUsize::new(0)).collect();
            for_each_chunk(chunks, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn concurrent_callers_all_finish() {
        let total = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        for_each_chunk(5, &|_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 200 * 5);
    }
}
