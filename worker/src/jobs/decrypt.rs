//! `decrypt_documents`: not built yet.

use super::{JobContext, JobError};

pub async fn run(_ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    Err(JobError::Permanent(
        "decrypt_documents is not built yet".into(),
    ))
}
