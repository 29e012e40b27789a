//! The `org-service` binary: parse the command line, load `.env`, read the configuration, and
//! serve (default), migrate, or seed the demo data.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use org_service::config::{Config, LogFormat, StoreConfig};
use org_service::domain::TenantLayout;
use org_service::startup::App;
use org_service::storage::{self, Role};

/// Multi-tenant organization management service.
#[derive(Debug, Parser)]
#[command(name = "org-service", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to bind (overrides HOST).
    #[arg(long, global = true)]
    host: Option<String>,
    /// Port to bind (overrides PORT).
    #[arg(long, global = true)]
    port: Option<String>,
    /// MongoDB connection string (overrides MONGODB_URL); without one, the embedded store is used.
    #[arg(long, global = true)]
    mongodb_url: Option<String>,
    /// Embedded store file (overrides DATABASE_PATH).
    #[arg(long, global = true)]
    database_path: Option<String>,
    /// pretty or json (overrides LOG_FORMAT).
    #[arg(long, global = true)]
    log_format: Option<String>,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A missing .env is normal; a malformed one is worth a warning.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("warning: ignoring .env: {e}");
        }
    }
    let overrides: HashMap<&str, Option<String>> = HashMap::from([
        ("HOST", cli.host.clone()),
        ("PORT", cli.port.clone()),
        ("MONGODB_URL", cli.mongodb_url.clone()),
        ("DATABASE_PATH", cli.database_path.clone()),
        ("LOG_FORMAT", cli.log_format.clone()),
        (
            "DEMO_MODE",
            matches!(cli.command, Some(Command::SeedDemo)).then(|| "true".to_owned()),
        ),
    ]);
    let config = match Config::from_lookup(|key| {
        overrides
            .get(key)
            .cloned()
            .flatten()
            .or_else(|| std::env::var(key).ok())
    }) {
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
                let grace = grace_seconds.map_or(config.reconcile_grace, Duration::from_secs);
                migrate(config, grace, tenant_layout).await
            }
            Command::SeedDemo => {
                // Building the app with DEMO_MODE seeds the sample organizations.
                let mut config = config;
                config.port = 0;
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
    let failpoints = config.failpoints.clone();
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
        if let StoreConfig::Mongo { layout, .. } = &mut config.store {
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
