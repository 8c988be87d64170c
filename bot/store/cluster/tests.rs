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
