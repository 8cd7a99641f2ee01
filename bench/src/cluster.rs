//! `--nodes N`: the same scenarios against N Hearth nodes of one cluster
//! (a throwaway PostgreSQL from `hearth-testpg`, a nats-server with JetStream,
//! one shared keys directory). Camera `c` publishes to node `c mod N`; viewers
//! spread evenly over the nodes, (N - 1)/N of them on a node that relays their
//! camera from the node that ingests it (`run::hearth`). The CPU measured is
//! every node's plus nats-server's (PostgreSQL is idle while media flows: the
//! hot path makes no database call).

use crate::procs::Reaped;
use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the nodes share: the database, the control plane, the keys.
pub struct Backing {
    // Field order: NATS stops before its directory goes.
    pub nats: Reaped,
    _pg: hearth_testpg::TestPostgres,
    pub env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

fn nats_binary() -> PathBuf {
    let venv =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/nats-server");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("nats-server")
    }
}

/// A nats-server with JetStream on a free loopback port, its store under
/// `dir`; returns it and the URL to reach it (user and password in it).
pub fn start_nats(dir: &std::path::Path) -> anyhow::Result<(Reaped, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let password = format!("{:032x}", rand_u128());
    let child = Command::new(nats_binary())
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .args(["--user", "hearth", "--pass", &password, "-js", "-sd"])
        .arg(dir.join("js"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("nats-server (scripts/install-test-deps installs it into target/test-venv)")?;
    let nats = Reaped::new(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nats-server did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((nats, format!("nats://hearth:{password}@127.0.0.1:{port}")))
}

impl Backing {
    pub fn start() -> anyhow::Result<Backing> {
        let dir = tempfile::Builder::new()
            .prefix("hearth-bench-cluster-")
            .tempdir()?;
        let pg = hearth_testpg::TestPostgres::start();
        let db = pg.fresh_database();
        let (nats, nats_url) = start_nats(dir.path())?;
        let keys = dir.path().join("keys");
        let env = vec![
            ("HEARTH_DATABASE_URL".to_string(), db),
            ("HEARTH_NATS_URL".to_string(), nats_url),
            (
                "HEARTH_KEYS_DIR".to_string(),
                keys.to_string_lossy().into_owned(),
            ),
        ];
        Ok(Backing {
            nats,
            _pg: pg,
            env,
            _dir: dir,
        })
    }
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (u128::from(h.finish()) << 64) | u128::from(std::process::id())
}
