//! The `org-service` binary: parse the command line, load `.env`, read the configuration, and
//! serve (default), migrate, seed the demo data, or verify and export audit logs.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use org_service::audit_cli;
use org_service::config::{Config, LogFormat, StoreConfig};
use org_service::domain::{TenantLayout, TimeRange};
use org_service::startup::App;
use org_service::storage::{self, Role};

/// Multi-tenant organization management service.
#[derive(Debug, Parser)]
#[command(name = "org-service", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to bind.
    #[arg(long, global = true, env = "HOST")]
    host: Option<String>,
    /// Port to bind.
    #[arg(long, global = true, env = "PORT")]
    port: Option<String>,
    /// MongoDB connection string; without one, the embedded store is used.
    #[arg(long, global = true, env = "MONGODB_URL", hide_env_values = true)]
    mongodb_url: Option<String>,
    /// Embedded store file.
    #[arg(long, global = true, env = "DATABASE_PATH")]
    database_path: Option<String>,
    /// pretty or json.
    #[arg(long, global = true, env = "LOG_FORMAT")]
    log_format: Option<String>,
}

impl Cli {
    /// The value clap resolved for a variable that has a flag (the flag, else the
    /// environment), `None` for the others, which the configuration reads from the environment.
    fn setting(&self, var: &str) -> Option<String> {
        match var {
            "HOST" => self.host.clone(),
            "PORT" => self.port.clone(),
            "MONGODB_URL" => self.mongodb_url.clone(),
            "DATABASE_PATH" => self.database_path.clone(),
            "LOG_FORMAT" => self.log_format.clone(),
            // `seed-demo` is demo mode for one run.
            "DEMO_MODE" => matches!(self.command, Some(Command::SeedDemo)).then(|| "true".into()),
            _ => None,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Create tables/indexes, repair interrupted operations, report inconsistencies, then exit.
    Migrate {
        /// Treat operations older than this as abandoned (default: RECONCILE_GRACE_SECONDS).
        /// 0 finishes or undoes every unfinished operation now: only when no instance serves.
        #[arg(long)]
        grace_seconds: Option<u64>,
        /// First move every tenant's documents to this layout (MongoDB: collection or shared),
        /// with every instance stopped; resumable after a crash. Then set TENANT_LAYOUT to it.
        #[arg(long)]
        tenant_layout: Option<TenantLayout>,
    },
    /// Create the demo organizations (known passwords!) and exit. Refused in production.
    SeedDemo,
    /// The audit log of any organization, deleted ones included.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check hash chains: one JSON line per organization; exit status 1 if any is broken.
    Verify {
        /// One organization (id or name); default: every organization with events.
        #[arg(long)]
        org: Option<String>,
    },
    /// Write an organization's events to stdout as NDJSON, oldest first.
    Export {
        /// The organization: its id, or its name (also of a deleted one).
        #[arg(long)]
        org: String,
        /// Only events at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only events before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
    },
}

fn main() -> ExitCode {
    // `.env` first: clap reads the flags' variables from the environment it completes. A
    // missing `.env` is normal; a malformed one is worth a warning.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("warning: ignoring .env: {e}");
        }
    }
    let cli = Cli::parse();
    let config =
        match Config::from_lookup(|var| cli.setting(var).or_else(|| std::env::var(var).ok())) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("org-service: {e}");
                return ExitCode::from(2);
            }
        };
    org_service::telemetry::init(config.log_format);
    let log_format = config.log_format;

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("org-service: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate {
                grace_seconds,
                tenant_layout,
            } => {
                let grace =
                    grace_seconds.map_or(config.storage.reconcile_grace, Duration::from_secs);
                migrate(config, grace, tenant_layout).await
            }
            Command::Audit { action } => audit(config, action).await,
            Command::SeedDemo => {
                // Building the app with DEMO_MODE seeds the sample organizations.
                let mut config = config;
                config.http.port = 0;
                App::build(config).await.map(drop)
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once: as a JSON line for log collectors, or as plain text on stderr.
            match log_format {
                LogFormat::Json => {
                    tracing::error!(error = format!("{e:#}"), "org-service failed")
                }
                LogFormat::Pretty => eprintln!("org-service: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

async fn migrate(
    mut config: Config,
    grace: Duration,
    tenant_layout: Option<TenantLayout>,
) -> anyhow::Result<()> {
    // The configured failpoints too: the crash tests stop a layout change half-way.
    let failpoints = config.testing.failpoints.clone();
    if let Some(to) = tenant_layout {
        // Before the ordinary migration, whose layout check would refuse a half-moved database.
        let store = storage::open(&config, failpoints.clone(), Role::Tool).await?;
        let change = store.change_tenant_layout(to).await;
        store.close().await;
        let change = change?;
        println!(
            "tenant layout {} -> {}: {} tenants, {} documents copied",
            change.from, change.to, change.tenants, change.documents
        );
        if let StoreConfig::Mongo { layout, .. } = &mut config.storage.backend {
            if *layout != to {
                println!("set TENANT_LAYOUT={to} before starting the instances");
                *layout = to;
            }
        }
    }
    let store = storage::connect(&config, failpoints, Role::Tool).await?;
    let report = store.reconcile(grace).await?;
    for line in &report.repaired {
        println!("repaired: {line}");
    }
    let problems = store.consistency_problems().await?;
    for p in &problems {
        println!("inconsistent: {p}");
    }
    println!(
        "migrated {} store: {} repairs, {} inconsistencies left",
        store.kind(),
        report.repaired.len(),
        problems.len()
    );
    Ok(())
}

async fn audit(config: Config, action: AuditCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match action {
        AuditCommand::Verify { org } => {
            if !audit_cli::verify(&config, org.as_deref(), &mut out).await? {
                anyhow::bail!("an audit chain does not verify (see first_bad_sequence)");
            }
        }
        AuditCommand::Export { org, since, until } => {
            let time = |raw: Option<String>| {
                raw.map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .map_err(|e| anyhow::anyhow!("{t:?} is not an RFC 3339 time: {e}"))
                })
                .transpose()
            };
            let range = TimeRange {
                since: time(since)?,
                until: time(until)?,
            };
            audit_cli::export(&config, &org, range, &mut out).await?;
        }
    }
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what container hosts send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
