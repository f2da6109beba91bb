//! `roster`: the one binary. Parses the command line, layers the
//! configuration and hands over to the library crates.

mod access_cli;
mod settings;

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use roster_domain::{ApiToken, Clock, SystemClock, TokenName, TokenScope, TokenSecret};
use roster_server::config::LogFormat;
use roster_server::{Application, Config};

use settings::Overrides;

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "User management for Backstage: SCIM, directory, access, lifecycle."
)]
struct Cli {
    /// A TOML configuration file (default: ./roster.toml if it exists).
    #[arg(long, global = true, env = "ROSTER_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives; shared by every command that opens the store.
#[derive(Args, Clone, Default)]
struct StoreArgs {
    /// Directory of the embedded SQLite database.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// `postgres://...` to use PostgreSQL instead of the embedded database.
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// Address to listen on, e.g. 0.0.0.0:8080.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The URL clients reach Roster at (for SCIM `meta.location`).
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Manage API tokens (SCIM clients, the catalog feed).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Compare the directory with the live Backstage catalog: ghost users and
    /// groups, deactivated users still in the catalog, missing users,
    /// dangling owners and duplicates, each with evidence and a fix.
    Reconcile {
        #[command(flatten)]
        store: StoreArgs,
        /// Backstage's base URL (or `backstage.url` / ROSTER_BACKSTAGE__URL).
        #[arg(long)]
        backstage_url: Option<String>,
        /// Output: `table`, `json` or `csv`.
        #[arg(long, default_value = "table")]
        format: String,
        /// Execute the fixes Roster can apply (delete ghosts by uid, refresh
        /// entities) after showing the plan. Without it nothing changes.
        #[arg(long)]
        apply: bool,
    },
    /// Access control: roles, assignments, the policy file, explanations.
    Access {
        #[command(subcommand)]
        command: access_cli::AccessCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once, alone on stdout.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// A label for the token, e.g. `okta`.
        #[arg(long)]
        name: String,
        /// What the token opens: `scim`, `catalog-feed`, `admin` or `authorize`.
        #[arg(long, default_value = "scim")]
        scope: String,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke the active token with this name.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        /// The token's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets masked.
    Check {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?;
    runtime.block_on(run(cli))
}

fn load(cli_config: Option<&std::path::Path>, overrides: Overrides) -> Result<Config> {
    let (config, warnings) = settings::load(cli_config, overrides)?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(config)
}

fn store_overrides(store: &StoreArgs) -> Overrides {
    Overrides {
        data_dir: store.data_dir.clone(),
        database_url: store.database_url.clone(),
        ..Overrides::default()
    }
}

async fn open_store(config: &Config) -> Result<Arc<dyn roster_store::Store>> {
    let url = config.effective_database_url();
    if url.starts_with("sqlite://") {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "while creating the data directory {} (set data_dir / ROSTER_DATA_DIR / --data-dir)",
                config.data_dir.display()
            )
        })?;
    }
    roster_store::open(&url).await.with_context(|| {
        format!(
            "while opening the database {} (set database_url / ROSTER_DATABASE_URL / --database-url, or data_dir for the embedded one)",
            roster_server::config::Secret::new(url.clone())
        )
    })
}

async fn run(cli: Cli) -> Result<()> {
    let config_file = cli.config.as_deref();
    match cli.command {
        Command::Serve {
            store,
            listen,
            public_url,
        } => {
            let config = load(
                config_file,
                Overrides {
                    listen,
                    public_url,
                    ..store_overrides(&store)
                },
            )?;
            init_logging(config.log_format);
            serve(config).await
        }
        Command::Token { command } => token(config_file, command).await,
        Command::Config {
            command: ConfigCommand::Check { store, listen },
        } => {
            let config = load(
                config_file,
                Overrides {
                    listen,
                    ..store_overrides(&store)
                },
            )?;
            print!("{}", settings::render_masked(&config)?);
            Ok(())
        }
        Command::Reconcile {
            store,
            backstage_url,
            format,
            apply,
        } => {
            let mut config = load(config_file, store_overrides(&store))?;
            if let Some(url) = backstage_url {
                config.backstage.url = Some(url);
            }
            reconcile(config, &format, apply).await
        }
        Command::Access { command } => access_cli::run(config_file, command).await,
        Command::Migrate { store } => {
            let config = load(config_file, store_overrides(&store))?;
            open_store(&config).await?;
            eprintln!(
                "database is up to date: {}",
                roster_server::config::Secret::new(config.effective_database_url())
            );
            Ok(())
        }
    }
}

async fn reconcile(config: Config, format: &str, apply: bool) -> Result<()> {
    use roster_backstage::reconcile::{plan_fixes, render_csv, render_json, render_table};
    if !matches!(format, "table" | "json" | "csv") {
        bail!("unknown --format {format:?}; use table, json or csv");
    }
    let store = open_store(&config).await?;
    let client = roster_server::reconciliation::catalog_client(&config)?;
    let report = roster_server::reconciliation::reconcile_now(&*store, &client, &config)
        .await
        .context("while reconciling with Backstage")?;
    let rendered = match format {
        "json" => render_json(&report).context("while rendering JSON")?,
        "csv" => render_csv(&report).context("while rendering CSV")?,
        _ => render_table(&report),
    };
    print!("{rendered}");
    if !rendered.ends_with('\n') {
        println!();
    }
    let plan = plan_fixes(&report);
    if !apply {
        if !plan.is_empty() {
            eprintln!(
                "dry run: {} fix(es) can be applied; run `roster reconcile --apply` to apply them",
                plan.len()
            );
        }
        return Ok(());
    }
    if plan.is_empty() {
        eprintln!("nothing to apply");
        return Ok(());
    }
    eprintln!("applying {} fix(es):", plan.len());
    for fix in &plan {
        eprintln!("  - {fix:?}");
    }
    // Each fix is recorded in the store with its outcome (`GET
    // /api/v1/reconcile/fixes` lists them).
    let outcomes =
        roster_server::reconciliation::apply_and_record(&*store, &client, &report, "cli")
            .await
            .context("while recording the applied fixes in the database")?;
    let mut failed = 0;
    for applied in &outcomes {
        // Each applied fix is recorded in the log (and so in the journal of
        // whoever runs this), with its outcome.
        tracing::info!(fix = ?applied.fix, outcome = ?applied.outcome, "reconciliation fix applied");
        eprintln!("  {:?}: {:?}", applied.fix, applied.outcome);
        if !applied.outcome.succeeded() {
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} fixes failed", outcomes.len());
    }
    eprintln!("applied {} fix(es)", outcomes.len());
    Ok(())
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ROSTER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config: Config) -> Result<()> {
    let store = open_store(&config).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let database = if config.database_url.is_some() {
        "postgresql"
    } else {
        "sqlite"
    };
    let app = Application::build(config.clone(), store, clock).await?;
    let shutdown = shutdown_signal();
    tracing::info!(
        url = %app.base_url(),
        scim = %format!("{}/scim/v2", app.base_url()),
        database,
        "roster listening on {}",
        app.base_url()
    );
    app.run_until_stopped(shutdown)
        .await
        .context("while serving HTTP")?;
    tracing::info!("roster stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed here, before
/// the server announces itself, so a signal sent as soon as the URL is
/// logged already triggers a graceful shutdown.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let terminate = async move {
            match terminate {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate => {},
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}

async fn token(config_file: Option<&std::path::Path>, command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Create { store, name, scope } => {
            let config = load(config_file, store_overrides(&store))?;
            let name = TokenName::parse(&name).context("while reading --name")?;
            let scope: TokenScope = scope.parse().context("while reading --scope")?;
            let store = open_store(&config).await?;
            let secret = TokenSecret::generate(&mut rand::thread_rng());
            let token = ApiToken {
                id: uuid::Uuid::new_v4(),
                name: name.clone(),
                scope,
                hash: secret.hash(),
                created: SystemClock.now(),
                revoked: None,
            };
            match store.insert_token(&token).await {
                Ok(()) => {}
                Err(roster_store::StoreError::Conflict(_)) => {
                    bail!("an active token named {name} already exists; revoke it first with `roster token revoke {name}`")
                }
                Err(err) => return Err(err).context("while storing the token"),
            }
            eprintln!(
                "created {scope} token {name:?}; it is shown once and only its hash is stored:"
            );
            println!("{}", secret.expose());
            Ok(())
        }
        TokenCommand::List { store } => {
            let config = load(config_file, store_overrides(&store))?;
            let store = open_store(&config).await?;
            let tokens = store.list_tokens().await.context("while listing tokens")?;
            println!("{:<24} {:<14} {:<26} STATUS", "NAME", "SCOPE", "CREATED");
            for t in tokens {
                let created = t
                    .created
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                let status = match t.revoked {
                    None => "active".to_string(),
                    Some(at) => format!(
                        "revoked {}",
                        at.format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                    ),
                };
                println!("{:<24} {:<14} {:<26} {status}", t.name, t.scope, created);
            }
            Ok(())
        }
        TokenCommand::Revoke { store, name } => {
            let config = load(config_file, store_overrides(&store))?;
            let name = TokenName::parse(&name).context("while reading the token name")?;
            let store = open_store(&config).await?;
            if store
                .revoke_token(&name, SystemClock.now())
                .await
                .context("while revoking")?
            {
                eprintln!("revoked token {name:?}");
                Ok(())
            } else {
                bail!("no active token named {name:?} (see `roster token list`)")
            }
        }
    }
}
