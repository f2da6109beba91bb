//! Configuration layering: defaults → TOML file → `ROSTER_*` environment →
//! command-line flags. Unknown file keys are errors; unknown `ROSTER_*`
//! variables are warnings with a suggestion; secrets may come from files
//! named by `ROSTER_<KEY>_FILE`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use roster_server::config::Secret;
use roster_server::Config;
use serde::Serialize;

/// Values given on the command line; `None` leaves lower layers in charge.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

/// Keys whose values are secrets and may be read from `ROSTER_<KEY>_FILE`.
const SECRET_KEYS: &[&str] = &["database_url", "backstage.token"];

/// The variable that names a file holding `key`'s value, e.g.
/// `ROSTER_BACKSTAGE__TOKEN_FILE` for `backstage.token`.
fn file_variable(key: &str) -> String {
    format!(
        "ROSTER_{}_FILE",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// Variables that are Roster's but not configuration keys.
const OTHER_VARIABLES: &[&str] = &["config", "log"];

/// Every configuration key, tables (`publish`) and the keys inside them
/// (`publish.group_type`, set as `ROSTER_PUBLISH__GROUP_TYPE`) alike.
fn known_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
        if let serde_json::Value::Object(map) = value {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                walk(&path, inner, out);
                out.insert(path);
            }
        }
    }
    let mut keys = BTreeSet::new();
    if let Ok(defaults) = serde_json::to_value(Config::default()) {
        walk("", &defaults, &mut keys);
    }
    keys
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Warnings about `ROSTER_*` variables that configure nothing.
fn unknown_variable_warnings(
    vars: impl Iterator<Item = (String, String)>,
    known: &BTreeSet<String>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for (name, _) in vars {
        let Some(key) = name.strip_prefix("ROSTER_") else {
            continue;
        };
        let key = key.to_ascii_lowercase().replace("__", ".");
        let base = key
            .strip_suffix("_file")
            .filter(|k| SECRET_KEYS.contains(k));
        if known.contains(&key)
            || base.is_some()
            || OTHER_VARIABLES.contains(&key.as_str())
            || key.starts_with("test_")
        {
            continue;
        }
        let suggestion = known
            .iter()
            .map(|k| (edit_distance(k, &key), k))
            .min()
            .filter(|(d, _)| *d <= 3)
            .map(|(_, k)| {
                let variable = k.to_ascii_uppercase().replace('.', "__");
                format!("; did you mean ROSTER_{variable}?")
            })
            .unwrap_or_default();
        warnings.push(format!(
            "environment variable {name} is not a Roster setting{suggestion}"
        ));
    }
    warnings
}

/// Loads the effective configuration and any warnings to show.
pub fn load(config_file: Option<&Path>, overrides: Overrides) -> Result<(Config, Vec<String>)> {
    let known = known_keys();
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    match config_file {
        Some(path) => {
            if !path.exists() {
                anyhow::bail!(
                    "configuration file {} does not exist (given by --config or ROSTER_CONFIG)",
                    path.display()
                );
            }
            figment = figment.merge(Toml::file(path));
        }
        None if Path::new("roster.toml").exists() => {
            figment = figment.merge(Toml::file("roster.toml"))
        }
        None => {}
    }
    let env_known = known.clone();
    figment = figment.merge(Env::prefixed("ROSTER_").split("__").filter(move |key| {
        env_known
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key.as_str()))
    }));
    for key in SECRET_KEYS {
        let var = file_variable(key);
        if let Ok(path) = std::env::var(&var) {
            let value = std::fs::read_to_string(&path)
                .with_context(|| format!("while reading {var}={path}"))?;
            figment = figment.merge(Serialized::default(key, value.trim().to_string()));
        }
    }
    figment = figment.merge(Serialized::defaults(overrides));
    let config: Config = figment
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let warnings = unknown_variable_warnings(std::env::vars(), &known);
    Ok((config, warnings))
}

/// The effective configuration as TOML, with secrets masked.
pub fn render_masked(config: &Config) -> Result<String> {
    let mut masked = config.clone();
    masked.database_url = config
        .database_url
        .as_ref()
        .map(|url| Secret::new(url.to_string()));
    masked.backstage.token = config
        .backstage
        .token
        .as_ref()
        .map(|token| Secret::new(token.to_string()));
    let mut out = toml::to_string(&masked).context("while rendering the configuration")?;
    out.push_str(&format!(
        "# effective database: {}\n",
        Secret::new(config.effective_database_url())
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn misspelled_variables_get_a_suggestion() {
        let known = known_keys();
        let warnings = unknown_variable_warnings(
            [
                ("ROSTER_LISTN".to_string(), "x".to_string()),
                ("ROSTER_LISTEN".to_string(), "x".to_string()),
                ("ROSTER_DATABASE_URL_FILE".to_string(), "x".to_string()),
                ("PATH".to_string(), "x".to_string()),
            ]
            .into_iter(),
            &known,
        );
        assert_eq!(warnings, vec!["environment variable ROSTER_LISTN is not a Roster setting; did you mean ROSTER_LISTEN?"]);
    }

    #[test]
    fn flags_override_file_and_unknown_file_keys_fail() {
        let dir = std::env::temp_dir().join(format!("roster-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("roster.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/from-file\"\n",
        )
        .unwrap();
        let (config, _) = load(
            Some(&file),
            Overrides {
                listen: Some("127.0.0.1:9100".parse().unwrap()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/from-file"));

        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let err = load(Some(&file), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn nested_keys_come_from_files_and_variables() {
        let known = known_keys();
        assert!(known.contains("publish") && known.contains("publish.group_type"));
        let warnings = unknown_variable_warnings(
            [
                ("ROSTER_PUBLISH__GROUP_TYPE".to_string(), "x".to_string()),
                ("ROSTER_PUBLISH__GROUP_TYP".to_string(), "x".to_string()),
            ]
            .into_iter(),
            &known,
        );
        assert_eq!(warnings, vec!["environment variable ROSTER_PUBLISH__GROUP_TYP is not a Roster setting; did you mean ROSTER_PUBLISH__GROUP_TYPE?"]);

        let dir =
            std::env::temp_dir().join(format!("roster-settings-nested-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("roster.toml");
        std::fs::write(
            &file,
            "[publish]\nname_strategy = \"user-name\"\ninclude_deactivated = true\n",
        )
        .unwrap();
        let (config, _) = load(Some(&file), Overrides::default()).unwrap();
        assert_eq!(
            serde_json::to_value(config.publish.name_strategy).unwrap(),
            "user-name"
        );
        assert!(config.publish.include_deactivated);
        assert_eq!(config.publish.group_type.as_str(), "team");
        std::fs::write(&file, "[publish]\nnamespace = \"Not Valid\"\n").unwrap();
        let err = load(Some(&file), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("namespace"), "{err}");
        std::fs::write(&file, "[publish]\ngroup_kind = \"team\"\n").unwrap();
        let err = load(Some(&file), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("group_kind"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn masked_rendering_hides_passwords() {
        let config = Config {
            database_url: Some(Secret::new("postgres://u:topsecret@h/db")),
            ..Config::default()
        };
        let out = render_masked(&config).unwrap();
        assert!(!out.contains("topsecret"), "{out}");
        assert!(out.contains("postgres://u:***@h/db"), "{out}");
    }
}
