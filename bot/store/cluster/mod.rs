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

mod system;
use system::*;

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

#[cfg(test)]
mod tests;
