//! `ping`: a round trip through a worker.

use std::time::Duration;

use serde_json::json;

use super::{JobContext, JobError};

pub async fn run(
    sleep_ms: u64,
    fail: Option<String>,
    ctx: &JobContext,
) -> Result<serde_json::Value, JobError> {
    let started = std::time::Instant::now();
    let step = Duration::from_millis(100);
    let total = Duration::from_millis(sleep_ms);
    while started.elapsed() < total {
        ctx.check_cancelled()?;
        let left = total - started.elapsed();
        tokio::time::sleep(left.min(step)).await;
        let done = started.elapsed().min(total).as_millis() as u64;
        ctx.progress(done, sleep_ms, "sleeping");
    }
    match fail.as_deref() {
        Some("transient") => {
            return Err(JobError::Transient("ping asked to fail (transient)".into()));
        }
        Some("permanent") => {
            return Err(JobError::Permanent("ping asked to fail (permanent)".into()));
        }
        Some(other) => {
            return Err(JobError::Permanent(format!(
                "ping: unknown failure mode {other:?} (use transient or permanent)"
            )));
        }
        None => {}
    }
    Ok(json!({
        "pong": true,
        "worker": hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
        "pid": std::process::id(),
        "slept_ms": sleep_ms,
    }))
}
