//! Finding the PostgreSQL server binaries: `POSTGRES_BIN_DIR`, else the highest version under
//! /usr/lib/postgresql (or the one an existing cluster was made with), else `PATH`.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail, ensure};
use tokio::process::Command;

const NOT_FOUND: &str = "PostgreSQL server binaries (initdb, postgres) not found. Install them \
     with `sudo apt-get install -y postgresql` (Debian/Ubuntu) or set POSTGRES_BIN_DIR, or set \
     DATABASE_URL to use an existing server.";

#[derive(Debug, Clone)]
pub(super) struct Bins {
    pub(super) initdb: PathBuf,
    pub(super) postgres: PathBuf,
}

impl Bins {
    /// `POSTGRES_BIN_DIR`, else the highest version under /usr/lib/postgresql (or `major`, the
    /// version an existing cluster was made with, when it is installed), else `PATH`.
    pub(super) fn find(major: Option<&str>) -> Result<Bins> {
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
    pub(super) async fn ensure_major(&self, cluster_major: &str) -> Result<()> {
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

pub(super) fn find_bin_dir(
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

pub(super) fn has_server_bins(dir: &Path) -> bool {
    ["initdb", "postgres"]
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

pub(super) fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// "postgres (PostgreSQL) 15.20 (Debian …)" → "15"; "… 9.6.24" → "9.6" (PG_VERSION's spelling).
pub(super) fn major_version(version_output: &str) -> Option<String> {
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

pub(super) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path_var)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of the test's own, removed however the test ends.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn test_dir(label: &str) -> TempDir {
        TempDir(std::env::temp_dir().join(format!(
            "callingcard-{label}-{}",
            uuid::Uuid::new_v4().simple()
        )))
    }

    fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
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
