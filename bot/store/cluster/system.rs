//! The system side of the throwaway cluster: finding the binaries, the `postgres` user,
//! a private folder, a free port, and child processes run with a timeout.

use super::*;

/// The highest-version `/usr/lib/postgresql/*/bin` with `initdb`, else the directory of
/// `initdb` on `PATH`; it must also hold the other programs used here.
pub(super) fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    let debian = std::fs::read_dir(DEBIAN_LIB_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = version_key(&entry.file_name().to_string_lossy())?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin);
    let bin = match debian {
        Some(bin) => bin,
        None => {
            let initdb = find_on_path("initdb").ok_or(ClusterError::NotInstalled)?;
            // A link on PATH points into the real installation, where pg_ctl and psql are.
            let initdb = std::fs::canonicalize(&initdb).unwrap_or(initdb);
            initdb
                .parent()
                .ok_or(ClusterError::NotInstalled)?
                .to_path_buf()
        }
    };
    for tool in ["pg_ctl", "psql", "pg_isready"] {
        if !bin.join(tool).is_file() {
            return Err(ClusterError::MissingTool { dir: bin, tool });
        }
    }
    Ok(bin)
}

/// "15" -> [15], "9.6" -> [9, 6]; `None` for names that are not versions.
pub(super) fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

pub(super) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The `postgres` system user and the `runuser` that switches to it.
pub(super) fn postgres_user() -> Result<RunAs, ClusterError> {
    let (uid, gid) = lookup_user(SUPERUSER).ok_or(ClusterError::NoPostgresUser)?;
    let runuser = find_on_path("runuser")
        .or_else(|| {
            ["/usr/sbin/runuser", "/sbin/runuser"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        })
        .ok_or(ClusterError::NoRunuser)?;
    Ok(RunAs { runuser, uid, gid })
}

/// The uid and gid of a user, from the system's user database.
pub(super) fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // getpwnam_r, unlike getpwnam, is safe with other threads (tests run in parallel).
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

/// A new directory under the temp dir, mode 0700, owned by whoever runs the programs.
pub(super) fn make_dir(run_as: Option<&RunAs>) -> Result<PathBuf, ClusterError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Short: the Unix socket path inside it must stay under 108 bytes.
    let dir = base.join(format!(
        "frontdesk-pg-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let io = |source| ClusterError::TempDir {
        path: dir.clone(),
        source,
    };
    if let Some(run_as) = run_as {
        check_traversable(&base, run_as)?;
    }
    std::fs::create_dir(&dir).map_err(io)?;
    let prepared = (|| {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        if let Some(run_as) = run_as {
            std::os::unix::fs::chown(&dir, Some(run_as.uid), Some(run_as.gid))?;
        }
        Ok(())
    })();
    if let Err(source) = prepared {
        let _ = std::fs::remove_dir(&dir);
        return Err(io(source));
    }
    Ok(dir)
}

/// Checks that the `postgres` user may enter `base` and every directory above it (by mode
/// bits; ACLs and supplementary groups are not considered).
pub(super) fn check_traversable(base: &Path, run_as: &RunAs) -> Result<(), ClusterError> {
    let base = std::fs::canonicalize(base).map_err(|source| ClusterError::TempDir {
        path: base.to_path_buf(),
        source,
    })?;
    for dir in base.ancestors() {
        let meta = std::fs::metadata(dir).map_err(|source| ClusterError::TempDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mode = meta.mode();
        let bit = if meta.uid() == run_as.uid {
            0o100
        } else if meta.gid() == run_as.gid {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            return Err(ClusterError::NotTraversable {
                path: dir.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// A port on 127.0.0.1 that was free a moment ago (see [`START_ATTEMPTS`]).
pub(super) fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(ClusterError::NoPort)?;
    Ok(listener.local_addr().map_err(ClusterError::NoPort)?.port())
}

/// Quotes a path for `sh`, which `pg_ctl` hands its `-o` options to.
pub(super) fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// The log's text from byte `offset` on (what one start attempt wrote).
pub(super) fn read_log_from(log: &Path, offset: u64) -> String {
    std::fs::read(log)
        .map(|bytes| {
            String::from_utf8_lossy(bytes.get(offset as usize..).unwrap_or(&[])).into_owned()
        })
        .unwrap_or_default()
}

/// The last lines of the server log, for error messages.
pub(super) fn log_tail(log: &Path) -> String {
    match std::fs::read(log) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(err) => format!("(cannot read the log: {err})"),
    }
}

/// Spawns `command` in its own process group, collects its output, and kills the group
/// after `timeout`. Returns stdout; a non-zero exit is [`ClusterError::Failed`] with stderr
/// (or stdout when stderr is empty).
pub(super) fn run_with_timeout(
    mut command: Command,
    what: &str,
    timeout: Duration,
) -> Result<String, ClusterError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills what it started too.
        .process_group(0);
    let mut child = command.spawn().map_err(|source| ClusterError::Spawn {
        program: command.get_program().to_string_lossy().into_owned(),
        source,
    })?;
    // Read both pipes on threads, so a full pipe cannot block the child while we wait.
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                let _ = tx.send(bytes);
            });
        }
        rx
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                kill_group(&mut child);
                return Err(ClusterError::TimedOut {
                    what: what.to_owned(),
                    timeout,
                });
            }
        }
    };
    // A process left behind holding the pipes must not block us: wait briefly, then go on.
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        let bytes = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    };
    let (stdout, stderr) = (collect(stdout), collect(stderr));
    if status.success() {
        Ok(stdout)
    } else {
        Err(ClusterError::Failed {
            what: what.to_owned(),
            status,
            output: if stderr.is_empty() { stdout } else { stderr },
        })
    }
}

/// SIGTERM to the child's process group (runuser passes it on to its own child, which may
/// be in another session), then SIGKILL if it has not exited within 3 s.
pub(super) fn kill_group(child: &mut std::process::Child) {
    let group = child.id() as libc::pid_t;
    unsafe { libc::kill(-group, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
}
