//! The process's open-file limit: every widget socket and connection holds a file
//! descriptor, so `serve` raises the soft limit to the hard one at start (where the system
//! allows) and `/health` reports both, beside the sockets open.

use std::sync::OnceLock;

/// The open-file limit before and after raising it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OpenFiles {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
}

static RAISED: OnceLock<OpenFiles> = OnceLock::new();

/// Raises the soft open-file limit to the hard one (once per process); returns the limits.
pub fn raise() -> OpenFiles {
    *RAISED.get_or_init(|| {
        let limits = raise_soft_limit();
        if limits.now < limits.before.max(1) || limits.now == 0 {
            tracing::warn!(?limits, "could not read or raise the open-file limit");
        } else {
            tracing::info!(
                before = limits.before,
                now = limits.now,
                hard = limits.hard,
                "open-file limit"
            );
        }
        limits
    })
}

/// The limits as raised at start, if they were.
pub fn raised() -> Option<OpenFiles> {
    RAISED.get().copied()
}

#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // `rlim_t` is u64 on Linux, not on every unix
fn raise_soft_limit() -> OpenFiles {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return OpenFiles {
                before: 0,
                now: 0,
                hard: 0,
            };
        }
        let before = limit.rlim_cur;
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        OpenFiles {
            before: before as u64,
            now: limit.rlim_cur as u64,
            hard: limit.rlim_max as u64,
        }
    }
}

#[cfg(not(unix))]
fn raise_soft_limit() -> OpenFiles {
    OpenFiles {
        before: 0,
        now: 0,
        hard: 0,
    }
}
