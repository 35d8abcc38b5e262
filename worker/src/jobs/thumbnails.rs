//! `thumbnails`: regenerate WebP thumbnails. (Being built on the `consume` branch.)

use super::{JobContext, JobError};

pub async fn run(
    document: Option<i64>,
    batch: Option<Vec<i64>>,
    ctx: &JobContext,
) -> Result<serde_json::Value, JobError> {
    let _ = (document, batch, ctx);
    Err(JobError::Permanent(
        "thumbnails are not available in this build yet".into(),
    ))
}
