//! The server's typed configuration. The `roster` binary layers it from
//! defaults, a TOML file, `ROSTER_*` variables and flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use roster_backstage::entity::PublishConfig;
use serde::{Deserialize, Serialize};

/// A value that must never be printed (a database URL may carry a password).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url(&self.0))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url(&self.0))
    }
}

/// Masks the password of a URL (`postgres://u:pw@h/db` → `postgres://u:***@h/db`)
/// and anything that is not a URL entirely.
fn mask_url(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    match value.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or("");
                if credentials.contains(':') {
                    format!("{scheme}://{user}:***@{host}")
                } else {
                    format!("{scheme}://{user}@{host}")
                }
            }
            None => value.to_string(),
        },
        None => "***".to_string(),
    }
}

/// Everything `roster serve` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the embedded SQLite database lives.
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL instead of the embedded database.
    pub database_url: Option<Secret>,
    /// The externally visible base URL (for `meta.location`); defaults to
    /// `http://<listen>`.
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most operations in one SCIM bulk request.
    pub max_bulk_operations: usize,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// How the directory is published to Backstage (the `[publish]` table:
    /// `name_strategy`, `group_type`, `include_deactivated`, `namespace`).
    pub publish: PublishConfig,
    /// Where the Backstage backend is, for reconciliation (the `[backstage]`
    /// table: `url`, `token`, `fallback_owner`).
    pub backstage: BackstageConfig,
    /// Access control (the `[access]` table: `super_users`,
    /// `max_group_depth`).
    pub access: AccessConfig,
}

/// Access control settings that only the config file can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Break-glass users (entity refs such as `user:default/oncall-admin`)
    /// who may do everything, whatever the policy says and even when the
    /// directory does not know them. Only this file can name them.
    pub super_users: Vec<String>,
    /// How many levels of group nesting carry roles down to members
    /// (1 = only groups a user is directly in).
    pub max_group_depth: u32,
    /// How long, in milliseconds, an entity fetched from the catalog to
    /// decide about a `resourceRef` is reused (0: fetched for every
    /// decision). The catalog itself refreshes entities every few minutes,
    /// so a few seconds add nothing noticeable to its own staleness.
    pub entity_cache_ms: u64,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            super_users: Vec::new(),
            max_group_depth: 10,
            entity_cache_ms: 5_000,
        }
    }
}

/// How Roster reaches Backstage's catalog API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackstageConfig {
    /// The Backstage backend's base URL, e.g. `http://backstage:7007`.
    pub url: Option<String>,
    /// A static token from Backstage's `backend.auth.externalAccess`.
    pub token: Option<Secret>,
    /// The owner (an entity ref; kind defaults to Group) proposed for
    /// entities whose owner left and had no live manager or group.
    pub fallback_owner: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            public_url: None,
            max_body_bytes: 1024 * 1024,
            max_bulk_operations: 1000,
            log_format: LogFormat::Text,
            publish: PublishConfig::default(),
            backstage: BackstageConfig::default(),
            access: AccessConfig::default(),
        }
    }
}

impl Config {
    /// The database URL in effect: PostgreSQL if configured, else the
    /// embedded SQLite file under `data_dir`.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.expose().is_empty() => url.expose().to_string(),
            _ => format!("sqlite://{}", self.data_dir.join("roster.db").display()),
        }
    }

    /// The base URL clients reach this server at, without a trailing slash.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{bound}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_never_print() {
        let url = Secret::new("postgres://roster:hunter2@db:5432/roster");
        assert_eq!(format!("{url:?}"), "postgres://roster:***@db:5432/roster");
        assert_eq!(url.to_string(), "postgres://roster:***@db:5432/roster");
        assert_eq!(Secret::new("plain-secret").to_string(), "***");
        let config = Config {
            database_url: Some(url),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
