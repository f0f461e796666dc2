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

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::{sleep, timeout};
use tokio_postgres::NoTls;
use tracing::{debug, info, warn};
use uuid::Uuid;

const NOT_FOUND: &str = "PostgreSQL server binaries (initdb, postgres) not found. Install them \
     with `sudo apt-get install -y postgresql` (Debian/Ubuntu) or set POSTGRES_BIN_DIR, or set \
     DATABASE_URL to use an existing server.";

/// The cluster's superuser, and the system user the server runs as when we are root.
const SUPERUSER: &str = "postgres";
/// Where a kept cluster goes when the `postgres` user cannot reach the requested directory.
const FALLBACK_ROOT: &str = "/var/lib/callingcard";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `start` waits for a server of the same cluster that is still shutting down.
const PREVIOUS_SERVER_TIMEOUT: Duration = Duration::from_secs(15);
/// A kept cluster's log is appended to across restarts; past this size it starts over.
const LOG_ROTATE_BYTES: u64 = 16 << 20;
const LOG_TAIL_LINES: usize = 40;
/// The watchdog writes this line into the server log before each start, so that an error shows
/// only what the failed start logged.
const START_MARK: &str = "-- callingcard: starting PostgreSQL on";

/// Arguments: $1 server log, $2 directory to remove once the server is gone ('' keeps it),
/// $3 [`START_MARK`], then the server command, to which `-c port=N` is added. Stdin is the
/// lifeline: the line `start N` launches the server on port N, and end of file means "clean up
/// now", at any time.
const WATCHDOG: &str = r#"
exec 2>&1
# Our reader may be gone (the owner died): writing there must not kill us before the cleanup.
trap '' PIPE
log=$1 dir=$2 mark=$3
shift 3
exec 3<&0 </dev/null
st=0
# Until the server runs, signals must not cut the cleanup short.
trap '' INT TERM HUP
if read -r word port <&3 && [ "$word" = start ]; then
  # From now on they mean: shut the server down. (The server sets its own handlers.)
  pg=
  trap '[ -z "$pg" ] || kill -INT "$pg" 2>/dev/null' INT TERM HUP
  printf '%s port %s\n' "$mark" "$port" >>"$log"
  "$@" -c "port=$port" 3<&- >>"$log" 2>&1 &
  pg=$!
  ( while read -r _ <&3; do :; done; kill -INT "$pg" 2>/dev/null ) &
  reader=$!
  wait "$pg"; st=$?
  # A trap interrupts wait (status > 128) while the server may still be shutting down.
  while [ "$st" -gt 128 ] && kill -0 "$pg" 2>/dev/null; do wait "$pg"; st=$?; done
  kill "$reader" 2>/dev/null
  [ "$st" -eq 0 ] || tail -n 40 -- "$log" 2>/dev/null
fi
[ -z "$dir" ] || rm -rf -- "$dir"
exit "$st"
"#;

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
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{dbname}", self.port)
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

/// Settings of every cluster: TCP on 127.0.0.1 only; an empty list turns unix sockets off.
fn common_settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("listen_addresses", "127.0.0.1"),
        ("unix_socket_directories", ""),
    ]
}

/// The unprivileged account the server runs as when this process is root.
#[derive(Debug, Clone, Copy)]
struct ServerUser {
    uid: u32,
    gid: u32,
}

impl ServerUser {
    /// `None` unless we are root: otherwise the server simply runs as us.
    fn for_this_process() -> Result<Option<ServerUser>> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        match lookup_user(SUPERUSER)? {
            Some(user) => Ok(Some(user)),
            None => bail!(
                "running as root, but there is no `{SUPERUSER}` system user to run PostgreSQL as \
                 (initdb and postgres refuse to run as root). Installing PostgreSQL creates it: \
                 `apt-get install -y postgresql`"
            ),
        }
    }

    fn apply(self, cmd: &mut Command) {
        // std sets the group before the user (and drops supplementary groups when it does).
        cmd.gid(self.gid).uid(self.uid);
    }

    /// Whether this user may traverse every directory down to `dir`.
    async fn can_enter(self, dir: &Path) -> bool {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", r#"cd -- "$1""#, "sh"])
            .arg(dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.apply(&mut cmd);
        matches!(cmd.status().await, Ok(status) if status.success())
    }
}

fn lookup_user(name: &str) -> Result<Option<ServerUser>> {
    let c_name = CString::new(name)?;
    // getpwnam_r rather than getpwnam: tests start clusters from several threads at once.
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    loop {
        // SAFETY: passwd is plain data; all-zero is a valid value that getpwnam_r overwrites.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the duration of the call and buf.len() is its size.
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc))
                .with_context(|| format!("looking up the `{name}` user"));
        }
        return Ok((!found.is_null()).then_some(ServerUser {
            uid: entry.pw_uid,
            gid: entry.pw_gid,
        }));
    }
}

#[derive(Debug, Clone)]
struct Bins {
    initdb: PathBuf,
    postgres: PathBuf,
}

impl Bins {
    /// `POSTGRES_BIN_DIR`, else the highest version under /usr/lib/postgresql (or `major`, the
    /// version an existing cluster was made with, when it is installed), else `PATH`.
    fn find(major: Option<&str>) -> Result<Bins> {
        let dir = find_bin_dir(
            std::env::var_os("POSTGRES_BIN_DIR").filter(|dir| !dir.is_empty()),
            Path::new("/usr/lib/postgresql"),
            std::env::var_os("PATH"),
            major,
        )?;
        Ok(Bins {
            initdb: dir.join("initdb"),
            postgres: dir.join("postgres"),
        })
    }

    /// A cluster only opens with the major version that created it; say so plainly.
    async fn ensure_major(&self, cluster_major: &str) -> Result<()> {
        let out = Command::new(&self.postgres)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {} --version", self.postgres.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(server_major) = major_version(&text) else {
            bail!(
                "cannot tell the version of {} from {text:?}",
                self.postgres.display()
            );
        };
        ensure!(
            server_major == cluster_major,
            "the cluster was created by PostgreSQL {cluster_major} but {} is version \
             {server_major}: install postgresql-{cluster_major} (or point POSTGRES_BIN_DIR at it)",
            self.postgres.display()
        );
        Ok(())
    }
}

fn find_bin_dir(
    env_dir: Option<OsString>,
    versioned_root: &Path,
    path_var: Option<OsString>,
    major: Option<&str>,
) -> Result<PathBuf> {
    if let Some(dir) = env_dir {
        let dir = PathBuf::from(dir);
        ensure!(
            has_server_bins(&dir),
            "POSTGRES_BIN_DIR={} does not contain initdb and postgres",
            dir.display()
        );
        return Ok(dir);
    }
    let mut versions: Vec<(Vec<u32>, String, PathBuf)> = std::fs::read_dir(versioned_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let key = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            has_server_bins(&bin).then_some((key, name, bin))
        })
        .collect();
    versions.sort();
    if let Some(pos) = versions
        .iter()
        .position(|(_, name, _)| Some(name.as_str()) == major)
    {
        return Ok(versions.swap_remove(pos).2);
    }
    if let Some((_, _, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Some(path_var) = path_var
        && let Some(dir) = std::env::split_paths(&path_var).find(|dir| has_server_bins(dir))
    {
        return Ok(dir);
    }
    bail!(NOT_FOUND)
}

fn has_server_bins(dir: &Path) -> bool {
    ["initdb", "postgres"]
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// "postgres (PostgreSQL) 15.20 (Debian …)" → "15"; "… 9.6.24" → "9.6" (PG_VERSION's spelling).
fn major_version(version_output: &str) -> Option<String> {
    let number = version_output
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = number
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty());
    let first = parts.next()?;
    if first.parse::<u32>().ok()? >= 10 {
        Some(first.to_owned())
    } else {
        Some(format!("{first}.{}", parts.next()?))
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path_var)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

async fn initdb(
    bins: &Bins,
    user: Option<ServerUser>,
    pgdata: &Path,
    throwaway: bool,
) -> Result<()> {
    // C.UTF-8 sorts like C but knows every character; some systems lack it.
    let stderr = match run_initdb(bins, user, pgdata, throwaway, "C.UTF-8").await? {
        Ok(()) => return Ok(()),
        Err(stderr) if stderr.contains("locale") => {
            debug!(%stderr, "initdb rejected C.UTF-8; retrying with the C locale");
            match run_initdb(bins, user, pgdata, throwaway, "C").await? {
                Ok(()) => return Ok(()),
                Err(stderr) => stderr,
            }
        }
        Err(stderr) => stderr,
    };
    bail!("initdb failed for {}:\n{stderr}", pgdata.display())
}

/// Runs initdb into a fresh `pgdata`; `Ok(Err(output))` when initdb itself failed.
async fn run_initdb(
    bins: &Bins,
    user: Option<ServerUser>,
    pgdata: &Path,
    throwaway: bool,
    locale: &str,
) -> Result<Result<(), String>> {
    fresh_private_dir(pgdata, user)?;
    let mut cmd = Command::new(&bins.initdb);
    cmd.arg("-D")
        .arg(pgdata)
        .args(["-U", SUPERUSER, "--auth=trust", "--encoding=UTF8"])
        .arg(format!("--locale={locale}"))
        .current_dir(pgdata.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if throwaway {
        cmd.arg("--no-sync");
    }
    if let Some(user) = user {
        user.apply(&mut cmd);
    }
    let out = cmd
        .output()
        .await
        .with_context(|| format!("running {}", bins.initdb.display()))?;
    if out.status.success() {
        return Ok(Ok(()));
    }
    // Its chatter goes to stdout, its complaints to stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout)
    } else {
        stderr
    };
    Ok(Err(format!("({}) {}", out.status, text.trim())))
}

/// An empty directory only the server user may use, as initdb and postgres insist.
fn fresh_private_dir(path: &Path, user: Option<ServerUser>) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    std::fs::create_dir(path).with_context(|| format!("creating {}", path.display()))?;
    set_mode(path, 0o700)?;
    if let Some(user) = user {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .with_context(|| format!("handing {} to the postgres user", path.display()))?;
    }
    Ok(())
}

/// A directory of ours (root-owned when we are root) that the server user may enter.
fn create_shared_dir(path: &Path) -> Result<()> {
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    set_mode(path, 0o755)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// FNV-1a: stable across Rust releases, unlike std's hasher, so the fallback path stays put.
fn short_hash(path: &OsStr) -> String {
    let hash = path
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{:012x}", hash >> 16)
}

fn rotate_log(log: &Path) {
    if std::fs::metadata(log).is_ok_and(|meta| meta.len() > LOG_ROTATE_BYTES) {
        let _ = std::fs::rename(log, log.with_extension("log.1"));
    }
}

/// Gets a stale `postmaster.pid` out of the way. Postgres itself takes over a lock file whose
/// process is gone (and keeps its shared-memory check, so we leave those alone), but it refuses
/// a torn file, one whose pid now belongs to an unrelated process of its user, and to start while
/// children of a killed postmaster still hold the old shared memory: those we wait out.
async fn wait_out_previous_server(pgdata: &Path) -> Result<()> {
    let pid_file = pgdata.join("postmaster.pid");
    let deadline = Instant::now() + PREVIOUS_SERVER_TIMEOUT;
    loop {
        let text = match std::fs::read_to_string(&pid_file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", pid_file.display())),
        };
        let pid = text
            .lines()
            .next()
            .and_then(|line| line.trim().parse::<libc::pid_t>().ok());
        let Some(pid) = pid.filter(|&pid| pid > 0) else {
            warn!(path = %pid_file.display(), "removing a torn postmaster.pid");
            return remove_pid_file(&pid_file);
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let orphans = processes_in(pgdata);
            if orphans.is_empty() || Instant::now() >= deadline {
                return Ok(());
            }
            debug!(
                ?orphans,
                "waiting for processes of a killed postmaster to exit"
            );
            sleep(Duration::from_millis(100)).await;
            continue;
        }
        match std::fs::read_link(format!("/proc/{pid}/cwd")) {
            // Every process of a cluster works inside its data directory: this one is ours,
            // perhaps still shutting down after its LocalCluster was dropped.
            Ok(cwd) if same_path(&cwd, pgdata) => {
                ensure!(
                    Instant::now() < deadline,
                    "PostgreSQL (pid {pid}) is already running on {}; stop it first",
                    pgdata.display()
                );
                sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => {
                warn!(
                    pid,
                    path = %pid_file.display(),
                    "postmaster.pid names an unrelated process; removing it"
                );
                return remove_pid_file(&pid_file);
            }
            // Not Linux, or not ours to inspect: postgres will judge.
            Err(_) => return Ok(()),
        }
    }
}

/// The processes working inside `pgdata` (every process of a cluster does), as far as we may see.
fn processes_in(pgdata: &Path) -> Vec<libc::pid_t> {
    let (Ok(pgdata), Ok(entries)) = (std::fs::canonicalize(pgdata), std::fs::read_dir("/proc"))
    else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == pgdata))
        .collect()
}

fn remove_pid_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Starts the watchdog shell (see [`WATCHDOG`]); the server waits for `start PORT` on the
/// returned pipe.
fn spawn_watchdog(
    bins: &Bins,
    user: Option<ServerUser>,
    dir: &Path,
    log: &Path,
    remove_on_exit: Option<&Path>,
    settings: &[(&str, &str)],
) -> Result<(Child, ChildStdin)> {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", WATCHDOG, "callingcard-pg-watchdog"])
        .arg(log)
        .arg(remove_on_exit.map_or(OsStr::new(""), Path::as_os_str))
        .arg(START_MARK);
    if let Some(user) = user {
        // The watchdog stays root (it may have to remove root-made files); only the server
        // drops to the postgres user. setpriv execs, so the shell's $! is the postmaster.
        let setpriv = find_in_path("setpriv").ok_or_else(|| {
            anyhow!("running as root needs `setpriv` (util-linux) to start PostgreSQL as postgres")
        })?;
        cmd.arg(setpriv)
            .arg(format!("--reuid={}", user.uid))
            .arg(format!("--regid={}", user.gid))
            .args(["--clear-groups", "--"]);
    }
    cmd.arg(&bins.postgres).arg("-D").arg(dir.join("pgdata"));
    for (name, value) in settings {
        cmd.arg("-c").arg(format!("{name}={value}"));
    }
    cmd.current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C meant for us must not kill the watchdog before it
        // has cleaned up; it learns of our end through the pipe instead.
        .process_group(0);
    let mut watchdog = cmd
        .spawn()
        .context("starting the PostgreSQL watchdog (/bin/sh)")?;
    let lifeline = watchdog
        .stdin
        .take()
        .context("the PostgreSQL watchdog has no stdin pipe")?;
    Ok((watchdog, lifeline))
}

/// What the watchdog printed after it exited: the end of the server log if the server failed.
async fn watchdog_output(watchdog: &mut Child) -> String {
    let Some(mut stdout) = watchdog.stdout.take() else {
        return String::new();
    };
    let mut text = String::new();
    let _ = timeout(Duration::from_secs(5), stdout.read_to_string(&mut text)).await;
    since_last_start(&text).to_owned()
}

fn since_last_start(log: &str) -> &str {
    log.rfind(START_MARK).map_or(log, |at| &log[at..])
}

fn log_tail(log: &Path) -> String {
    match std::fs::read(log) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = since_last_start(&text).lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", log.display()),
    }
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

fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

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

    #[test]
    fn bin_dir_search_order() {
        let root = test_dir("bins");
        let make = |dir: &Path| {
            std::fs::create_dir_all(dir).unwrap();
            for name in ["initdb", "postgres"] {
                std::fs::write(dir.join(name), "#!/bin/sh\n").unwrap();
                set_mode(&dir.join(name), 0o755).unwrap();
            }
        };
        let versioned = root.0.join("lib");
        for version in ["9.6", "13", "15"] {
            make(&versioned.join(version).join("bin"));
        }
        std::fs::create_dir_all(versioned.join("16/bin")).unwrap(); // no binaries: skipped
        let on_path = root.0.join("path");
        make(&on_path);
        let env_dir = root.0.join("env");
        make(&env_dir);
        let path_var = Some(on_path.clone().into_os_string());

        let found = |env: Option<&Path>, lib: &Path, want: Option<&str>| {
            find_bin_dir(
                env.map(|dir| dir.as_os_str().to_owned()),
                lib,
                path_var.clone(),
                want,
            )
        };
        assert_eq!(found(Some(&env_dir), &versioned, None).unwrap(), env_dir);
        assert!(found(Some(&root.0), &versioned, None).is_err());
        assert_eq!(
            found(None, &versioned, None).unwrap(),
            versioned.join("15/bin")
        );
        assert_eq!(
            found(None, &versioned, Some("13")).unwrap(),
            versioned.join("13/bin")
        );
        assert_eq!(
            found(None, &versioned, Some("12")).unwrap(),
            versioned.join("15/bin")
        );
        assert_eq!(found(None, &root.0.join("none"), None).unwrap(), on_path);
        let missing = find_bin_dir(None, &root.0.join("none"), None, None).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("apt-get install -y postgresql"),
            "{missing}"
        );
    }

    #[test]
    fn major_versions_read_like_pg_version() {
        let major = |text| major_version(text);
        assert_eq!(
            major("postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)").as_deref(),
            Some("15")
        );
        assert_eq!(
            major("postgres (PostgreSQL) 9.6.24").as_deref(),
            Some("9.6")
        );
        assert_eq!(
            major("postgres (PostgreSQL) 17beta2").as_deref(),
            Some("17")
        );
        assert_eq!(major("nonsense"), None);
    }
}
