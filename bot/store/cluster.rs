//! A throwaway PostgreSQL cluster for tests and benchmarks: a real server from Debian's
//! `postgresql` package, never a mock, so the tests exercise the same engine as production.
//!
//! [`Cluster::start`] runs `initdb` into a fresh directory under [`std::env::temp_dir`], starts
//! the server with `pg_ctl` on 127.0.0.1 and a free port (its Unix socket in that same
//! directory, so no system directory is needed), and creates the role and database
//! `frontdesk`. Dropping the [`Cluster`] stops the server (`pg_ctl stop -m immediate`) and
//! removes the directory.
//!
//! Binaries: the highest version under `/usr/lib/postgresql/*/bin` that has `initdb` (where
//! Debian installs them; they are not on `PATH` there), else `initdb` found on `PATH`.
//!
//! Users: `initdb` and `postgres` refuse to run as root. When this process is root, every
//! PostgreSQL program runs as the `postgres` system user (Debian's package creates it) through
//! `runuser -u postgres --`, and the cluster directory belongs to that user. Otherwise they
//! run as the current user.
//!
//! Authentication is `trust`, and the server listens on 127.0.0.1 only: fine for a
//! throwaway cluster, never for a real one. `fsync` stays on, because tests check durability.
//!
//! Every program gets a timeout, so a stuck server fails a test instead of hanging it.

use std::ffi::{CString, OsStr};
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long any one PostgreSQL program may run before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server gets to accept connections after `pg_ctl start`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Start attempts, each on a fresh port: another process may take the port between the
/// moment it is found free and the moment the server binds it.
const START_ATTEMPTS: u32 = 3;
/// Log lines quoted in an error when the server does not start.
const LOG_TAIL_LINES: usize = 30;
/// Where Debian installs each major version's binaries (`<this>/<version>/bin`).
const DEBIAN_LIB_DIR: &str = "/usr/lib/postgresql";
/// The superuser `initdb` creates; the system user the programs run as under root.
const SUPERUSER: &str = "postgres";
/// The role and database that [`Cluster::url`] points at.
const APP: &str = "frontdesk";
const INSTALL_HINT: &str = "install Debian's postgresql package: apt-get install postgresql";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL is not installed: no {DEBIAN_LIB_DIR}/*/bin/initdb and no initdb on PATH; \
         {INSTALL_HINT}"
    )]
    NotInstalled,
    #[error("{dir} has initdb but no {tool}; reinstall the packages: apt-get install --reinstall postgresql postgresql-client")]
    MissingTool { dir: PathBuf, tool: &'static str },
    #[error(
        "running as root, but there is no `postgres` system user to run PostgreSQL as (initdb \
         refuses root); {INSTALL_HINT} (it creates the user), or run the tests as another user"
    )]
    NoPostgresUser,
    #[error(
        "running as root, but `runuser` was not found to run PostgreSQL as the `postgres` user; \
         install Debian's util-linux package: apt-get install util-linux"
    )]
    NoRunuser,
    #[error(
        "cannot prepare the cluster directory {path}: {source}; set TMPDIR to a writable \
         directory on a local disk"
    )]
    TempDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the `postgres` user cannot enter {path}, a parent of the cluster directory; set TMPDIR \
         to a directory every user can enter, such as /tmp"
    )]
    NotTraversable { path: PathBuf },
    #[error("no free TCP port on 127.0.0.1: {0}; check that the loopback interface is up")]
    NoPort(#[source] std::io::Error),
    #[error("could not run {program}: {source}; {INSTALL_HINT}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{what}` did not finish within {timeout:?} and was killed; look for a stuck postgres process or a full disk")]
    TimedOut { what: String, timeout: Duration },
    #[error("`{what}` failed ({status}): {output}")]
    Failed {
        what: String,
        status: ExitStatus,
        output: String,
    },
    /// The log is quoted here because the cluster directory, log included, goes on drop.
    #[error(
        "the PostgreSQL server did not start on port {port} (attempt {attempt}); fix what the \
         end of its log names:\n{log}"
    )]
    Start {
        attempt: u32,
        port: u16,
        log: String,
    },
    #[error(
        "the PostgreSQL server on port {port} did not accept connections within {} s; fix what \
         the end of its log names:\n{log}", .timeout.as_secs()
    )]
    NotReady {
        port: u16,
        timeout: Duration,
        log: String,
    },
    #[error(
        "database name {0:?} is not allowed: use 1 to 63 lowercase ASCII letters, digits or \
         underscores, starting with a letter or an underscore"
    )]
    InvalidName(String),
}

/// Who runs the PostgreSQL programs: `Some` when this process is root and they must run as
/// the `postgres` system user instead.
#[derive(Debug, Clone)]
struct RunAs {
    runuser: PathBuf,
    uid: u32,
    gid: u32,
}

/// A running throwaway cluster; see the module doc. Dropping it stops the server and
/// removes its directory.
#[derive(Debug)]
pub struct Cluster {
    /// The cluster's own directory: `data/` (PGDATA), the log, and the Unix socket.
    dir: PathBuf,
    port: u16,
    /// The directory holding `initdb`, `pg_ctl`, `psql` and `pg_isready`.
    bin: PathBuf,
    run_as: Option<RunAs>,
}

impl Cluster {
    /// `initdb` into a fresh temp dir, start with `pg_ctl` on 127.0.0.1 and a free port, wait
    /// until it accepts connections, then create the role and database `frontdesk`.
    pub fn start() -> Result<Cluster, ClusterError> {
        let bin = find_bin_dir()?;
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(postgres_user()?)
        } else {
            None
        };
        let dir = make_dir(run_as.as_ref())?;
        // From here on, `Drop` cleans up whatever was made, on every error path too.
        let mut cluster = Cluster {
            dir,
            port: 0,
            bin,
            run_as,
        };
        cluster.init()?;
        cluster.start_server()?;
        cluster.wait_ready()?;
        cluster.psql_super(
            "postgres",
            &[
                &format!("CREATE ROLE {APP} SUPERUSER LOGIN"),
                &format!("CREATE DATABASE {APP} OWNER {APP}"),
            ],
        )?;
        tracing::debug!(port = cluster.port, dir = %cluster.dir.display(), "test PostgreSQL cluster started");
        Ok(cluster)
    }

    /// The URL of the database `frontdesk`, owned by the role `frontdesk`, e.g.
    /// `postgres://frontdesk@127.0.0.1:PORT/frontdesk`. No password: trust authentication.
    pub fn url(&self) -> String {
        self.database_url(APP)
    }

    /// Creates one more empty database, owned by `frontdesk`, and returns its URL: tests that
    /// must not see each other's rows use one database each on one cluster.
    pub fn new_database(&self, name: &str) -> Result<String, ClusterError> {
        // The name goes into SQL and a URL unquoted, so only plain identifiers are accepted.
        let valid = (1..=63).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(ClusterError::InvalidName(name.to_owned()));
        }
        self.psql_super(
            "postgres",
            &[&format!("CREATE DATABASE {name} OWNER {APP}")],
        )?;
        Ok(self.database_url(name))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn database_url(&self, database: &str) -> String {
        format!("postgres://{APP}@127.0.0.1:{}/{database}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn init(&self) -> Result<(), ClusterError> {
        let data = self.data_dir();
        self.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                "--auth=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
                // Skips only initdb's final flush of the fresh files; the server keeps fsync on.
                "--no-sync".as_ref(),
            ],
            COMMAND_TIMEOUT,
        )?;
        // Later lines of postgresql.conf override earlier ones. The port and the socket
        // directory go on the command line, since the port changes between attempts.
        let settings = "\n# Throwaway test cluster (frontdesk::store::cluster)\n\
                        listen_addresses = '127.0.0.1'\n\
                        max_connections = 200\n\
                        shared_buffers = 64MB\n\
                        fsync = on\n\
                        logging_collector = off\n";
        let conf = data.join("postgresql.conf");
        let io = |source| ClusterError::TempDir {
            path: conf.clone(),
            source,
        };
        let mut text = std::fs::read_to_string(&conf).map_err(io)?;
        text.push_str(settings);
        std::fs::write(&conf, text).map_err(io)
    }

    /// `pg_ctl start` on a free port, again on another port when the chosen one was taken
    /// in the meantime.
    fn start_server(&mut self) -> Result<(), ClusterError> {
        let data = self.data_dir();
        let log = self.log_path();
        for attempt in 1..=START_ATTEMPTS {
            self.port = free_port()?;
            let before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            // pg_ctl hands -o to a shell, so the socket directory is quoted for it.
            let options = format!("-p {} -k {}", self.port, shell_quote(&self.dir));
            let result = self.run(
                "pg_ctl",
                &[
                    "start".as_ref(),
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    READY_TIMEOUT.as_secs().to_string().as_ref(),
                    "-s".as_ref(),
                    "-o".as_ref(),
                    options.as_ref(),
                ],
                COMMAND_TIMEOUT,
            );
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let new_log = read_log_from(&log, before);
            let port_taken = new_log.contains("Address already in use")
                || new_log.contains("could not create any TCP/IP sockets");
            if port_taken && attempt < START_ATTEMPTS {
                tracing::debug!(
                    port = self.port,
                    attempt,
                    "port taken; starting PostgreSQL on another"
                );
                continue;
            }
            if !matches!(err, ClusterError::Failed { .. }) {
                return Err(err);
            }
            return Err(ClusterError::Start {
                attempt,
                port: self.port,
                log: log_tail(&log),
            });
        }
        unreachable!("the last attempt returns")
    }

    /// Waits until the server accepts connections on the TCP address of [`Cluster::url`].
    fn wait_ready(&self) -> Result<(), ClusterError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let port = self.port.to_string();
        loop {
            let ready = self.run(
                "pg_isready",
                &[
                    "-q".as_ref(),
                    "-h".as_ref(),
                    "127.0.0.1".as_ref(),
                    "-p".as_ref(),
                    port.as_ref(),
                    "-t".as_ref(),
                    "2".as_ref(),
                ],
                COMMAND_TIMEOUT,
            );
            match ready {
                Ok(_) => return Ok(()),
                Err(ClusterError::Failed { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(ClusterError::Failed { .. }) => {
                    return Err(ClusterError::NotReady {
                        port: self.port,
                        timeout: READY_TIMEOUT,
                        log: log_tail(&self.log_path()),
                    })
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Runs each statement with `psql` as the superuser over the Unix socket, each in its own
    /// transaction (CREATE DATABASE cannot run inside one). Returns psql's output.
    fn psql_super(&self, database: &str, statements: &[&str]) -> Result<String, ClusterError> {
        let port = self.port.to_string();
        let mut args: Vec<&OsStr> = vec![
            "-X".as_ref(),
            "-q".as_ref(),
            "-A".as_ref(),
            "-t".as_ref(),
            "-v".as_ref(),
            "ON_ERROR_STOP=1".as_ref(),
            "-h".as_ref(),
            self.dir.as_os_str(),
            "-p".as_ref(),
            port.as_ref(),
            "-U".as_ref(),
            SUPERUSER.as_ref(),
            "-d".as_ref(),
            database.as_ref(),
        ];
        for statement in statements {
            args.push("-c".as_ref());
            args.push(statement.as_ref());
        }
        self.run("psql", &args, COMMAND_TIMEOUT)
    }

    /// Runs one of the cluster's programs (as `postgres` under root), killing it after
    /// `timeout`. Returns its stdout; a non-zero exit is [`ClusterError::Failed`].
    fn run(&self, tool: &str, args: &[&OsStr], timeout: Duration) -> Result<String, ClusterError> {
        let program = self.bin.join(tool);
        let mut command = match &self.run_as {
            Some(run_as) => {
                let mut c = Command::new(&run_as.runuser);
                c.args(["-u", SUPERUSER, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command.args(args);
        // The `postgres` user may not be able to enter this process's working directory;
        // PostgreSQL's programs complain when they cannot.
        if self.dir.is_dir() {
            command.current_dir(&self.dir);
        }
        // The caller's PG* variables (PGHOST, PGDATABASE, PGOPTIONS, ...) must not redirect
        // or alter these commands.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                command.env_remove(key);
            }
        }
        let what = std::iter::once(tool.to_owned())
            .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        run_with_timeout(command, &what, timeout)
    }

    /// Stops the server if it runs: `pg_ctl stop -m immediate`, then SIGKILL to the
    /// postmaster if that failed, so the port is free when this returns.
    fn stop(&self) {
        let data = self.data_dir();
        let pid_file = data.join("postmaster.pid");
        if !pid_file.exists() {
            return;
        }
        let stopped = self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                READY_TIMEOUT.as_secs().to_string().as_ref(),
                "-s".as_ref(),
            ],
            COMMAND_TIMEOUT,
        );
        if let Err(err) = stopped {
            tracing::warn!(%err, "pg_ctl stop failed; killing the test PostgreSQL server");
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse::<libc::pid_t>().ok());
            if let Some(pid) = pid.filter(|pid| *pid > 0) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                // The postmaster is not our child: wait until it is gone (kill(pid, 0) fails).
                let deadline = Instant::now() + Duration::from_secs(10);
                while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        if let Err(err) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(%err, dir = %self.dir.display(), "could not remove the test PostgreSQL cluster directory");
        }
    }
}

/// The highest-version `/usr/lib/postgresql/*/bin` with `initdb`, else the directory of
/// `initdb` on `PATH`; it must also hold the other programs used here.
fn find_bin_dir() -> Result<PathBuf, ClusterError> {
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
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The `postgres` system user and the `runuser` that switches to it.
fn postgres_user() -> Result<RunAs, ClusterError> {
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
fn lookup_user(name: &str) -> Option<(u32, u32)> {
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
fn make_dir(run_as: Option<&RunAs>) -> Result<PathBuf, ClusterError> {
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
fn check_traversable(base: &Path, run_as: &RunAs) -> Result<(), ClusterError> {
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
fn free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(ClusterError::NoPort)?;
    Ok(listener.local_addr().map_err(ClusterError::NoPort)?.port())
}

/// Quotes a path for `sh`, which `pg_ctl` hands its `-o` options to.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// The log's text from byte `offset` on (what one start attempt wrote).
fn read_log_from(log: &Path, offset: u64) -> String {
    std::fs::read(log)
        .map(|bytes| {
            String::from_utf8_lossy(bytes.get(offset as usize..).unwrap_or(&[])).into_owned()
        })
        .unwrap_or_default()
}

/// The last lines of the server log, for error messages.
fn log_tail(log: &Path) -> String {
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
fn run_with_timeout(
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
fn kill_group(child: &mut std::process::Child) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, TcpStream};

    /// Runs SQL with psql over TCP, as the role and on the database of `url`, as the URL's
    /// users would connect.
    fn psql_tcp(cluster: &Cluster, database: &str, sql: &str) -> Result<String, ClusterError> {
        let port = cluster.port().to_string();
        cluster.run(
            "psql",
            &[
                "-X".as_ref(),
                "-A".as_ref(),
                "-t".as_ref(),
                "-v".as_ref(),
                "ON_ERROR_STOP=1".as_ref(),
                "-h".as_ref(),
                "127.0.0.1".as_ref(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                APP.as_ref(),
                "-d".as_ref(),
                database.as_ref(),
                "-c".as_ref(),
                sql.as_ref(),
            ],
            COMMAND_TIMEOUT,
        )
    }

    fn accepts_tcp(port: u16) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    }

    #[test]
    fn starts_and_answers_over_tcp_as_frontdesk() {
        let cluster = Cluster::start().expect("start");
        assert_eq!(
            cluster.url(),
            format!(
                "postgres://frontdesk@127.0.0.1:{}/frontdesk",
                cluster.port()
            )
        );
        assert_eq!(psql_tcp(&cluster, "frontdesk", "select 1").unwrap(), "1");
        let who = psql_tcp(
            &cluster,
            "frontdesk",
            "select current_user || ' ' || current_database() || ' ' || \
             pg_get_userbyid(datdba) from pg_database where datname = current_database()",
        )
        .unwrap();
        assert_eq!(who, "frontdesk frontdesk frontdesk");
        for (setting, expected) in [
            ("fsync", "on"),
            ("max_connections", "200"),
            ("shared_buffers", "64MB"),
            ("listen_addresses", "127.0.0.1"),
        ] {
            let value = psql_tcp(&cluster, "frontdesk", &format!("show {setting}")).unwrap();
            assert_eq!(value, expected, "{setting}");
        }
    }

    #[test]
    fn new_database_is_separate_and_owned_by_frontdesk() {
        let cluster = Cluster::start().expect("start");
        let url = cluster.new_database("isolated_1").unwrap();
        assert_eq!(
            url,
            format!(
                "postgres://frontdesk@127.0.0.1:{}/isolated_1",
                cluster.port()
            )
        );
        psql_tcp(
            &cluster,
            "frontdesk",
            "create table t (x int); insert into t values (7)",
        )
        .unwrap();
        let err = psql_tcp(&cluster, "isolated_1", "select x from t").unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let owner = psql_tcp(
            &cluster,
            "isolated_1",
            "select pg_get_userbyid(datdba) from pg_database where datname = 'isolated_1'",
        )
        .unwrap();
        assert_eq!(owner, "frontdesk");
        // The same name twice is an error from the server, not a silent reuse.
        assert!(matches!(
            cluster.new_database("isolated_1"),
            Err(ClusterError::Failed { .. })
        ));
        for bad in [
            "",
            "Upper",
            "1st",
            "a-b",
            "x; drop database frontdesk",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(cluster.new_database(bad), Err(ClusterError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn drop_stops_the_server_and_removes_the_dir() {
        let cluster = Cluster::start().expect("start");
        let (port, dir) = (cluster.port(), cluster.dir.clone());
        assert!(dir.join("data/PG_VERSION").is_file());
        assert!(accepts_tcp(port));
        drop(cluster);
        assert!(!accepts_tcp(port), "port {port} still accepts connections");
        assert!(!dir.exists(), "{} is still there", dir.display());
    }

    #[test]
    fn two_clusters_run_side_by_side() {
        let (a, b) = (
            Cluster::start().expect("start a"),
            Cluster::start().expect("start b"),
        );
        assert_ne!(a.port(), b.port());
        assert_ne!(a.dir, b.dir);
        assert_eq!(psql_tcp(&a, "frontdesk", "select 1").unwrap(), "1");
        assert_eq!(psql_tcp(&b, "frontdesk", "select 1").unwrap(), "1");
    }

    #[test]
    fn a_hung_command_is_killed_at_its_timeout() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let started = Instant::now();
        let err = run_with_timeout(command, "sleep 30", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ClusterError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn versions_sort_numerically() {
        assert!(version_key("16") > version_key("9.6"));
        assert!(version_key("15") > version_key("9"));
        assert_eq!(version_key("main"), None);
    }
}
