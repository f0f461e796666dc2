//! The `callingcard` binary itself: with no DATABASE_URL it runs its own PostgreSQL cluster under
//! DATA_DIR, keeps data across restarts, and stops cleanly (cluster included) on SIGTERM/SIGINT;
//! `create-superadmin` works beside it; its log file is plain text; each `--help` lists the
//! environment.
//!
//! This test runs the built binary as a child process with a cluster of its own: that cluster is
//! what it checks, so it cannot use the shared one.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data_dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_callingcard"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("JWT_SECRET")
        .env("DATA_DIR", data_dir)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting callingcard serve")
}

async fn wait_healthy(client: &reqwest::Client, base: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(resp) = client.get(format!("{base}/api/health")).send().await
            && resp.status() == 200
        {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "callingcard serve exited early"
        );
        assert!(
            Instant::now() < deadline,
            "callingcard serve did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn stop(child: &mut Child, signal: libc::c_int) {
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "exit status after signal {signal}: {status}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "callingcard serve did not stop on signal {signal}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running postmaster keeps `postmaster.pid` in its data directory; a clean stop removes it.
fn postmaster_running(data_dir: &Path) -> bool {
    data_dir.join("postgres/pgdata/postmaster.pid").exists()
}

#[tokio::test]
async fn serves_with_its_own_cluster_and_keeps_data_across_restarts() {
    // Under the temporary directory: reachable by the postgres user when we run as root.
    let data_dir = std::env::temp_dir().join(format!(
        "callingcard-serve-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&data_dir).unwrap();
    let client = reqwest::Client::new();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut first = start(&data_dir, port);
    wait_healthy(&client, &base, &mut first).await;
    let signup = client
        .post(format!("{base}/api/auth/signup"))
        .json(
            &json!({"email": "keep@example.com", "password": "sequoia-lantern-harbor-64", "full_name": "Kept"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let token: serde_json::Value = signup.json().await.unwrap();
    stop(&mut first, libc::SIGTERM);
    assert!(
        data_dir.join("postgres/pgdata/PG_VERSION").exists(),
        "the cluster lives under DATA_DIR"
    );
    assert!(
        !postmaster_running(&data_dir),
        "the local cluster must stop with the service"
    );
    assert!(data_dir.join("jwt_secret").exists());

    // Second run: same cluster, same data, same development JWT secret.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut second = start(&data_dir, port);
    wait_healthy(&client, &base, &mut second).await;
    let me = client
        .get(format!("{base}/api/auth/me"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        200,
        "a token from before the restart still works"
    );
    let login = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "keep@example.com", "password": "sequoia-lantern-harbor-64"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    stop(&mut second, libc::SIGINT);
    assert!(!postmaster_running(&data_dir));
    let _ = std::fs::remove_dir_all(&data_dir);
}

fn temp_data_dir(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "callingcard-{label}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `create-superadmin` while `serve` runs on the same DATA_DIR: it uses the service's cluster
/// rather than failing to start its own. The service's log, written to a file, is plain text
/// and starts by saying where to go.
#[tokio::test]
async fn superadmin_is_created_beside_the_running_service_and_file_logs_are_plain() {
    let data_dir = temp_data_dir("beside");
    let logs = temp_data_dir("beside-logs");
    let log_path = logs.join("serve.log");
    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_callingcard"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("JWT_SECRET")
        .env_remove("NO_COLOR")
        .env("DATA_DIR", &data_dir)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting callingcard serve");
    wait_healthy(&client, &base, &mut serve).await;

    let log = std::fs::read_to_string(&log_path).unwrap();
    let url = format!("http://localhost:{port}");
    assert!(
        log.contains(&format!("listening on {url}, API docs at {url}/docs")),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "ANSI codes in a log file: {log:?}");

    let created = Command::new(env!("CARGO_BIN_EXE_callingcard"))
        .args(["create-superadmin", "--email", "root@example.com"])
        .env_remove("DATABASE_URL")
        .env_remove("JWT_SECRET")
        .env("DATA_DIR", &data_dir)
        .env("SUPERADMIN_PASSWORD", "granite-wombat-lagoon-93")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(
        created.status.success(),
        "create-superadmin beside serve failed: {}{}",
        stdout,
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(
        stdout.contains("superadmin root@example.com created"),
        "{stdout}"
    );
    assert!(
        serve.try_wait().unwrap().is_none(),
        "serve still runs after create-superadmin"
    );

    let login = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "root@example.com", "password": "granite-wombat-lagoon-93"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.status(),
        200,
        "the new superadmin logs in to the service"
    );
    stop(&mut serve, libc::SIGTERM);
    assert!(!postmaster_running(&data_dir));
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(&logs);
}

/// `--help` of the binary and of each command that reads the environment lists its variables.
#[test]
fn every_help_names_the_environment_variables() {
    let listed = callingcard::config::ENV_VARS
        .iter()
        .chain(callingcard::config::PROCESS_ENV_VARS);
    let names: Vec<&str> = listed.map(|(name, _)| *name).collect();
    for essential in [
        "DATABASE_URL",
        "CORS_ORIGINS",
        "PUBLIC_BASE_URL",
        "RUST_LOG",
    ] {
        assert!(names.contains(&essential), "{essential}");
    }
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["create-superadmin", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_callingcard"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        for name in &names {
            assert!(
                help.contains(name),
                "{args:?} --help does not name {name}:\n{help}"
            );
        }
        if args[0] == "create-superadmin" {
            assert!(help.contains("SUPERADMIN_PASSWORD"), "{help}");
        }
    }
}
