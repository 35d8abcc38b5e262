//! `/status`: a read-only HTML page on the worker's HTTP port for people: every queue with its
//! depth and the age of its oldest waiting job, the live workers and the jobs they run (with
//! progress), the scheduler's leader, jobs waiting for a retry with their last error, and the
//! dead set with its errors. Plain server-side HTML (no script, no build step); it reloads
//! itself every 5 s.
//!
//! Every read is bounded (the queue client's `list` reads at most a few windows), so the page
//! costs the same with a million finished jobs. Whatever Redis says is escaped before it is
//! written into the page (job errors quote file names and user input).

use std::fmt::Write as _;

use paperboy_shared::job::all_queues;
use paperboy_shared::queue::{JobRecord, JobState, Queue, QueueError, QueueStats, WorkerInfo};

/// Jobs shown per section.
const LIMIT: usize = 25;

/// What the page shows, read from Redis in one go.
pub struct Snapshot {
    pub stats: Vec<QueueStats>,
    pub workers: Vec<WorkerInfo>,
    pub leader: Option<String>,
    pub running: Vec<JobRecord>,
    pub retrying: Vec<JobRecord>,
    pub dead: Vec<JobRecord>,
    pub now_ms: i64,
}

impl Snapshot {
    pub async fn read(queue: &Queue) -> Result<Snapshot, QueueError> {
        let (stats, workers, leader, running, retrying, dead) = tokio::try_join!(
            futures::future::try_join_all(all_queues().into_iter().map(|q| queue.stats(q))),
            queue.workers(),
            queue.leader(),
            queue.list(None, Some(JobState::Running), LIMIT),
            queue.list(None, Some(JobState::Scheduled), LIMIT),
            queue.list(None, Some(JobState::Dead), LIMIT),
        )?;
        Ok(Snapshot {
            stats,
            workers,
            leader,
            running,
            retrying,
            dead,
            now_ms: chrono::Utc::now().timestamp_millis(),
        })
    }
}

/// HTML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `850ms`, `5.2s`, `3m04s`, `1h02m`, `2d04h` (as `paperboy jobs` and `status` print them).
fn age(ms: i64) -> String {
    paperboy_shared::human::duration_ms(ms)
}

fn last_error(r: &JobRecord) -> String {
    r.errors
        .last()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}th,td{border:1px solid #ccc;padding:.3em .6em;\
text-align:left;vertical-align:top}th{background:#f3f3f3}td.n{text-align:right}\
.bad{color:#a00}.ok{color:#070}progress{width:8em}.err{font-family:monospace;white-space:pre-wrap;\
max-width:60em}";

/// The whole page.
pub fn render(s: &Snapshot) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>paperboy status</title>\
         <style>{STYLE}</style></head><body><h1>paperboy status</h1>"
    );
    let _ = write!(
        h,
        "<p>{} live worker{}; scheduler leader: {}</p>",
        s.workers.len(),
        if s.workers.len() == 1 { "" } else { "s" },
        match &s.leader {
            Some(l) => format!("<span class=\"ok\">{}</span>", esc(l)),
            None => "<span class=\"bad\">none</span>".into(),
        }
    );

    h.push_str(
        "<h2>Queues</h2><table id=\"queues\"><tr><th>queue</th><th>waiting</th>\
         <th>scheduled (retry)</th><th>running</th><th>dead</th><th>oldest waiting</th></tr>",
    );
    for q in &s.stats {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n{}\">{}</td><td>{}</td></tr>",
            esc(&q.queue),
            q.waiting,
            q.scheduled,
            q.running,
            if q.dead > 0 { " bad" } else { "" },
            q.dead,
            q.oldest_waiting_ms.map(age).unwrap_or_else(|| "–".into()),
        );
    }
    h.push_str("</table>");

    h.push_str("<h2>Workers</h2>");
    if s.workers.is_empty() {
        h.push_str("<p id=\"workers\" class=\"bad\">No live workers: nothing runs.</p>");
    } else {
        h.push_str(
            "<table id=\"workers\"><tr><th>worker</th><th>host</th><th>pid</th><th>queues</th>\
             <th>up</th><th>last heartbeat</th><th>running jobs</th></tr>",
        );
        for w in &s.workers {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td>\
                 <td>{} ago</td><td>{}</td></tr>",
                esc(&w.id),
                esc(&w.host),
                w.pid,
                esc(&w.queues.join(", ")),
                age(s.now_ms - w.started_at_ms),
                age(s.now_ms - w.last_seen_ms),
                w.running.len(),
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Running jobs</h2>");
    if s.running.is_empty() {
        h.push_str("<p id=\"running\">None.</p>");
    } else {
        h.push_str(
            "<table id=\"running\"><tr><th>job</th><th>kind</th><th>worker</th><th>running for</th>\
             <th>progress</th></tr>",
        );
        for r in &s.running {
            let p = &r.progress;
            let progress = if p.total > 0 {
                format!(
                    "<progress value=\"{}\" max=\"{}\"></progress> {} / {} {}",
                    p.done,
                    p.total,
                    p.done,
                    p.total,
                    esc(&p.message)
                )
            } else {
                esc(&p.message)
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{progress}</td></tr>",
                esc(&r.id),
                esc(&r.kind),
                esc(r.worker.as_deref().unwrap_or("")),
                r.started_at_ms
                    .map(|t| age(s.now_ms - t))
                    .unwrap_or_default(),
            );
        }
        h.push_str("</table>");
    }

    for (title, id, jobs, when) in [
        (
            "Waiting for a retry (recent failures)",
            "retrying",
            &s.retrying,
            "retry in",
        ),
        ("Dead jobs", "dead", &s.dead, "died"),
    ] {
        let _ = write!(h, "<h2>{title}</h2>");
        if jobs.is_empty() {
            let _ = write!(h, "<p id=\"{id}\">None.</p>");
            continue;
        }
        let _ = write!(
            h,
            "<table id=\"{id}\"><tr><th>job</th><th>kind</th><th>attempts</th><th>{when}</th>\
             <th>last error</th></tr>"
        );
        for r in jobs.iter() {
            let time = if id == "dead" {
                r.finished_at_ms
                    .map(|t| format!("{} ago", age(s.now_ms - t)))
                    .unwrap_or_default()
            } else {
                r.run_at_ms.map(|t| age(t - s.now_ms)).unwrap_or_default()
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{} / {}</td><td>{time}</td>\
                 <td class=\"err\">{}</td></tr>",
                esc(&r.id),
                esc(&r.kind),
                r.attempts,
                r.max_attempts,
                esc(&last_error(r)),
            );
        }
        h.push_str("</table>");
        if id == "dead" {
            h.push_str(
                "<p>Retry with <code>paperboy jobs retry ID</code> (or <code>--all</code>).</p>",
            );
        }
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    fn record(id: &str, state: JobState, error: &str) -> JobRecord {
        JobRecord {
            id: id.into(),
            kind: "consume".into(),
            queue: "consume".into(),
            job: serde_json::json!({}),
            state,
            attempts: 2,
            max_attempts: 5,
            starts: 2,
            recovered: 0,
            errors: vec![paperboy_shared::queue::ErrorRecord {
                attempt: 2,
                at_ms: 1_000,
                class: paperboy_shared::ErrorClass::Transient,
                message: error.into(),
                worker: "w".into(),
            }],
            created_at_ms: 0,
            started_at_ms: Some(500),
            finished_at_ms: None,
            run_at_ms: Some(61_000),
            worker: None,
            result: None,
            progress: Default::default(),
            unique_key: None,
            cancel_requested: false,
        }
    }

    #[test]
    fn a_job_waiting_for_its_retry_shows_when_and_why() {
        let page = render(&Snapshot {
            stats: vec![],
            workers: vec![],
            leader: Some("h:1:x".into()),
            running: vec![],
            retrying: vec![record("01J", JobState::Scheduled, "database <busy>")],
            dead: vec![],
            now_ms: 1_000,
        });
        let retry = &page[page.find("id=\"retrying\"").unwrap()..];
        let retry = &retry[..retry.find("</table>").unwrap()];
        assert!(retry.contains("<td>01J</td><td>consume</td>"), "{retry}");
        assert!(retry.contains("2 / 5"), "{retry}");
        assert!(retry.contains("1m00s"), "retry in a minute: {retry}");
        assert!(retry.contains("database &lt;busy&gt;"), "{retry}");
        assert!(page.contains("<p id=\"dead\">None.</p>"));
    }

    #[test]
    fn an_empty_cluster_says_nothing_runs() {
        let page = render(&Snapshot {
            stats: vec![],
            workers: vec![],
            leader: None,
            running: vec![],
            retrying: vec![],
            dead: vec![],
            now_ms: 0,
        });
        assert!(page.contains("No live workers"));
        assert!(page.contains("scheduler leader: <span class=\"bad\">none</span>"));
    }
}
