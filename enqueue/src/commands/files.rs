//! What `sanity-check`, `renamer` and `decrypt-documents` print when waited for: the sanity
//! report grouped by document (and whether it makes the exit code 1), the renamer's moves.

use paperboy_shared::job::JobKind;
use paperboy_shared::queue::JobRecord;
use serde_json::Value;

use crate::error::CliError;
use crate::output::{Output, Table};

/// A job that succeeded but whose result means failure for the exit code: a sanity report
/// with errors.
pub fn result_fails(kind: JobKind, r: &JobRecord) -> bool {
    // An archiver run whose documents failed (each failure is in its result).
    if kind == JobKind::Archive {
        return r
            .result
            .as_ref()
            .and_then(|v| v.get("failed"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
            > 0;
    }
    kind == JobKind::SanityCheck
        && r.result
            .as_ref()
            .and_then(|v| v.get("has_errors"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
}

fn level_label(level: &str) -> &'static str {
    match level {
        "error" => "ERROR",
        "warning" => "WARN",
        _ => "INFO",
    }
}

/// The sanity report: `Level | Document | Issue`, then the summary sentence.
pub fn print_sanity_report(out: &Output, result: &Value) -> Result<(), CliError> {
    let summary = result
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or("No issues detected.");
    let mut table = Table::new(&["Level", "Document", "Issue"]);
    let mut rows = 0;
    for d in result
        .get("documents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let who = format!(
            "#{} {}",
            d.get("id").and_then(Value::as_i64).unwrap_or_default(),
            d.get("title").and_then(Value::as_str).unwrap_or("Unknown")
        );
        for m in d
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            table.row(vec![
                level_label(m["level"].as_str().unwrap_or_default()).into(),
                who.clone(),
                m["message"].as_str().unwrap_or_default().into(),
            ]);
            rows += 1;
        }
    }
    for m in result
        .get("global")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        table.row(vec![
            level_label(m["level"].as_str().unwrap_or_default()).into(),
            "(global)".into(),
            m["message"].as_str().unwrap_or_default().into(),
        ]);
        rows += 1;
    }
    if rows > 0 {
        out.table(&table)?;
    }
    out.line(summary)?;
    Ok(())
}

/// The renamer's moves (`old → new`, one per file), or the number of batches queued.
pub fn print_renamer_result(out: &Output, result: &Value) -> Result<(), CliError> {
    let moves = result.get("moves").and_then(Value::as_array);
    match moves {
        Some(moves) => {
            for m in moves {
                for i in 0..2 {
                    let (old, new) = (&m["old"][i], &m["new"][i]);
                    if let (Some(o), Some(n)) = (old.as_str(), new.as_str())
                        && o != n
                    {
                        let folder = if i == 0 { "originals" } else { "archive" };
                        out.line(format!("#{} {folder}/{o} -> {folder}/{n}", m["id"]))?;
                    }
                }
            }
            let what = if result["dry_run"].as_bool() == Some(true) {
                "would be moved"
            } else {
                "moved"
            };
            out.note(format!("{} document(s) {what}", moves.len()))?;
        }
        None => out.note(format!(
            "{} document(s) in {} batch(es) queued for renaming",
            result["documents"], result["batches"]
        ))?,
    }
    Ok(())
}

/// The decryptor's counts.
pub fn print_decrypt_result(out: &Output, result: &Value) -> Result<(), CliError> {
    let failed = result["failed"].as_array().map(Vec::len).unwrap_or(0);
    out.line(format!(
        "{} document(s) decrypted, {failed} not",
        result["decrypted"]
    ))?;
    for f in result["failed"].as_array().into_iter().flatten() {
        out.warn(format!(
            "#{}: {}",
            f["document_id"],
            f["error"].as_str().unwrap_or_default()
        ));
    }
    Ok(())
}
