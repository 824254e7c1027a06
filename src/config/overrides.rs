//! `TOLLGATE_*` environment overrides of the TOML document.
//!
//! `TOLLGATE_SECTION__FIELD=value` sets `section.field` (double underscore
//! separates levels; names are lower-cased). The value is read as a TOML value
//! when it parses as one (`5`, `true`, `["a"]`) and as a string otherwise, so
//! `TOLLGATE_SERVER__LISTEN=0.0.0.0:9000` and `TOLLGATE_UPSTREAM__MAX_RETRIES=5`
//! both do what they say. Overrides are applied before typed parsing, so they
//! are validated exactly like the file.
//!
//! Every config field sits in a section, so an override always has a `__`;
//! other `TOLLGATE_*` variables (`TOLLGATE_CONFIG`, `TOLLGATE_LOG`, or a
//! script's own) are not overrides, and unknown ones are warned about.

use super::ConfigError;

const PREFIX: &str = "TOLLGATE_";

/// Variables the binary reads itself, outside the config document.
const KNOWN_NON_OVERRIDES: &[&str] = &[
    "TOLLGATE_CONFIG",
    "TOLLGATE_LOG",
    "TOLLGATE_WORKER_THREADS",
    "TOLLGATE_SEEDS",
    "TOLLGATE_CLUSTER_SECRET",
];

/// The two cluster variables every deployment sets get short names:
/// `TOLLGATE_SEEDS=a:7946,b:7946` and `TOLLGATE_CLUSTER_SECRET=...`. They win
/// over the file and over `TOLLGATE_CLUSTER__*`.
pub(super) fn cluster_shorthands(
    doc: &mut toml::Table,
    vars: &[(String, String)],
) -> Result<(), ConfigError> {
    for (k, v) in vars {
        let value = match k.as_str() {
            "TOLLGATE_SEEDS" => toml::Value::Array(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            ),
            // Set but empty (as compose and Kubernetes render a missing
            // value) is kept, for validation to refuse by name.
            "TOLLGATE_CLUSTER_SECRET" => toml::Value::String(v.clone()),
            _ => continue,
        };
        let field = if k == "TOLLGATE_SEEDS" {
            "seeds"
        } else {
            "secret"
        };
        set(doc, &["cluster".to_string(), field.to_string()], value).map_err(|reason| {
            ConfigError::Env {
                var: k.clone(),
                reason,
            }
        })?;
    }
    Ok(())
}

pub(super) fn apply(doc: &mut toml::Table, vars: &[(String, String)]) -> Result<(), ConfigError> {
    let mut sorted: Vec<&(String, String)> = Vec::new();
    for v @ (k, _) in vars.iter().filter(|(k, _)| k.starts_with(PREFIX)) {
        if k.contains("__") {
            sorted.push(v);
        } else if !KNOWN_NON_OVERRIDES.contains(&k.as_str()) {
            tracing::warn!(
                var = %k,
                "ignored: not a config override (overrides look like TOLLGATE_SECTION__FIELD)"
            );
        }
    }
    // Deterministic order: shorter paths first, so a table set whole is then refined.
    sorted.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(&b.0)));
    for (var, raw) in sorted {
        let path: Vec<String> = var[PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env {
                var: var.clone(),
                reason: "empty path segment".into(),
            });
        }
        set(doc, &path, parse_value(raw)).map_err(|reason| ConfigError::Env {
            var: var.clone(),
            reason,
        })?;
    }
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    // Parse as the right-hand side of `v = ...`; anything that is not a TOML
    // value is a plain string.
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

fn set(doc: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut table = doc;
    for seg in parents {
        let entry = table
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("'{seg}' is not a table"))?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_when_they_parse() {
        assert_eq!(parse_value("5"), toml::Value::Integer(5));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(
            parse_value("0.0.0.0:9000"),
            toml::Value::String("0.0.0.0:9000".into())
        );
        assert_eq!(
            parse_value("[\"a\", \"b\"]"),
            toml::Value::Array(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn only_sectioned_variables_are_overrides() {
        let mut doc = toml::Table::new();
        apply(
            &mut doc,
            &[
                ("TOLLGATE_BIN".into(), "/x".into()),
                ("TOLLGATE_LOG".into(), "debug".into()),
                ("TOLLGATE_SERVER__LISTEN".into(), "0.0.0.0:1".into()),
            ],
        )
        .unwrap();
        assert_eq!(doc.len(), 1);
        assert_eq!(doc["server"]["listen"].as_str(), Some("0.0.0.0:1"));
    }

    #[test]
    fn nested_paths_create_tables() {
        let mut doc = toml::Table::new();
        apply(
            &mut doc,
            &[(
                "TOLLGATE_PROVIDERS__MOCK__BASE_URL".into(),
                "http://m/v1".into(),
            )],
        )
        .unwrap();
        assert_eq!(
            doc["providers"]["mock"]["base_url"].as_str(),
            Some("http://m/v1")
        );
    }
}
