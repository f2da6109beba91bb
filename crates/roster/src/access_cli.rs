//! `roster access ...`: the access policy from the command line. Every
//! command goes through the same service as the admin API, straight to the
//! database; a running server sees changes within its poll interval.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use roster_authz::{AssignmentDocument, PolicyDocument};
use roster_domain::SystemClock;
use roster_server::access::{rfc3339, AccessError, AccessService, Question};
use roster_server::Config;
use serde_json::Value;
use uuid::Uuid;

use crate::{load, open_store, store_overrides, StoreArgs};

#[derive(Subcommand)]
pub enum AccessCommand {
    /// List roles (built-in and custom) with their rules.
    Roles {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Give a role to a user or group, e.g. `roster access assign member
    /// group:default/payments-core`.
    Assign {
        #[command(flatten)]
        store: StoreArgs,
        role: String,
        /// `user:default/jane.doe` or `group:default/payments-core`.
        subject: String,
        /// RFC 3339 time the assignment stops counting, e.g. 2027-01-31T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Remove an assignment by id (see `roster access assignments`).
    Unassign {
        #[command(flatten)]
        store: StoreArgs,
        id: Uuid,
    },
    /// List assignments.
    Assignments {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace the custom roles and all assignments with a policy file
    /// (YAML or JSON), all or nothing.
    Import {
        #[command(flatten)]
        store: StoreArgs,
        file: PathBuf,
    },
    /// Print the custom roles and assignments as a policy file.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        /// Also print the built-in roles' definitions (for reading only).
        #[arg(long)]
        builtin: bool,
    },
    /// Say what a user gets for a permission, and which rule of which role
    /// decided.
    Explain {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        user: String,
        #[arg(long)]
        permission: String,
        /// An entity ref, e.g. component:default/payments (needs
        /// `[backstage] url` and `token` to fetch it).
        #[arg(long)]
        resource: Option<String>,
        /// `text` or `json`.
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// List the users a permission is granted to.
    WhoCan {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        permission: String,
        #[arg(long)]
        resource: Option<String>,
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// The record of policy changes, newest first.
    Changes {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Who the change record names for CLI changes.
fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

fn store_args(command: &AccessCommand) -> &StoreArgs {
    match command {
        AccessCommand::Roles { store }
        | AccessCommand::Assign { store, .. }
        | AccessCommand::Unassign { store, .. }
        | AccessCommand::Assignments { store }
        | AccessCommand::Import { store, .. }
        | AccessCommand::Export { store, .. }
        | AccessCommand::Explain { store, .. }
        | AccessCommand::WhoCan { store, .. }
        | AccessCommand::Changes { store, .. } => store,
    }
}

async fn service(config: &Config) -> Result<AccessService> {
    let store = open_store(config).await?;
    let catalog = roster_server::reconciliation::catalog_client(config).ok();
    AccessService::new(
        store,
        Arc::new(SystemClock),
        &config.access,
        &config.publish,
        catalog,
    )
    .await
    .context("while loading the access policy")
}

fn fail(err: AccessError) -> anyhow::Error {
    match err {
        AccessError::Store(err) => anyhow::Error::new(err).context("the database refused"),
        other => anyhow::anyhow!("{other}"),
    }
}

fn print_json(value: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn check_format(format: &str) -> Result<()> {
    if !matches!(format, "text" | "json") {
        bail!("unknown --format {format:?}; use text or json");
    }
    Ok(())
}

pub async fn run(config_file: Option<&std::path::Path>, command: AccessCommand) -> Result<()> {
    let config = load(config_file, store_overrides(store_args(&command)))?;
    let access = service(&config).await?;
    match command {
        AccessCommand::Roles { .. } => {
            for role in access.list_roles() {
                let builtin = role["builtin"].as_bool().unwrap_or(false);
                println!(
                    "{}{}",
                    role["name"].as_str().unwrap_or_default(),
                    if builtin { " (built-in)" } else { "" }
                );
                if let Some(description) = role["description"].as_str() {
                    println!("  {description}");
                }
                for rule in role["rules"].as_array().into_iter().flatten() {
                    println!("  - {rule}");
                }
            }
            Ok(())
        }
        AccessCommand::Assign {
            role,
            subject,
            expires_at,
            ..
        } => {
            let expires_at = expires_at
                .map(|text| {
                    time::OffsetDateTime::parse(
                        &text,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .with_context(|| format!("--expires-at {text:?} is not an RFC 3339 time"))
                })
                .transpose()?;
            let document = AssignmentDocument {
                role,
                subject,
                expires_at,
            };
            let assignment = access
                .add_assignment(&actor(), &document)
                .await
                .map_err(fail)?;
            eprintln!(
                "assigned {} to {}",
                assignment["role"].as_str().unwrap_or_default(),
                assignment["subject"].as_str().unwrap_or_default()
            );
            println!("{}", assignment["id"].as_str().unwrap_or_default());
            Ok(())
        }
        AccessCommand::Unassign { id, .. } => {
            access.delete_assignment(&actor(), id).await.map_err(fail)?;
            eprintln!("removed assignment {id}");
            Ok(())
        }
        AccessCommand::Assignments { .. } => {
            for a in access.list_assignments().await? {
                println!(
                    "{}  {:<20} {:<40} {}",
                    a["id"].as_str().unwrap_or_default(),
                    a["role"].as_str().unwrap_or_default(),
                    a["subject"].as_str().unwrap_or_default(),
                    a["expiresAt"]
                        .as_str()
                        .map_or_else(String::new, |at| format!("until {at}")),
                );
            }
            Ok(())
        }
        AccessCommand::Import { file, .. } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("while reading {}", file.display()))?;
            let document = PolicyDocument::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
            let revision = access.import(&actor(), &document).await.map_err(fail)?;
            eprintln!(
                "imported {} role(s) and {} assignment(s); policy revision {revision}",
                document.roles.len(),
                document.assignments.len()
            );
            Ok(())
        }
        AccessCommand::Export { builtin, .. } => {
            if builtin {
                println!("# Built-in roles (read only):");
                for line in roster_authz::builtin::builtin_yaml().lines() {
                    println!("# {line}");
                }
            }
            print!("{}", access.export().await?.to_yaml());
            Ok(())
        }
        AccessCommand::Explain {
            user,
            permission,
            resource,
            format,
            ..
        } => {
            check_format(&format)?;
            let question = Question::known(&permission, resource);
            let answer = access.explain(&user, &question).await.map_err(fail)?;
            if format == "json" {
                return print_json(&answer);
            }
            println!(
                "{}  {user}  {permission}{}",
                answer["result"].as_str().unwrap_or_default(),
                answer["resourceRef"]
                    .as_str()
                    .map_or_else(String::new, |r| format!("  {r}"))
            );
            println!(
                "because: {}",
                answer["explanation"].as_str().unwrap_or_default()
            );
            let roles: Vec<String> = answer["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let via = &r["via"];
                    match via["group"].as_str() {
                        Some(group) => format!(
                            "{} (through {group})",
                            r["role"].as_str().unwrap_or_default()
                        ),
                        None => format!("{} (direct)", r["role"].as_str().unwrap_or_default()),
                    }
                })
                .collect();
            println!(
                "roles: {}",
                if roles.is_empty() {
                    "none".to_owned()
                } else {
                    roles.join(", ")
                }
            );
            if let Some(conditions) = answer.get("conditions") {
                println!("conditions: {conditions}");
            }
            Ok(())
        }
        AccessCommand::WhoCan {
            permission,
            resource,
            format,
            ..
        } => {
            check_format(&format)?;
            let question = Question::known(&permission, resource);
            let answer = access.who_can(&question).await.map_err(fail)?;
            if format == "json" {
                return print_json(&answer);
            }
            let users = answer["users"].as_array().cloned().unwrap_or_default();
            for u in &users {
                println!(
                    "{:<12} {:<40} {}",
                    u["result"].as_str().unwrap_or_default(),
                    u["user"].as_str().unwrap_or_default(),
                    u["role"]
                        .as_str()
                        .map_or_else(|| "super-user".to_owned(), |r| format!("role {r}")),
                );
            }
            eprintln!("{} user(s)", users.len());
            Ok(())
        }
        AccessCommand::Changes { limit, .. } => {
            for c in access.changes(limit).await? {
                println!(
                    "{}  r{}  {:<22} {:<18} {}",
                    rfc3339(c.at),
                    c.revision,
                    c.change.actor,
                    c.change.action,
                    c.change.target
                );
            }
            Ok(())
        }
    }
}
