//! The `callingcard` command: serve (default), migrate, openapi, create-superadmin.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use callingcard::{
    api,
    config::{self, Config},
    db::{Db, migrations},
    startup::{Application, Database, shutdown_signal},
    telemetry::logging::{self, LogFormat},
};

#[derive(Parser)]
#[command(
    name = "callingcard",
    version,
    about = "Digital business cards for companies"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the public cards (the default). Without DATABASE_URL, runs a local
    /// PostgreSQL cluster under DATA_DIR.
    Serve,
    /// Apply pending database migrations, then exit (beside a running `serve`, on its local
    /// cluster).
    Migrate,
    /// Print the OpenAPI spec (JSON) to standard output.
    Openapi,
    /// Create a platform superadmin (in the platform company, created on first use); works
    /// beside a running `serve`, on its local cluster.
    CreateSuperadmin {
        /// The superadmin's login.
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Platform Admin")]
        full_name: String,
        /// Read from SUPERADMIN_PASSWORD, or from standard input when unset.
        #[arg(long, env = "SUPERADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    return_large_buffers_to_the_system();
    let cli = parse_command_line();
    if let Some(Command::Openapi) = cli.command {
        println!("{}", api::spec_json());
        return Ok(());
    }
    logging::init(LogFormat::from_env()?);
    let config = Config::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => {
            let database = Database::open_beside_service(&config).await?;
            let password = config
                .database_app_password
                .as_ref()
                .map(|s| s.expose().to_owned());
            let result = migrations::run(&database.owner, password.as_deref()).await;
            database.close().await;
            result
        }
        Command::CreateSuperadmin {
            email,
            full_name,
            password,
        } => {
            let password = match password {
                Some(p) => p,
                None => {
                    eprintln!("Password for {email} (then Enter):");
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let database = Database::open_beside_service(&config).await?;
            let app_password = config
                .database_app_password
                .as_ref()
                .map(|s| s.expose().to_owned());
            let result = async {
                migrations::run(&database.owner, app_password.as_deref()).await?;
                let db = Db::connect_as_app(&database.owner, app_password.as_deref(), 2)?;
                api::users::create_superadmin(&db, &email, &password, &full_name).await
            }
            .await;
            database.close().await;
            let user_id = result?;
            println!("superadmin {email} created (user id {user_id})");
            Ok(())
        }
        Command::Openapi => unreachable!("handled before configuration is read"),
    }
}

/// The command line, each `--help` (but `openapi`'s, which reads nothing) ending with the
/// environment variables the command reads.
fn parse_command_line() -> Cli {
    let env_help = config::env_help();
    let mut command = Cli::command().after_help(env_help.clone());
    for name in ["serve", "migrate", "create-superadmin"] {
        command = command.mut_subcommand(name, |sub| sub.after_help(env_help.clone()));
    }
    Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
}

/// Image decodes and password checks allocate buffers of megabytes. glibc raises its mmap
/// threshold each time such a buffer is freed, after which the next ones come from the heap and
/// stay with the process after a burst (RSS held at several times idle). A fixed threshold keeps
/// every large buffer mapped on its own and handed back when freed.
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter, under the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
