//! `paperboy index update`: which documents an outside edit touched, as `index_update` jobs.

use paperboy_shared::config::Config;
use paperboy_shared::db::index::{Carrier, ids_carrying};
use paperboy_shared::job::Job;

use super::documents;
use crate::cli::IndexUpdateCmd;
use crate::error::CliError;

/// Ids per `index_update` job: the payload lives in Redis, so a tag on 100k documents makes
/// 20 jobs of a few dozen KiB rather than one of a MiB.
pub const IDS_PER_JOB: usize = 5_000;

/// The carriers named on the command line.
pub fn carriers(u: &IndexUpdateCmd) -> Vec<Carrier> {
    let mut v: Vec<Carrier> = u.tags.iter().map(|&i| Carrier::Tag(i)).collect();
    v.extend(u.correspondents.iter().map(|&i| Carrier::Correspondent(i)));
    v.extend(u.document_types.iter().map(|&i| Carrier::DocumentType(i)));
    v.extend(u.storage_paths.iter().map(|&i| Carrier::StoragePath(i)));
    v
}

/// Sorted, deduplicated ids in jobs of at most [`IDS_PER_JOB`].
pub fn jobs_for(mut ids: Vec<i64>) -> Vec<Job> {
    ids.sort_unstable();
    ids.dedup();
    ids.chunks(IDS_PER_JOB)
        .map(|c| Job::IndexUpdate { ids: c.to_vec() })
        .collect()
}

/// The jobs for `paperboy index update …`. Ids given directly are taken as they are (a deleted
/// document's id removes its entry); carriers are looked up in the database.
pub async fn update_jobs(config: &Config, u: &IndexUpdateCmd) -> Result<Vec<Job>, CliError> {
    let carriers = carriers(u);
    if u.ids.is_empty() && carriers.is_empty() {
        return Err(CliError::Other(
            "name the documents to update: ids, or --tag / --correspondent / --document-type / \
             --storage-path ID (`paperboy index reindex` rebuilds everything)"
                .into(),
        ));
    }
    let mut ids = u.ids.clone();
    if !carriers.is_empty() {
        let db = documents::open(config).await?;
        for c in carriers {
            ids.extend(ids_carrying(&db, c).await?);
        }
    }
    if ids.is_empty() {
        return Err(CliError::Other(
            "no document carries the objects named: nothing to update".into(),
        ));
    }
    Ok(jobs_for(ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deduplicated_and_split_into_bounded_jobs() {
        let mut ids: Vec<i64> = (1..=12_001).rev().collect();
        ids.extend([5, 5, 7]);
        let jobs = jobs_for(ids);
        let sizes: Vec<usize> = jobs
            .iter()
            .map(|j| match j {
                Job::IndexUpdate { ids } => ids.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [5_000, 5_000, 2_001]);
        let Job::IndexUpdate { ids } = &jobs[0] else {
            unreachable!()
        };
        assert_eq!(ids[..3], [1, 2, 3]);
    }
}
