//! `paperboy settings`: every setting, where its value comes from, secrets hidden.

use paperboy_shared::config::{Env, SETTINGS, Setting, settings_markdown};
use serde_json::json;

use crate::error::CliError;
use crate::output::{Output, Table, redact_url};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An environment variable (PAPERBOY_* or the PAPERLESS_* fallback).
    Var(String),
    /// A file named by `<var>_FILE`: treated as a secret, never printed.
    File(String),
    Default,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub name: &'static str,
    /// The value as it may be printed.
    pub value: String,
    pub source: Source,
}

/// Settings whose value may hold a password: printed with the password masked.
fn holds_credentials(s: &Setting) -> bool {
    s.name.ends_with("_URL")
}

/// Resolves a setting the way `config::lookup` does, but keeps its source and hides secrets.
/// Works from the raw variables, so it also shows a setting whose value is invalid.
pub fn show(env: &dyn Env, s: &'static Setting) -> Shown {
    for candidate in std::iter::once(s.name).chain(s.paperless) {
        if let Some(v) = env.var(candidate).filter(|v| !v.is_empty()) {
            let value = if s.name.ends_with("_PASSPHRASE") {
                // A secret as a whole: never printed.
                "***".to_string()
            } else if holds_credentials(s) {
                redact_url(&v)
            } else {
                v
            };
            return Shown {
                name: s.name,
                value,
                source: Source::Var(candidate.to_string()),
            };
        }
        let file_var = format!("{candidate}_FILE");
        if env.var(&file_var).is_some_and(|v| !v.is_empty()) {
            return Shown {
                name: s.name,
                value: "(secret, from file)".into(),
                source: Source::File(file_var),
            };
        }
    }
    Shown {
        name: s.name,
        value: s.default.to_string(),
        source: Source::Default,
    }
}

pub fn settings(out: &Output, env: &dyn Env, markdown: bool) -> Result<(), CliError> {
    if markdown {
        out.line(settings_markdown().trim_end())?;
        return Ok(());
    }
    let rows: Vec<Shown> = SETTINGS.iter().map(|s| show(env, s)).collect();
    if out.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                let (source, var) = match &r.source {
                    Source::Var(v) => ("env", Some(v)),
                    Source::File(v) => ("file", Some(v)),
                    Source::Default => ("default", None),
                };
                json!({"name": r.name, "value": r.value, "source": source, "variable": var})
            })
            .collect();
        out.json_doc(&v)?;
        return Ok(());
    }
    let mut t = Table::new(&["SETTING", "VALUE", "FROM"]);
    for r in rows {
        t.row(vec![
            r.name.to_string(),
            if r.value.is_empty() {
                "(empty)".into()
            } else {
                r.value
            },
            match r.source {
                Source::Var(v) | Source::File(v) => v,
                Source::Default => "default".into(),
            },
        ]);
    }
    out.table(&t)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn find(name: &str) -> &'static Setting {
        SETTINGS.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn passphrases_never_show() {
        let env: std::collections::HashMap<String, String> =
            [("PAPERLESS_PASSPHRASE".to_string(), "hunter2".to_string())].into();
        let s = paperboy_shared::config::SETTINGS
            .iter()
            .find(|s| s.name == "PAPERBOY_PASSPHRASE")
            .unwrap();
        assert_eq!(show(&env, s).value, "***");
    }

    #[test]
    fn secrets_never_show() {
        let e = env(&[
            ("PAPERBOY_REDIS_URL", "redis://:hunter2@h:6379"),
            ("PAPERBOY_DATABASE_URL_FILE", "/run/secrets/db"),
        ]);
        let r = show(&e, find("PAPERBOY_REDIS_URL"));
        assert_eq!(r.value, "redis://:***@h:6379");
        assert_eq!(r.source, Source::Var("PAPERBOY_REDIS_URL".into()));
        let d = show(&e, find("PAPERBOY_DATABASE_URL"));
        assert!(!d.value.contains("/run/secrets"));
        assert_eq!(d.source, Source::File("PAPERBOY_DATABASE_URL_FILE".into()));
    }

    #[test]
    fn fallbacks_and_defaults_are_named() {
        let e = env(&[("PAPERLESS_DATA_DIR", "/srv/data")]);
        let r = show(&e, find("PAPERBOY_DATA_DIR"));
        assert_eq!(r.value, "/srv/data");
        assert_eq!(r.source, Source::Var("PAPERLESS_DATA_DIR".into()));
        let r = show(&e, find("PAPERBOY_LEASE_SECS"));
        assert_eq!((r.value.as_str(), r.source), ("30", Source::Default));
    }
}
