//! `consume`: one staged file into the archive. (Being built on the `consume` branch.)

use paperboy_shared::job::ConsumeArgs;

use super::{JobContext, JobError};

pub async fn run(args: ConsumeArgs, ctx: &JobContext) -> Result<serde_json::Value, JobError> {
    let _ = ctx;
    Err(JobError::Permanent(format!(
        "consume of {} is not available in this build yet",
        args.original_filename
    )))
}
