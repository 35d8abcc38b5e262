//! `paperboy jobs list|show|retry|cancel`.

use paperboy_shared::queue::{JobRecord, JobState, Queue};
use serde_json::{Value, json};

use crate::error::CliError;
use crate::output::{Output, Table, fmt_duration_ms, fmt_time, now_ms};

pub async fn list(
    queue: &Queue,
    out: &Output,
    queue_name: Option<&str>,
    state: Option<JobState>,
    limit: usize,
) -> Result<(), CliError> {
    let jobs = queue.list(queue_name, state, limit).await?;
    if out.json {
        out.json_doc(&jobs)?;
        return Ok(());
    }
    if jobs.is_empty() {
        out.line("no jobs")?;
        return Ok(());
    }
    let now = now_ms();
    let mut t = Table::new(&["ID", "KIND", "STATE", "ATTEMPTS", "AGE", "LAST ERROR"]);
    for j in &jobs {
        t.row(vec![
            j.id.clone(),
            j.kind.clone(),
            j.state.to_string(),
            format!("{}/{}", j.attempts, j.max_attempts),
            fmt_duration_ms(now - j.created_at_ms),
            j.errors
                .last()
                .map(|e| shorten(&e.message, 60))
                .unwrap_or_default(),
        ]);
    }
    out.table(&t)?;
    Ok(())
}

pub async fn show(queue: &Queue, out: &Output, id: &str) -> Result<(), CliError> {
    let r = queue.get(id).await?;
    if out.json {
        out.json_doc(&r)?;
    } else {
        out.line(describe(&r, now_ms()).trim_end())?;
    }
    Ok(())
}

/// The text of `jobs show`.
pub fn describe(r: &JobRecord, now: i64) -> String {
    let mut s = String::new();
    let mut field = |k: &str, v: String| s.push_str(&format!("{:<13}{v}\n", format!("{k}:")));
    field("id", r.id.clone());
    field("kind", format!("{} (queue {})", r.kind, r.queue));
    field("args", args_of(&r.job));
    let mut state = r.state.to_string();
    if r.cancel_requested && !r.state.is_terminal() {
        state.push_str(" (cancel requested)");
    }
    field("state", state);
    field(
        "attempts",
        format!(
            "{} failed of at most {}; started {} time{}, recovered from dead workers {} time{}",
            r.attempts,
            r.max_attempts,
            r.starts,
            plural(r.starts),
            r.recovered,
            plural(r.recovered)
        ),
    );
    if let Some(w) = &r.worker {
        field("worker", w.clone());
    }
    field(
        "created",
        format!(
            "{} ({} ago)",
            fmt_time(r.created_at_ms),
            fmt_duration_ms(now - r.created_at_ms)
        ),
    );
    if let (Some(at), JobState::Scheduled) = (r.run_at_ms, r.state) {
        field(
            "next run",
            format!("{} (in {})", fmt_time(at), fmt_duration_ms(at - now)),
        );
    }
    if let Some(st) = r.started_at_ms {
        field(
            "started",
            format!(
                "{} (waited {})",
                fmt_time(st),
                fmt_duration_ms(st - r.created_at_ms)
            ),
        );
    }
    match (r.started_at_ms, r.finished_at_ms) {
        (Some(st), Some(fin)) => field(
            "finished",
            format!("{} (ran {})", fmt_time(fin), fmt_duration_ms(fin - st)),
        ),
        (None, Some(fin)) => field("finished", fmt_time(fin)),
        (Some(st), None) if r.state == JobState::Running => {
            field("running for", fmt_duration_ms(now - st))
        }
        _ => {}
    }
    let p = &r.progress;
    if p.total > 0 || !p.message.is_empty() {
        let mut text = if p.total > 0 {
            format!("{}/{}", p.done, p.total)
        } else {
            String::new()
        };
        if !p.message.is_empty() {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&p.message);
        }
        field("progress", text);
    }
    if let Some(k) = &r.unique_key {
        field("unique key", k.clone());
    }
    if let Some(res) = &r.result {
        field("result", res.to_string());
    }
    if r.errors.is_empty() {
        field("errors", "none".into());
    } else {
        field("errors", String::new());
        for e in &r.errors {
            s.push_str(&format!(
                "  #{} {} {:?} on {}: {}\n",
                e.attempt,
                fmt_time(e.at_ms),
                e.class,
                e.worker,
                e.message
            ));
        }
    }
    s
}

fn args_of(job: &Value) -> String {
    match job.get("args") {
        Some(a) => a.to_string(),
        None => "{}".into(),
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn shorten(s: &str, max: usize) -> String {
    let first_line = s.lines().next().unwrap_or("");
    if first_line.chars().count() <= max && first_line.len() == s.len() {
        return first_line.to_string();
    }
    let cut: String = first_line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

pub async fn retry(queue: &Queue, out: &Output, id: &str) -> Result<(), CliError> {
    queue.retry(id).await?;
    if out.json {
        out.json_line(&json!({"id": id, "state": "waiting"}))?;
    } else {
        out.note(format!("job {id} is waiting again"))?;
    }
    Ok(())
}

pub async fn retry_all_dead(
    queue: &Queue,
    out: &Output,
    queue_name: Option<&str>,
) -> Result<(), CliError> {
    let n = queue.retry_all_dead(queue_name).await?;
    if out.json {
        out.json_line(&json!({"retried": n, "queue": queue_name}))?;
    } else {
        out.note(format!(
            "{n} dead job{} back to waiting{}",
            if n == 1 { "" } else { "s" },
            queue_name
                .map(|q| format!(" in queue {q}"))
                .unwrap_or_default()
        ))?;
    }
    Ok(())
}

pub async fn cancel(queue: &Queue, out: &Output, id: &str) -> Result<(), CliError> {
    let state = queue.cancel(id).await?;
    if out.json {
        out.json_line(&json!({"id": id, "state": state}))?;
    } else if state == JobState::Cancelled {
        out.note(format!("job {id} cancelled"))?;
    } else {
        out.note(format!(
            "job {id} is {state}: its worker was asked to stop (`paperboy jobs show {id}`)"
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use paperboy_shared::queue::{ErrorRecord, Progress};

    #[test]
    fn show_lists_args_timings_progress_and_errors() {
        let r = JobRecord {
            id: "01JX".into(),
            kind: "thumbnails".into(),
            queue: "thumbnails".into(),
            job: json!({"kind": "thumbnails", "args": {"document": 4}}),
            state: JobState::Dead,
            attempts: 2,
            max_attempts: 5,
            starts: 2,
            recovered: 1,
            errors: vec![ErrorRecord {
                attempt: 2,
                at_ms: 2_000,
                class: paperboy_shared::ErrorClass::Permanent,
                message: "no such document 4".into(),
                worker: "box:1:x".into(),
            }],
            created_at_ms: 0,
            started_at_ms: Some(1_000),
            finished_at_ms: Some(2_500),
            run_at_ms: None,
            worker: Some("box:1:x".into()),
            result: None,
            progress: Progress {
                done: 1,
                total: 3,
                message: "rendering".into(),
            },
            unique_key: None,
            cancel_requested: false,
        };
        let text = describe(&r, 10_000);
        for want in [
            "id:          01JX",
            "kind:        thumbnails (queue thumbnails)",
            r#"args:        {"document":4}"#,
            "state:       dead",
            "2 failed of at most 5; started 2 times, recovered from dead workers 1 time",
            "(waited 1.0s)",
            "(ran 1.5s)",
            "progress:    1/3 rendering",
            "Permanent on box:1:x: no such document 4",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
    }

    #[test]
    fn long_errors_are_shortened_in_lists() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("a very long message", 8), "a very …");
        assert_eq!(shorten("line one\ntrace", 60), "line one…");
    }
}
