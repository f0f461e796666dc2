//! A private PostgreSQL cluster that this process starts, owns and stops.
//!
//! The service runs a kept cluster ([`LocalCluster::start`]) when it is given no `DATABASE_URL`,
//! and the tests run throwaway ones ([`LocalCluster::start_temporary`]). Either way the server
//! listens on 127.0.0.1 only, on a port picked at each start, with no unix socket, and trusts
//! every connection (`--auth=trust`): connect as the superuser `postgres`, no password.
//!
//! The postmaster is not our child: it runs under a tiny `/bin/sh` watchdog whose stdin is a pipe
//! that only this process holds. When the pipe closes, because [`LocalCluster::stop`] closed it,
//! the value was dropped, or this process died in any way (panic, abort, `kill -9`), the watchdog
//! asks the server for a fast shutdown, waits for it, and removes a temporary cluster's
//! directory. So no run, however it ends, leaves a postmaster or a data directory behind.
//!
//! `initdb` and `postgres` refuse to run as root. As root they run as the `postgres` system user,
//! which owns the data directory; the watchdog stays root so that it can remove what it must.

mod binaries;
mod data_dir;
mod process;

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin};
use tokio::time::{sleep, timeout};
use tokio_postgres::NoTls;
use tracing::{debug, info};
use uuid::Uuid;

use binaries::Bins;
use data_dir::{create_shared_dir, initdb, rotate_log, set_mode, short_hash};
use process::{
    SUPERUSER, ServerStatus, ServerUser, log_tail, processes_in, running_server, same_path,
    spawn_watchdog, wait_out_previous_server, watchdog_output,
};

/// Where a kept cluster goes when the `postgres` user cannot reach the requested directory.
const FALLBACK_ROOT: &str = "/var/lib/callingcard";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server on 127.0.0.1 that this process owns.
///
/// Dropping it without [`stop`](Self::stop) also shuts the server down (and removes a temporary
/// cluster), only without waiting for that to finish.
pub struct LocalCluster {
    port: u16,
    /// Holds the data directory (`pgdata`) and `server.log`.
    dir: PathBuf,
    log: PathBuf,
    watchdog: Child,
    /// The write end of the watchdog's stdin; closing it shuts the server down.
    lifeline: ChildStdin,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("port", &self.port)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LocalCluster {
    /// Starts a cluster kept under `data_dir` (initdb on first use, reused across restarts).
    pub async fn start(data_dir: &Path) -> Result<LocalCluster> {
        let user = ServerUser::for_this_process()?;
        let requested = std::path::absolute(data_dir)
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        if !requested.exists() {
            std::fs::create_dir_all(&requested)
                .with_context(|| format!("creating {}", requested.display()))?;
            // Whatever the umask, the server user must be able to reach its data inside.
            set_mode(&requested, 0o755)?;
        }
        let requested = std::fs::canonicalize(&requested)
            .with_context(|| format!("resolving {}", requested.display()))?;
        let dir = match user {
            Some(user) if !user.can_enter(&requested).await => {
                let fallback = Path::new(FALLBACK_ROOT).join(short_hash(requested.as_os_str()));
                info!(
                    requested = %requested.display(),
                    fallback = %fallback.display(),
                    "the postgres user cannot reach the requested data directory; \
                     keeping the cluster in the fallback directory instead"
                );
                create_shared_dir(Path::new(FALLBACK_ROOT))?;
                create_shared_dir(&fallback)?;
                fallback
            }
            _ => requested,
        };

        let pgdata = dir.join("pgdata");
        let existing = match std::fs::read_to_string(pgdata.join("PG_VERSION")) {
            Ok(version) => Some(version.trim().to_owned()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !pgdata.exists() => None,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("{} is not a PostgreSQL data directory", pgdata.display())
                });
            }
        };
        let bins = Bins::find(existing.as_deref())?;
        match &existing {
            Some(version) => {
                bins.ensure_major(version).await?;
                wait_out_previous_server(&pgdata).await?;
            }
            None => {
                // initdb beside the final place and rename, so that a crash half-way never
                // leaves something that looks like a cluster.
                let staging = dir.join("pgdata.initdb");
                initdb(&bins, user, &staging, false).await?;
                std::fs::rename(&staging, &pgdata)
                    .with_context(|| format!("renaming {} into place", staging.display()))?;
            }
        }

        let log = dir.join("server.log");
        rotate_log(&log);
        let mut settings = common_settings();
        settings.push(("max_connections", "100"));
        let (watchdog, lifeline) = spawn_watchdog(&bins, user, &dir, &log, None, &settings)?;
        let cluster = LocalCluster {
            port: 0,
            dir,
            log,
            watchdog,
            lifeline,
        };
        cluster.launch().await
    }

    /// The port of a server that another process (`callingcard serve`) runs on the cluster kept
    /// under `data_dir`, once it accepts connections; `None` when none runs there. Commands that
    /// work beside the service (migrate, create-superadmin) connect to it rather than start a
    /// server of their own, which the running one would not let them.
    pub async fn running_port(data_dir: &Path) -> Result<Option<u16>> {
        let Ok(requested) = std::fs::canonicalize(data_dir) else {
            return Ok(None);
        };
        let fallback = Path::new(FALLBACK_ROOT).join(short_hash(requested.as_os_str()));
        for dir in [requested, fallback] {
            let pgdata = dir.join("pgdata");
            let deadline = Instant::now() + READY_TIMEOUT;
            while let Some(server) = running_server(&pgdata)? {
                if server.status == ServerStatus::Stopping {
                    break;
                }
                let url = superuser_url(server.port, "postgres");
                let error = match probe(server.port, &url).await {
                    Ok(served) if same_path(Path::new(&served), &pgdata) => {
                        return Ok(Some(server.port));
                    }
                    Ok(served) => anyhow!("port {} is served by {served}", server.port),
                    Err(e) => e,
                };
                ensure!(
                    Instant::now() < deadline,
                    "PostgreSQL (pid {}) runs on {} but does not answer on port {}: {error:#}",
                    server.pid,
                    pgdata.display(),
                    server.port
                );
                sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(None)
    }

    /// Starts a throwaway cluster in a fresh temporary directory; it is stopped and its directory
    /// removed when this value is stopped OR when the process exits in any way (even a
    /// panic/abort/kill -9 of the test binary).
    pub async fn start_temporary() -> Result<LocalCluster> {
        let user = ServerUser::for_this_process()?;
        let bins = Bins::find(None)?;
        let name = format!("callingcard-pg-{}", Uuid::new_v4().simple());
        let mut dir = std::env::temp_dir().join(&name);
        create_shared_dir(&dir)?;
        if let Some(user) = user
            && !user.can_enter(&dir).await
        {
            let _ = std::fs::remove_dir(&dir);
            dir = Path::new(FALLBACK_ROOT).join(&name);
            info!(
                dir = %dir.display(),
                "the postgres user cannot reach the temporary directory; using the fallback"
            );
            create_shared_dir(Path::new(FALLBACK_ROOT))?;
            create_shared_dir(&dir)?;
        }
        let dir = match std::fs::canonicalize(&dir) {
            Ok(dir) => dir,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(e).with_context(|| format!("resolving {}", dir.display()));
            }
        };

        let log = dir.join("server.log");
        let mut settings = common_settings();
        settings.extend([
            // A throwaway cluster need not survive a power cut: skip the disk flushes.
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("max_connections", "200"),
        ]);
        // From here on the watchdog owns the directory, so even a kill -9 during initdb
        // leaves nothing behind.
        let (watchdog, lifeline) =
            match spawn_watchdog(&bins, user, &dir, &log, Some(&dir), &settings) {
                Ok(spawned) => spawned,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e);
                }
            };
        let cluster = LocalCluster {
            port: 0,
            dir,
            log,
            watchdog,
            lifeline,
        };
        if let Err(e) = initdb(&bins, user, &cluster.pgdata(), true).await {
            cluster.abandon().await;
            return Err(e);
        }
        cluster.launch().await
    }

    /// Connection URL of database `dbname` as the cluster's superuser, e.g.
    /// postgres://postgres@127.0.0.1:PORT/dbname
    pub fn url(&self, dbname: &str) -> String {
        superuser_url(self.port, dbname)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's processes (the postmaster and its children), e.g. for a test that freezes
    /// the server with SIGSTOP.
    pub fn processes(&self) -> Vec<libc::pid_t> {
        processes_in(&self.pgdata())
    }

    /// Fast shutdown (SIGINT to the postmaster), waits until it has exited.
    pub async fn stop(self) -> Result<()> {
        let LocalCluster {
            port,
            log,
            mut watchdog,
            lifeline,
            ..
        } = self;
        // End of file on its stdin makes the watchdog send SIGINT and wait for the postmaster.
        drop(lifeline);
        let status = match timeout(STOP_TIMEOUT, watchdog.wait()).await {
            Ok(status) => status.context("waiting for the PostgreSQL watchdog")?,
            Err(_) => bail!(
                "PostgreSQL on port {port} did not shut down within {} s; see {}",
                STOP_TIMEOUT.as_secs(),
                log.display()
            ),
        };
        if !status.success() {
            let tail = watchdog_output(&mut watchdog).await;
            bail!("PostgreSQL on port {port} exited with {status}; end of its log:\n{tail}");
        }
        Ok(())
    }

    fn pgdata(&self) -> PathBuf {
        self.dir.join("pgdata")
    }

    /// Tells the watchdog which port to use, and waits until the server answers queries.
    async fn launch(mut self) -> Result<LocalCluster> {
        match self.try_launch().await {
            Ok(()) => {
                debug!(port = self.port, dir = %self.dir.display(), "PostgreSQL is ready");
                Ok(self)
            }
            Err(e) => {
                self.abandon().await;
                Err(e)
            }
        }
    }

    async fn try_launch(&mut self) -> Result<()> {
        self.port = free_port()?;
        let start = format!("start {}\n", self.port);
        self.lifeline
            .write_all(start.as_bytes())
            .await
            .context("the PostgreSQL watchdog is gone")?;
        self.lifeline
            .flush()
            .await
            .context("the PostgreSQL watchdog is gone")?;

        let pgdata = self.pgdata();
        let url = self.url("postgres");
        let deadline = Instant::now() + READY_TIMEOUT;
        let last_error = loop {
            if let Some(status) = self.watchdog.try_wait()? {
                let tail = watchdog_output(&mut self.watchdog).await;
                bail!("PostgreSQL exited during startup ({status}); end of its log:\n{tail}");
            }
            let error = match probe(self.port, &url).await {
                Ok(served) if same_path(Path::new(&served), &pgdata) => return Ok(()),
                // Someone took the port between our pick and the server's bind: ours is about
                // to fail, and we must not mistake theirs for it.
                Ok(served) => anyhow!("port {} is served by another cluster ({served})", self.port),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                break error;
            }
            sleep(Duration::from_millis(50)).await;
        };
        bail!(
            "PostgreSQL did not accept connections on 127.0.0.1:{} within {} s (last error: \
             {last_error:#}); end of its log:\n{}",
            self.port,
            READY_TIMEOUT.as_secs(),
            log_tail(&self.log)
        )
    }

    /// Shuts down after a failed start, and waits a little so that a temporary directory is gone
    /// by the time the caller sees the error.
    async fn abandon(self) {
        let LocalCluster {
            mut watchdog,
            lifeline,
            ..
        } = self;
        drop(lifeline);
        let _ = timeout(Duration::from_secs(10), watchdog.wait()).await;
    }
}

/// Connection URL of database `dbname` as the superuser of the local cluster on `port`.
pub fn superuser_url(port: u16, dbname: &str) -> String {
    format!("postgres://{SUPERUSER}@127.0.0.1:{port}/{dbname}")
}

/// Settings of every cluster: TCP on 127.0.0.1 only; an empty list turns unix sockets off.
fn common_settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("listen_addresses", "127.0.0.1"),
        ("unix_socket_directories", ""),
    ]
}

fn free_port() -> Result<u16> {
    // The kernel picks an unused port; postgres binds it again right after we let go.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr().context("finding a free port")?.port())
}

/// Connects, runs `SELECT 1`, and returns the data directory of the server that answered.
async fn probe(port: u16, url: &str) -> Result<String> {
    // Cheap check first: no handshake until something listens.
    timeout(
        Duration::from_secs(1),
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)),
    )
    .await??;
    let (client, connection) =
        timeout(Duration::from_secs(5), tokio_postgres::connect(url, NoTls)).await??;
    let connection = tokio::spawn(connection);
    let row = timeout(
        Duration::from_secs(5),
        client.query_one("SELECT 1, current_setting('data_directory')", &[]),
    )
    .await??;
    drop(client);
    let _ = connection.await;
    ensure!(row.try_get::<_, i32>(0)? == 1, "SELECT 1 did not return 1");
    Ok(row.try_get(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use tokio::process::Command;

    async fn connect(url: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    async fn setting(client: &tokio_postgres::Client, name: &str) -> String {
        let row = client
            .query_one("SELECT current_setting($1)", &[&name])
            .await;
        row.unwrap().get(0)
    }

    fn assert_owned_by_server_user(pgdata: &Path) {
        use std::os::unix::fs::MetadataExt;
        let expected = match ServerUser::for_this_process().unwrap() {
            Some(user) => user.uid,
            // SAFETY: geteuid has no preconditions.
            None => unsafe { libc::geteuid() },
        };
        assert_eq!(std::fs::metadata(pgdata).unwrap().uid(), expected);
    }

    /// Removes a test's kept data directory however the test ends.
    struct RemoveOnDrop(PathBuf);

    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn test_dir(label: &str) -> RemoveOnDrop {
        RemoveOnDrop(
            std::env::temp_dir().join(format!("callingcard-{label}-{}", Uuid::new_v4().simple())),
        )
    }

    #[tokio::test]
    async fn temporary_cluster_answers_and_is_removed_on_stop() {
        let cluster = LocalCluster::start_temporary().await.unwrap();
        let dir = cluster.dir.clone();
        assert!(dir.join("pgdata/PG_VERSION").is_file());
        assert!(
            cluster
                .url("app")
                .ends_with(&format!(":{}/app", cluster.port()))
        );

        let client = connect(&cluster.url("postgres")).await;
        let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
        assert_eq!(setting(&client, "unix_socket_directories").await, "");
        assert_eq!(setting(&client, "listen_addresses").await, "127.0.0.1");
        assert_eq!(setting(&client, "fsync").await, "off");
        assert_eq!(setting(&client, "max_connections").await, "200");
        assert_eq!(setting(&client, "server_encoding").await, "UTF8");
        drop(client);
        assert_owned_by_server_user(&dir.join("pgdata"));

        cluster.stop().await.unwrap();
        assert!(!dir.exists(), "{} should be gone", dir.display());
    }

    #[tokio::test]
    async fn dropped_temporary_cluster_is_removed() {
        let cluster = LocalCluster::start_temporary().await.unwrap();
        let dir = cluster.dir.clone();
        drop(cluster);
        let deadline = Instant::now() + Duration::from_secs(30);
        while dir.exists() {
            assert!(
                Instant::now() < deadline,
                "{} is still there",
                dir.display()
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn kept_cluster_keeps_its_data_across_restarts() {
        let data_dir = test_dir("kept");
        let cluster = LocalCluster::start(&data_dir.0).await.unwrap();
        assert_eq!(cluster.dir, std::fs::canonicalize(&data_dir.0).unwrap());
        let client = connect(&cluster.url("postgres")).await;
        client
            .batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
            .await
            .unwrap();
        assert_eq!(setting(&client, "max_connections").await, "100");
        assert_eq!(setting(&client, "fsync").await, "on");
        drop(client);
        assert_owned_by_server_user(&cluster.pgdata());
        cluster.stop().await.unwrap();
        assert!(data_dir.0.join("server.log").is_file());

        let cluster = LocalCluster::start(&data_dir.0).await.unwrap();
        let client = connect(&cluster.url("postgres")).await;
        let v: String = client
            .query_one("SELECT v FROM kept", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, "still here");
        drop(client);
        cluster.stop().await.unwrap();
        assert!(
            data_dir.0.join("pgdata/PG_VERSION").is_file(),
            "a kept cluster stays on disk"
        );
    }

    #[tokio::test]
    async fn kept_cluster_starts_after_its_postmaster_was_killed() {
        let data_dir = test_dir("crashed");
        let cluster = LocalCluster::start(&data_dir.0).await.unwrap();
        let pid_file = cluster.pgdata().join("postmaster.pid");
        let pid: libc::pid_t = std::fs::read_to_string(&pid_file)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // SAFETY: plain kill(2) of the postmaster this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        assert!(cluster.stop().await.is_err(), "a killed server is reported");
        assert!(pid_file.exists(), "the crash left postmaster.pid behind");

        let cluster = LocalCluster::start(&data_dir.0).await.unwrap();
        let one: i32 = connect(&cluster.url("postgres"))
            .await
            .query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(one, 1);
        cluster.stop().await.unwrap();
    }

    #[tokio::test]
    async fn kept_cluster_ignores_a_pid_file_naming_an_unrelated_process() {
        let data_dir = test_dir("stalepid");
        LocalCluster::start(&data_dir.0)
            .await
            .unwrap()
            .stop()
            .await
            .unwrap();
        // A live process of the server's own user that is not a postmaster: the case postgres
        // itself refuses ("Is another postmaster running?"), as after a reboot reused the pid.
        let mut impostor = Command::new("sleep");
        impostor.arg("60").kill_on_drop(true);
        if let Some(user) = ServerUser::for_this_process().unwrap() {
            user.apply(&mut impostor);
        }
        let impostor = impostor.spawn().unwrap();
        let pid_file = data_dir.0.join("pgdata/postmaster.pid");
        let pgdata = data_dir.0.join("pgdata");
        let pid = impostor.id().unwrap();
        std::fs::write(&pid_file, format!("{pid}\n{}\n", pgdata.display())).unwrap();
        let cluster = LocalCluster::start(&data_dir.0).await.unwrap();
        cluster.stop().await.unwrap();
    }

    #[tokio::test]
    async fn root_falls_back_when_postgres_cannot_reach_the_data_dir() {
        if ServerUser::for_this_process().unwrap().is_none() {
            return; // only root hands the cluster to another user
        }
        let private = test_dir("private");
        std::fs::create_dir(&private.0).unwrap();
        set_mode(&private.0, 0o700).unwrap();
        let data_dir = private.0.join("data");
        let cluster = LocalCluster::start(&data_dir).await.unwrap();
        let fallback = RemoveOnDrop(cluster.dir.clone());
        assert!(
            fallback.0.starts_with(FALLBACK_ROOT),
            "{}",
            fallback.0.display()
        );
        let expected = short_hash(std::fs::canonicalize(&data_dir).unwrap().as_os_str());
        assert_eq!(fallback.0.file_name().unwrap().to_str().unwrap(), expected);
        cluster.stop().await.unwrap();
        // The same request finds the same cluster again.
        let cluster = LocalCluster::start(&data_dir).await.unwrap();
        assert_eq!(cluster.dir, fallback.0);
        cluster.stop().await.unwrap();
    }

    const CRASH_CHILD_ENV: &str = "CALLINGCARD_EMBEDDED_CRASH_CHILD";

    /// Run by `killed_owner_leaves_nothing_behind` in a child process, which it then kills.
    #[tokio::test]
    #[ignore = "helper process of killed_owner_leaves_nothing_behind"]
    async fn crash_child() {
        if std::env::var_os(CRASH_CHILD_ENV).is_none() {
            return;
        }
        let cluster = LocalCluster::start_temporary().await.unwrap();
        println!("CRASH-CHILD {} {}", cluster.port(), cluster.dir.display());
        sleep(Duration::from_secs(120)).await;
    }

    #[test]
    fn killed_owner_leaves_nothing_behind() {
        let test_path = module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, rest)| rest);
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                &format!("{test_path}::crash_child"),
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(CRASH_CHILD_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let line = stdout
            .lines()
            .map(Result::unwrap)
            .find(|line| line.starts_with("CRASH-CHILD "))
            .expect("the child started no cluster");
        let mut words = line.split(' ').skip(1);
        let port: u16 = words.next().unwrap().parse().unwrap();
        let dir = PathBuf::from(words.next().unwrap());
        assert!(dir.join("pgdata/PG_VERSION").is_file());
        assert!(std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok());

        child.kill().unwrap(); // SIGKILL: no destructor, no atexit
        child.wait().unwrap();

        let deadline = Instant::now() + Duration::from_secs(30);
        while dir.exists() || std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the cluster outlived its owner by 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
