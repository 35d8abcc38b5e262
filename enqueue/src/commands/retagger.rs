//! `paperboy retagger` (`document_retagger`): builds the job from the flags and prints its
//! result: the summary (counts per field), and with `--suggest` (or `-v`) one row per changed
//! document.

use std::sync::OnceLock;

use paperboy_shared::job::{Job, RETAG_NO_TARGETS, RetagArgs};
use paperboy_shared::queue::JobRecord;
use serde_json::Value;

use crate::cli::RetaggerCmd;
use crate::error::CliError;
use crate::output::{Output, Table};

/// How the result is shown: `--base-url` and `-v` (set once, before the command runs).
#[derive(Debug, Default)]
struct View {
    base_url: Option<String>,
    every_change: bool,
}

static VIEW: OnceLock<View> = OnceLock::new();

pub fn set_view(cmd: &RetaggerCmd, verbose: u8) {
    let _ = VIEW.set(View {
        base_url: cmd
            .base_url
            .as_ref()
            .map(|u| u.trim_end_matches('/').to_string()),
        every_change: cmd.suggest || verbose > 0,
    });
}

/// The job for these flags; None (after saying so) when no target flag is given.
pub fn job(cmd: &RetaggerCmd, out: &Output) -> Option<Job> {
    let args = RetagArgs {
        correspondent: cmd.correspondent,
        tags: cmd.tags,
        document_type: cmd.document_type,
        storage_path: cmd.storage_path,
        inbox_only: cmd.inbox_only,
        use_first: cmd.use_first,
        overwrite: cmd.overwrite,
        id_range: cmd.id_range.as_ref().map(|r| (r[0], r[1])),
        suggest: cmd.suggest,
    };
    if !args.has_target() {
        out.warn(RETAG_NO_TARGETS);
        return None;
    }
    Some(Job::Retagger(args))
}

/// Summary table, then (suggest / -v) the changes.
pub fn show_result(out: &Output, r: &JobRecord) -> Result<(), CliError> {
    let Some(res) = &r.result else { return Ok(()) };
    let view = VIEW.get_or_init(View::default);
    let suggest = res["suggest"].as_bool().unwrap_or(false);
    if view.every_change || suggest {
        let rows = res["changes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if rows.is_empty() {
            out.line(if suggest {
                "No changes suggested."
            } else {
                "No changes."
            })?;
        } else {
            let mut t = Table::new(&[
                "Document",
                "Correspondent",
                "Doc Type",
                "Tags",
                "Storage Path",
            ]);
            for row in rows {
                t.row(change_cells(row, view.base_url.as_deref()));
            }
            out.table(&t)?;
            if res["changes_truncated"].as_bool() == Some(true) {
                out.warn("more changes than shown (the counts below are complete)");
            }
        }
    }
    let n = |k: &str| res[k].as_u64().unwrap_or(0).to_string();
    let verb = if suggest { "would be set" } else { "set" };
    let mut t = Table::new(&[
        if suggest {
            "Suggested Changes"
        } else {
            "Retagger Summary"
        },
        "",
    ]);
    t.row(vec!["Documents processed".into(), n("documents")]);
    t.row(vec![
        format!("Correspondents {verb}"),
        n("correspondents_set"),
    ]);
    t.row(vec![
        format!("Document types {verb}"),
        n("document_types_set"),
    ]);
    t.row(vec![
        format!("Tags added{}", if suggest { " (would be)" } else { "" }),
        n("tags_added"),
    ]);
    t.row(vec![
        format!("Tags removed{}", if suggest { " (would be)" } else { "" }),
        n("tags_removed"),
    ]);
    t.row(vec![
        format!("Storage paths {verb}"),
        n("storage_paths_set"),
    ]);
    out.table(&t)?;
    Ok(())
}

/// One row: `<created> <title> [<id>]` (or the link), `old -> new` per field, `+tag -tag`.
fn change_cells(row: &Value, base_url: Option<&str>) -> Vec<String> {
    let id = row["document_id"].as_i64().unwrap_or_default();
    let doc = row["document"].as_str().unwrap_or_default();
    let document = match base_url {
        Some(u) => format!("{doc} {u}/documents/{id}"),
        None => format!("{doc} [{id}]"),
    };
    let field = |k: &str| {
        let f = &row[k];
        if f.is_null() {
            return "-".to_string();
        }
        let name = |n: &str, id: &str| {
            f[n].as_str()
                .map(str::to_string)
                .or_else(|| f[id].as_i64().map(|i| format!("#{i}")))
                .unwrap_or_else(|| "(none)".into())
        };
        format!("{} -> {}", name("from_name", "from"), name("to_name", "to"))
    };
    let names = |k: &str, sign: char| -> Vec<String> {
        row[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|s| format!("{sign}{s}"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut tags = names("tags_added_names", '+');
    tags.extend(names("tags_removed_names", '-'));
    vec![
        document,
        field("correspondent"),
        field("document_type"),
        if tags.is_empty() {
            "-".into()
        } else {
            tags.join(" ")
        },
        field("storage_path"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn change_rows_name_old_and_new() {
        let row = json!({
            "document_id": 3,
            "document": "2024-01-01 bill",
            "correspondent": {"from": 1, "to": null, "from_name": "ACME", "to_name": null},
            "document_type": null,
            "storage_path": {"from": null, "to": 2, "from_name": null, "to_name": "sp2"},
            "tags_added_names": ["b", "a"],
            "tags_removed_names": ["z"],
        });
        assert_eq!(
            change_cells(&row, None),
            vec![
                "2024-01-01 bill [3]",
                "ACME -> (none)",
                "-",
                "+b +a -z",
                "(none) -> sp2"
            ]
        );
        assert_eq!(
            change_cells(&row, Some("http://localhost"))[0],
            "2024-01-01 bill http://localhost/documents/3"
        );
    }
}
