//! The `callingcard` command: serve (default), migrate, openapi, create-superadmin,
//! import-employees.

use std::{path::Path, time::Duration};

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use callingcard::{
    api,
    config::{self, Config},
    db::{Db, DbError, Tenant, migrations},
    model::{
        self,
        audit::AuditContext,
        employee_import::{self, ImportError, Progress, RowOutcome},
    },
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
    /// Import a company's employees from a CSV file (header row: full_name, email, job_title,
    /// phone, whatsapp, photo_url, bio, social_links.<name>); works beside a running `serve`,
    /// on its local cluster. Exits with 1 when rows failed (the others are imported).
    ImportEmployees {
        /// The company's slug.
        #[arg(long)]
        company: String,
        /// The CSV file.
        file: std::path::PathBuf,
        /// Check and report only: nothing is written.
        #[arg(long)]
        dry_run: bool,
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
        Command::ImportEmployees {
            company,
            file,
            dry_run,
        } => {
            let database = Database::open_beside_service(&config).await?;
            let app_password = config
                .database_app_password
                .as_ref()
                .map(|s| s.expose().to_owned());
            let result = import_employees(
                &database.owner,
                app_password.as_deref(),
                &company,
                &file,
                dry_run,
            )
            .await;
            database.close().await;
            if !result? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Openapi => unreachable!("handled before configuration is read"),
    }
}

/// The whole import is one transaction: a file of 10,000 rows on a busy database may take a
/// while, but not forever.
const IMPORT_DEADLINE: Duration = Duration::from_secs(600);

/// Imports `file` into the company `company_slug`; `false` when rows were in error.
async fn import_employees(
    owner: &tokio_postgres::Config,
    app_password: Option<&str>,
    company_slug: &str,
    file: &Path,
    dry_run: bool,
) -> anyhow::Result<bool> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let parsed = employee_import::parse_csv(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    for column in &parsed.ignored_columns {
        eprintln!("ignoring the column `{column}`: it is not an employee field");
    }
    let db = Db::connect_as_app(owner, app_password, 2)?.with_deadline(IMPORT_DEADLINE);
    let slug = company_slug.to_owned();
    let company_id = db
        .read_public(async |tx| model::card::company_of_slug(&tx, &slug).await)
        .await?
        .with_context(|| format!("no company has the slug `{company_slug}`"))?;
    let tenant = Tenant::operator_in(company_id);
    let audit = AuditContext::new(None, None, None, Some("callingcard import-employees"));

    let bar = ProgressBar::new(parsed.rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({elapsed})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(if dry_run { "checking" } else { "importing" });
    let mut on_progress = |p: Progress| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
    };
    let rows = &parsed.rows;
    let report = db
        .write(&tenant, async |tx| {
            employee_import::import(&tx, rows, dry_run, company_id, &audit, &mut on_progress).await
        })
        .await;
    bar.finish_and_clear();
    let report = match report {
        Ok(report) => report,
        Err(ImportError::PlanFull {
            plan_title,
            limit,
            existing,
            creating,
        }) => anyhow::bail!(
            "nothing imported: the {plan_title} plan allows {limit} employees; the company has \
             {existing} and the file would create {creating}"
        ),
        Err(ImportError::Db(DbError::Timeout(d))) => {
            anyhow::bail!("nothing imported: the import took longer than {d:?}")
        }
        Err(e) => anyhow::bail!("nothing imported: {e}"),
    };
    for row in &report.rows {
        if row.outcome == RowOutcome::Error {
            for p in &row.problems {
                let field = p.field.as_deref().unwrap_or("row");
                println!("row {}: {field}: {} ({})", row.row, p.detail, p.code);
            }
        }
    }
    let t = report.totals;
    let verb = if dry_run { "would be" } else { "were" };
    println!(
        "{} rows: {} created, {} updated, {} unchanged, {} in error ({verb} imported into {})",
        t.rows, t.created, t.updated, t.unchanged, t.errors, report.company_slug
    );
    Ok(t.errors == 0)
}

/// The command line, each `--help` (but `openapi`'s, which reads nothing) ending with the
/// environment variables the command reads.
fn parse_command_line() -> Cli {
    let env_help = config::env_help();
    let mut command = Cli::command().after_help(env_help.clone());
    for name in ["serve", "migrate", "create-superadmin", "import-employees"] {
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
