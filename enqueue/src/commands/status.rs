//! `paperboy status`: every queue's counts and the live workers.

use paperboy_shared::job::all_queues;
use paperboy_shared::queue::Queue;
use serde_json::json;

use crate::error::CliError;
use crate::output::{Output, Table, fmt_duration_ms, now_ms};

pub async fn status(queue: &Queue, out: &Output) -> Result<(), CliError> {
    // One multiplexed connection: the requests go out together.
    let (stats, workers) = tokio::try_join!(
        futures::future::try_join_all(all_queues().into_iter().map(|q| queue.stats(q))),
        queue.workers(),
    )?;
    if out.json {
        out.json_doc(&json!({ "queues": stats, "workers": workers }))?;
        return Ok(());
    }
    let mut t = Table::new(&[
        "QUEUE",
        "WAITING",
        "SCHEDULED",
        "RUNNING",
        "DEAD",
        "OLDEST WAITING",
    ]);
    for s in &stats {
        t.row(vec![
            s.queue.clone(),
            s.waiting.to_string(),
            s.scheduled.to_string(),
            s.running.to_string(),
            s.dead.to_string(),
            s.oldest_waiting_ms
                .map(fmt_duration_ms)
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    out.table(&t)?;
    out.line("")?;
    if workers.is_empty() {
        out.line("no live workers")?;
        return Ok(());
    }
    let now = now_ms();
    let mut w = Table::new(&["WORKER", "HOST", "PID", "QUEUES", "UP", "RUNNING"]);
    for info in &workers {
        w.row(vec![
            info.id.clone(),
            info.host.clone(),
            info.pid.to_string(),
            info.queues.join(","),
            fmt_duration_ms(now - info.started_at_ms),
            if info.running.is_empty() {
                "-".into()
            } else {
                info.running.join(",")
            },
        ]);
    }
    out.table(&w)?;
    Ok(())
}
