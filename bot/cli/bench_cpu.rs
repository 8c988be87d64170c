//! Where `bench serve`'s CPU goes: the whole machine's, and this process's by thread.

use std::collections::BTreeMap;

/// The server runtime's thread names.
pub const SERVER_THREADS: &str = "fd-server";

/// What each thread does, for the table.
const THREAD_ROLES: &[(&str, &str)] = &[
    (
        SERVER_THREADS,
        "HTTP, JSON, auth, the desk's turn, store calls",
    ),
    (
        "nlu-worker",
        "NLU: tokenizer, encoder (with its helpers), heads, entities",
    ),
    ("frontdesk-encod", "encoder helper threads"),
    ("tokio-r", "the bench's own HTTP client (not the server)"),
    ("sled-io", "the embedded store's writes to disk"),
];

/// CPU seconds each live thread of this process has used, by name with its digits dropped
/// (`frontdesk-encoder-1` and `-2` count together). Threads that ended are not in it.
pub fn thread_cpu_secs() -> BTreeMap<String, f64> {
    threads_of("self", "")
}

/// [`thread_cpu_secs`] of this process and of the server process `pid`, whose thread names
/// get [`SERVER_PROCESS`] in front.
pub fn thread_cpu_secs_with(pid: u32) -> BTreeMap<String, f64> {
    let mut all = threads_of("self", "");
    all.extend(threads_of(&pid.to_string(), SERVER_PROCESS));
    all
}

/// In front of the names of the threads of a server in a process of its own.
pub const SERVER_PROCESS: &str = "server: ";

fn threads_of(proc: &str, prefix: &str) -> BTreeMap<String, f64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{proc}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ... utime stime ...`: the name may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = format!(
            "{prefix}{}",
            stat[open + 1..close].trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
        );
        let fields: Vec<f64> = stat[close + 1..]
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // After the name: state (not a number, skipped), then fields 4.. of stat(5):
        // utime and stime are its 14th and 15th.
        if let (Some(user), Some(system)) = (fields.get(10), fields.get(11)) {
            *by_name.entry(name).or_insert(0.0) += (user + system) / ticks;
        }
    }
    by_name
}

/// Milliseconds per message of each thread name between two readings, most first.
pub fn per_message(
    after: BTreeMap<String, f64>,
    before: BTreeMap<String, f64>,
    messages: usize,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = after
        .into_iter()
        .map(|(name, secs)| {
            let used = secs - before.get(&name).copied().unwrap_or(0.0);
            (name, used * 1000.0 / messages.max(1) as f64)
        })
        .filter(|(_, ms)| *ms >= 0.005)
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// Whole-machine CPU time so far (every core, every process), in seconds.
pub fn machine_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait
    let busy: f64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, v)| v)
        .sum();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    busy / ticks
}

/// What a thread of that name does ("" for one the table does not know).
pub fn role(name: &str) -> &'static str {
    if let Some(server) = name.strip_prefix(SERVER_PROCESS) {
        return match server {
            n if n.starts_with("tokio-r") => "HTTP, JSON, auth, the desk's turn, store calls",
            n => role(n),
        };
    }
    THREAD_ROLES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map_or("", |(_, role)| role)
}
