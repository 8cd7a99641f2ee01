//! A throwaway PostgreSQL server for tests, without Docker: Debian's
//! `postgresql` package (`scripts/install-test-deps` installs it) run from a
//! temporary directory on a free loopback port.
//!
//! - [`TestPostgres::shared`] is the process's server, started on first use; each
//!   test takes a database of its own from it with
//!   [`TestPostgres::fresh_database`], so tests run in parallel without seeing
//!   each other.
//! - [`TestPostgres::start`] is a server of one's own, for tests that stop and
//!   restart it ([`TestPostgres::stop`], [`TestPostgres::start_again`]).
//!
//! The server is made with `initdb` (the superuser is `postgres`, trusted over
//! the unix socket in the temporary directory; TCP logins need a password,
//! SCRAM) and listens on 127.0.0.1 only. Durability is off (`fsync`,
//! `synchronous_commit`, `full_page_writes`): a test database never outlives its
//! test. The application logs in as `hearth`, a role that is not a superuser and
//! owns each fresh database, so privileges work as they do in production.
//!
//! `initdb` refuses to run as root: as root, every server-side command runs as
//! the `postgres` OS user (`runuser`), which owns the temporary directory.
//!
//! A server never outlives the test process. A watchdog shell started with it
//! polls the process (`kill -0`, every half second); when the process is gone,
//! it stops the server (`pg_ctl -m immediate stop`) and removes its directory.
//! That is how [`TestPostgres::shared`], a static that is never dropped, is
//! cleaned up; a server from [`TestPostgres::start`] is stopped and removed when
//! dropped.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The role the application logs in as (not a superuser).
pub const APP_ROLE: &str = "hearth";
/// The superuser `initdb` makes.
pub const SUPERUSER: &str = "postgres";

/// Fresh databases, counted across every server of the process.
static DATABASES: AtomicU64 = AtomicU64::new(0);

/// The PostgreSQL programs this crate runs.
#[derive(Clone, Debug)]
struct Bins {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    psql: PathBuf,
    createdb: PathBuf,
}

impl Bins {
    /// Each program from `PATH`, else from the newest `/usr/lib/postgresql/*/bin`.
    fn find() -> Bins {
        let newest = newest_versioned_bin_dir();
        let find = |name: &str| -> PathBuf {
            in_path(name)
                .or_else(|| {
                    newest
                        .as_ref()
                        .map(|dir| dir.join(name))
                        .filter(|p| p.is_file())
                })
                .unwrap_or_else(|| {
                    panic!(
                        "hearth-testpg: PostgreSQL's `{name}` is neither in PATH nor in \
                         /usr/lib/postgresql/*/bin; run scripts/install-test-deps (it installs \
                         the Debian packages postgresql and postgresql-client)"
                    )
                })
        };
        // `postgres` itself is found by initdb and pg_ctl next to themselves;
        // check for it here so that a missing one gets the same clear message.
        let initdb = find("initdb");
        let server_dir = initdb
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        if !server_dir.is_some_and(|d| d.join("postgres").is_file()) {
            find("postgres");
        }
        Bins {
            initdb,
            pg_ctl: find("pg_ctl"),
            psql: find("psql"),
            createdb: find("createdb"),
        }
    }
}

fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `/usr/lib/postgresql/<highest version>/bin`, if any has an `initdb`.
fn newest_versioned_bin_dir() -> Option<PathBuf> {
    let entries = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            // "15", "16", "9.6": compare numerically, part by part.
            let version: Vec<u32> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

/// Whether this process runs as root (effective uid 0), from `/proc/self/status`
/// (no libc), else from `id -u`.
fn running_as_root() -> bool {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            // Uid: real effective saved filesystem
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace()
                .nth(2)
                .map(|effective| effective == "0")
        });
    if let Some(root) = from_proc {
        return root;
    }
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn runuser() -> PathBuf {
    in_path("runuser")
        .or_else(|| {
            ["/usr/sbin/runuser", "/sbin/runuser"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        })
        .expect("hearth-testpg: running as root needs `runuser` (util-linux) to run PostgreSQL as the postgres user")
}

/// `s` quoted for `sh`.
fn sh_quote(s: &OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

/// A free TCP port on 127.0.0.1 (the kernel's choice; free when we let go of it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("hearth-testpg: cannot bind a loopback port")
}

/// 16 random bytes from the kernel, in hex.
fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("hearth-testpg: cannot read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A PostgreSQL server in a temporary directory. See the crate docs.
pub struct TestPostgres {
    bins: Bins,
    /// Server-side commands run as the `postgres` OS user (we are root).
    as_postgres: bool,
    /// The temporary directory: the data directory, the socket, the log.
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    password: String,
    /// The shell that stops the server and removes `dir` once this process
    /// is gone.
    watchdog: Mutex<Option<Child>>,
}

impl std::fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPostgres")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .field("as_postgres", &self.as_postgres)
            .finish_non_exhaustive()
    }
}

impl TestPostgres {
    /// The process-wide server, started on first use (OnceLock); it stops when
    /// the test process exits.
    pub fn shared() -> &'static TestPostgres {
        static SHARED: OnceLock<TestPostgres> = OnceLock::new();
        SHARED.get_or_init(TestPostgres::start)
    }

    /// A server of one's own (for tests that stop and restart it); Drop stops it
    /// and removes its directory.
    pub fn start() -> TestPostgres {
        let bins = Bins::find();
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("hearth-testpg-")
            .tempdir()
            .expect("hearth-testpg: cannot make a temporary directory")
            .keep();
        let data = dir.join("data");
        let mut server = TestPostgres {
            bins,
            as_postgres,
            data,
            port: 0,
            password: random_hex(),
            watchdog: Mutex::new(None),
            dir,
        };
        // First of all: whatever happens below, nothing outlives the process.
        server.start_watchdog();
        if as_postgres {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .stdin(Stdio::null())
                .output()
                .expect("hearth-testpg: cannot run chown");
            assert!(
                out.status.success(),
                "{}",
                describe(
                    "chown of the temporary directory to the postgres user (does the user exist?)",
                    &out
                )
            );
        }
        server.initdb();
        // A port is free when we pick it, but another process may take it before
        // the server binds it: try a few.
        let mut last_failure = String::new();
        for _ in 0..5 {
            server.port = free_port();
            server.write_config();
            match server.pg_ctl_start() {
                Ok(()) => {
                    server.create_app_role();
                    return server;
                }
                Err(failure) => last_failure = failure,
            }
        }
        panic!("hearth-testpg: the server did not start:\n{last_failure}");
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password of the application role (`hearth`).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The directory of the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a new empty database owned by the app role; returns its URL,
    /// `postgres://hearth:<password>@127.0.0.1:<port>/<name>`.
    pub fn fresh_database(&self) -> String {
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name = format!("t_{n}_{}", std::process::id());
        let out = Command::new(&self.bins.createdb)
            .args(["-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-O",
                APP_ROLE,
            ])
            .arg(&name)
            .stdin(Stdio::null())
            .env_remove("PGPASSWORD")
            .output()
            .expect("hearth-testpg: cannot run createdb");
        assert!(out.status.success(), "{}", describe("createdb", &out));
        self.url(&name)
    }

    /// The app role's URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{APP_ROLE}:{}@127.0.0.1:{}/{name}",
            self.password, self.port
        )
    }

    /// The database name of a URL [`TestPostgres::fresh_database`] returned.
    pub fn database_of(&self, url: &str) -> String {
        let tail = url.rsplit('/').next().unwrap_or(url);
        tail.split('?').next().unwrap_or(tail).to_owned()
    }

    /// Runs SQL as the superuser in database `db` with psql; returns stdout
    /// (panics with stderr on failure).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("hearth-testpg: psql in {db} failed: {sql}\n{e}"))
    }

    /// As [`TestPostgres::psql`], with the failure (psql's stderr) returned
    /// instead. Output is unaligned, tuples only (`-At`); the statements run
    /// as one transaction unless they say otherwise, and stop at the first
    /// error.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(&self.bins.psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                db,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .env_remove("PGPASSWORD")
            .env_remove("PGOPTIONS")
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(describe("psql", &out))
        }
    }

    /// Stops the server (fast shutdown: connections are closed, nothing is
    /// waited for).
    pub fn stop(&self) {
        let out = self
            .server_command(&self.bins.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .expect("hearth-testpg: cannot run pg_ctl");
        assert!(out.status.success(), "{}", describe("pg_ctl stop", &out));
    }

    /// Starts the server again after [`TestPostgres::stop`], on the same port
    /// and data directory.
    pub fn start_again(&self) {
        if let Err(failure) = self.pg_ctl_start() {
            panic!("hearth-testpg: the server did not start again:\n{failure}");
        }
    }

    // --- the steps ---

    /// A command for the server side: as the `postgres` OS user when we are
    /// root, in the temporary directory (which that user can enter).
    fn server_command(&self, program: &Path) -> Command {
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new(runuser());
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    fn initdb(&self) {
        let run = |locale: &str| {
            self.server_command(&self.bins.initdb)
                .arg("-D")
                .arg(&self.data)
                .args([
                    "-U",
                    SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ])
                .arg(format!("--locale={locale}"))
                .output()
                .expect("hearth-testpg: cannot run initdb")
        };
        let out = run("C.UTF-8");
        if out.status.success() {
            return;
        }
        // Without the C.UTF-8 locale: the plain C locale sorts the same.
        let _ = std::fs::remove_dir_all(&self.data);
        let retry = run("C");
        assert!(
            retry.status.success(),
            "{}\n(with --locale=C.UTF-8: {})",
            describe("initdb", &retry),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Appends the test settings to `postgresql.conf` (the last setting wins,
    /// so a new port replaces an earlier one).
    fn write_config(&self) {
        use std::io::Write;
        let socket = self.dir.to_string_lossy().replace('\'', "''");
        let settings = format!(
            "\n# hearth-testpg\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket}'\n\
             max_connections = 200\n\
             shared_buffers = 32MB\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n",
            port = self.port
        );
        // Appending keeps the file's owner (the postgres user when we are root).
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .expect("hearth-testpg: cannot write postgresql.conf");
    }

    /// `pg_ctl start`, waiting until the server accepts connections.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let out = self
            .server_command(&self.bins.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            Err(format!(
                "{}\n--- server.log ---\n{log}",
                describe("pg_ctl start", &out)
            ))
        }
    }

    fn create_app_role(&self) {
        self.psql(
            "postgres",
            &format!(
                "CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{}'",
                self.password
            ),
        );
    }

    /// The stop command as a shell line, for the watchdog.
    fn immediate_stop_line(&self) -> String {
        let pg_ctl = format!(
            "{} -D {} -m immediate stop",
            sh_quote(self.bins.pg_ctl.as_os_str()),
            sh_quote(self.data.as_os_str())
        );
        if self.as_postgres {
            format!(
                "{} -u postgres -- {pg_ctl}",
                sh_quote(runuser().as_os_str())
            )
        } else {
            pg_ctl
        }
    }

    fn start_watchdog(&mut self) {
        let script = format!(
            "trap '' INT HUP TERM; \
             while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             if [ -f {pidfile} ]; then {stop}; fi; \
             rm -rf {dir}",
            pid = std::process::id(),
            pidfile = sh_quote(self.data.join("postmaster.pid").as_os_str()),
            stop = self.immediate_stop_line(),
            dir = sh_quote(self.dir.as_os_str()),
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for the tests does not
            // reach it (it is what cleans up after them).
            .process_group(0)
            .spawn()
            .expect("hearth-testpg: cannot start the watchdog shell");
        *self.watchdog.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(child);
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // The watchdog is ours alone; it is not needed once we clean up here.
        if let Some(mut watchdog) = self
            .watchdog
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if self.data.join("postmaster.pid").exists() {
            let _ = self
                .server_command(&self.bins.pg_ctl)
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs SQL as the app role, over TCP with its password (SCRAM).
    fn psql_as_app(pg: &TestPostgres, url: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(&pg.bins.psql)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(describe("psql as the app role", &out))
        }
    }

    #[test]
    fn fresh_databases_are_distinct_empty_and_owned_by_the_app_role() {
        let pg = TestPostgres::shared();
        let (a, b) = (pg.fresh_database(), pg.fresh_database());
        assert_ne!(a, b);
        let prefix = format!(
            "postgres://hearth:{}@127.0.0.1:{}/",
            pg.password(),
            pg.port()
        );
        assert!(a.starts_with(&prefix), "{a}");
        let (name_a, name_b) = (pg.database_of(&a), pg.database_of(&b));
        assert!(name_a.starts_with("t_") && name_a.ends_with(&format!("_{}", std::process::id())));

        // The app role logs in over TCP with its password, owns the database
        // and may create tables in it; what one database has, the other has not.
        psql_as_app(
            pg,
            &a,
            "CREATE TABLE only_in_a (x int); INSERT INTO only_in_a VALUES (7)",
        )
        .unwrap();
        assert_eq!(psql_as_app(pg, &a, "SELECT x FROM only_in_a").unwrap(), "7");
        assert!(psql_as_app(pg, &b, "SELECT x FROM only_in_a").is_err());
        assert_eq!(
            pg.psql(
                &name_a,
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
            )
            .trim(),
            "hearth"
        );
        assert_eq!(
            pg.psql(
                &name_b,
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
            .trim(),
            "0"
        );

        // Not a superuser: privileges apply to it.
        assert_eq!(
            pg.psql(
                "postgres",
                "SELECT rolsuper FROM pg_roles WHERE rolname = 'hearth'"
            )
            .trim(),
            "f"
        );
        assert_eq!(psql_as_app(pg, &a, "SHOW is_superuser").unwrap(), "off");
        // A wrong password is refused.
        let wrong = a.replace(pg.password(), "wrong");
        assert!(psql_as_app(pg, &wrong, "SELECT 1").is_err());
    }

    #[test]
    fn psql_returns_output_and_reports_errors() {
        let pg = TestPostgres::shared();
        let db = pg.database_of(&pg.fresh_database());
        assert_eq!(pg.psql(&db, "SELECT 1 + 1").trim(), "2");
        assert_eq!(pg.psql(&db, "SHOW server_encoding").trim(), "UTF8");
        assert_eq!(pg.psql(&db, "SHOW fsync").trim(), "off");
        assert_eq!(pg.psql(&db, "SELECT current_user").trim(), "postgres");
        let err = pg.try_psql(&db, "SELECT no_such_column").unwrap_err();
        assert!(err.contains("no_such_column"), "{err}");
        let panicked = std::panic::catch_unwind(|| pg.psql(&db, "NOT SQL"));
        assert!(panicked.is_err());
    }

    #[test]
    fn a_stopped_server_starts_again_with_its_data_and_is_removed_when_dropped() {
        let pg = TestPostgres::start();
        assert_ne!(pg.port(), TestPostgres::shared().port());
        let url = pg.fresh_database();
        let db = pg.database_of(&url);
        psql_as_app(
            &pg,
            &url,
            "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)",
        )
        .unwrap();

        pg.stop();
        assert!(pg.try_psql(&db, "SELECT 1").is_err(), "stopped");
        assert!(psql_as_app(&pg, &url, "SELECT 1").is_err(), "stopped");
        pg.start_again();
        assert_eq!(pg.psql(&db, "SELECT x FROM kept").trim(), "42");
        assert_eq!(psql_as_app(&pg, &url, "SELECT x FROM kept").unwrap(), "42");

        let (dir, port) = (pg.dir.clone(), pg.port());
        drop(pg);
        assert!(!dir.exists(), "{} is removed", dir.display());
        // Nothing listens on its port any more.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
