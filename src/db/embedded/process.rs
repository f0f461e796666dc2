//! The processes of a cluster: the watchdog shell that owns each server (and cleans up after
//! it however this process ends), the account the server runs as, and what a server leaves in
//! its data directory (`postmaster.pid`, processes working there).

use std::ffi::{CString, OsStr};
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::{sleep, timeout};
use tracing::{debug, warn};

use super::binaries::{Bins, find_in_path};

/// The cluster's superuser, and the system user the server runs as when we are root.
pub(super) const SUPERUSER: &str = "postgres";
/// How long `start` waits for a server of the same cluster that is still shutting down.
pub(super) const PREVIOUS_SERVER_TIMEOUT: Duration = Duration::from_secs(15);
pub(super) const LOG_TAIL_LINES: usize = 40;
/// The watchdog writes this line into the server log before each start, so that an error shows
/// only what the failed start logged.
pub(super) const START_MARK: &str = "-- callingcard: starting PostgreSQL on";

/// Arguments: $1 server log, $2 directory to remove once the server is gone ('' keeps it),
/// $3 [`START_MARK`], then the server command, to which `-c port=N` is added. Stdin is the
/// lifeline: the line `start N` launches the server on port N, and end of file means "clean up
/// now", at any time.
pub(super) const WATCHDOG: &str = r#"
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

/// The unprivileged account the server runs as when this process is root.
#[derive(Debug, Clone, Copy)]
pub(super) struct ServerUser {
    pub(super) uid: u32,
    pub(super) gid: u32,
}

impl ServerUser {
    /// `None` unless we are root: otherwise the server simply runs as us.
    pub(super) fn for_this_process() -> Result<Option<ServerUser>> {
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

    pub(super) fn apply(self, cmd: &mut Command) {
        // std sets the group before the user (and drops supplementary groups when it does).
        cmd.gid(self.gid).uid(self.uid);
    }

    /// Whether this user may traverse every directory down to `dir`.
    pub(super) async fn can_enter(self, dir: &Path) -> bool {
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

pub(super) fn lookup_user(name: &str) -> Result<Option<ServerUser>> {
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

/// Gets a stale `postmaster.pid` out of the way. Postgres itself takes over a lock file whose
/// process is gone (and keeps its shared-memory check, so we leave those alone), but it refuses
/// a torn file, one whose pid now belongs to an unrelated process of its user, and to start while
/// children of a killed postmaster still hold the old shared memory: those we wait out.
pub(super) async fn wait_out_previous_server(pgdata: &Path) -> Result<()> {
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

/// What `postmaster.pid` says of a live server.
#[derive(Debug)]
pub(super) struct RunningServer {
    pub(super) pid: libc::pid_t,
    pub(super) port: u16,
    pub(super) status: ServerStatus,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum ServerStatus {
    Starting,
    Ready,
    Stopping,
}

/// The server running on `pgdata`, by its `postmaster.pid` (pid, data directory, start time,
/// port, socket directory, listen address, shared memory key, status), when that pid is alive
/// and works inside `pgdata`.
pub(super) fn running_server(pgdata: &Path) -> Result<Option<RunningServer>> {
    let pid_file = pgdata.join("postmaster.pid");
    let text = match std::fs::read_to_string(&pid_file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", pid_file.display())),
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let (Some(pid), Some(port)) = (
        lines.first().and_then(|l| l.parse::<libc::pid_t>().ok()),
        lines.get(3).and_then(|l| l.parse::<u16>().ok()),
    ) else {
        // Torn, or still being written by a server that is starting.
        return Ok(None);
    };
    let works_here =
        std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| same_path(&cwd, pgdata));
    if pid <= 0 || !works_here {
        return Ok(None);
    }
    let status = match lines.get(7).copied() {
        Some("ready") => ServerStatus::Ready,
        Some("stopping") => ServerStatus::Stopping,
        _ => ServerStatus::Starting,
    };
    Ok(Some(RunningServer { pid, port, status }))
}

/// The processes working inside `pgdata` (every process of a cluster does), as far as we may see.
pub(super) fn processes_in(pgdata: &Path) -> Vec<libc::pid_t> {
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

pub(super) fn remove_pid_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Starts the watchdog shell (see [`WATCHDOG`]); the server waits for `start PORT` on the
/// returned pipe.
pub(super) fn spawn_watchdog(
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
pub(super) async fn watchdog_output(watchdog: &mut Child) -> String {
    let Some(mut stdout) = watchdog.stdout.take() else {
        return String::new();
    };
    let mut text = String::new();
    let _ = timeout(Duration::from_secs(5), stdout.read_to_string(&mut text)).await;
    since_last_start(&text).to_owned()
}

pub(super) fn since_last_start(log: &str) -> &str {
    log.rfind(START_MARK).map_or(log, |at| &log[at..])
}

pub(super) fn log_tail(log: &Path) -> String {
    match std::fs::read(log) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = since_last_start(&text).lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", log.display()),
    }
}

pub(super) fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
