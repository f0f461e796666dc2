//! A cluster's directories: initdb into a private data directory, the shared directories around
//! it, the fallback path, the server log.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::process::Command;
use tracing::debug;

use super::binaries::Bins;
use super::process::{SUPERUSER, ServerUser};

/// A kept cluster's log is appended to across restarts; past this size it starts over.
const LOG_ROTATE_BYTES: u64 = 16 << 20;

pub(super) async fn initdb(
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
pub(super) async fn run_initdb(
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
pub(super) fn fresh_private_dir(path: &Path, user: Option<ServerUser>) -> Result<()> {
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
pub(super) fn create_shared_dir(path: &Path) -> Result<()> {
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    set_mode(path, 0o755)
}

pub(super) fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// FNV-1a: stable across Rust releases, unlike std's hasher, so the fallback path stays put.
pub(super) fn short_hash(path: &OsStr) -> String {
    let hash = path
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{:012x}", hash >> 16)
}

pub(super) fn rotate_log(log: &Path) {
    if std::fs::metadata(log).is_ok_and(|meta| meta.len() > LOG_ROTATE_BYTES) {
        let _ = std::fs::rename(log, log.with_extension("log.1"));
    }
}
