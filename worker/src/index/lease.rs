//! The index writer's lease: one holder cluster-wide, through `shared::queue` (`lease.lua`,
//! key `<prefix>:{<prefix>:index}:lease:writer`, term counter `…:lease_term:writer`).
//!
//! Taken before an `IndexWriter` is opened, renewed every third of its TTL while held, released
//! when the writer is closed. Each holder gets a larger fencing term; commits store it in the
//! index's commit payload and a writer refuses to commit over a later term
//! ([`super::store::Writer::commit`]); right before each commit the holder also confirms with
//! Redis that it still holds the lease ([`WriterLease::confirm`]), so a worker that was frozen
//! past its lease stops instead of writing beside the new holder.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use paperboy_shared::job::INDEX_QUEUE;
use paperboy_shared::queue::{LeaseOp, LeaseState, Queue};
use tokio::task::JoinHandle;

use super::IndexError;

/// The lease's name inside the queue `index`.
pub const WRITER: &str = "writer";

pub struct WriterLease {
    queue: Queue,
    token: String,
    ttl: Duration,
    term: u64,
    lost: Arc<AtomicBool>,
    renewer: Option<JoinHandle<()>>,
}

impl WriterLease {
    /// Takes the lease, trying for up to `wait` (every 200 ms) while another holds it; then
    /// [`IndexError::Busy`] (the job is retried with backoff: the caller never blocks longer).
    pub async fn acquire(
        queue: &Queue,
        token: String,
        ttl: Duration,
        wait: Duration,
    ) -> Result<WriterLease, IndexError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match queue
                .lease(INDEX_QUEUE, WRITER, &token, ttl, LeaseOp::Acquire)
                .await?
            {
                LeaseState::Held(term) => {
                    let lost = Arc::new(AtomicBool::new(false));
                    let renewer = tokio::spawn(renew_loop(
                        queue.clone(),
                        token.clone(),
                        ttl,
                        term,
                        lost.clone(),
                    ));
                    tracing::debug!(term, "index writer lease taken");
                    return Ok(WriterLease {
                        queue: queue.clone(),
                        token,
                        ttl,
                        term,
                        lost,
                        renewer: Some(renewer),
                    });
                }
                LeaseState::Busy(holder) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(IndexError::Busy { holder });
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                LeaseState::Released(_) => unreachable!("acquire never answers released"),
            }
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    /// Checks with Redis that this holder still has the lease (and renews it); call right before
    /// a commit.
    pub async fn confirm(&self) -> Result<(), IndexError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(IndexError::LeaseLost);
        }
        match self
            .queue
            .lease(INDEX_QUEUE, WRITER, &self.token, self.ttl, LeaseOp::Renew)
            .await
        {
            Ok(LeaseState::Held(t)) if t == self.term => Ok(()),
            Ok(_) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(IndexError::LeaseLost)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease back (the next writer need not wait for the TTL).
    pub async fn release(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if let Err(e) = self
            .queue
            .lease(INDEX_QUEUE, WRITER, &self.token, self.ttl, LeaseOp::Release)
            .await
        {
            tracing::warn!(error = %e, "cannot release the index writer lease; it expires by itself");
        }
    }
}

impl Drop for WriterLease {
    fn drop(&mut self) {
        // Dropped without `release` (an error path, a cancelled job): stop renewing and give it
        // back in the background; if that fails the TTL ends it.
        if let Some(r) = self.renewer.take() {
            r.abort();
            let (q, token, ttl) = (self.queue.clone(), self.token.clone(), self.ttl);
            tokio::spawn(async move {
                let _ = q
                    .lease(INDEX_QUEUE, WRITER, &token, ttl, LeaseOp::Release)
                    .await;
            });
        }
    }
}

async fn renew_loop(q: Queue, token: String, ttl: Duration, term: u64, lost: Arc<AtomicBool>) {
    let every = (ttl / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        match q
            .lease(INDEX_QUEUE, WRITER, &token, ttl, LeaseOp::Renew)
            .await
        {
            Ok(LeaseState::Held(t)) if t == term => {}
            Ok(other) => {
                tracing::warn!(?other, term, "index writer lease lost");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // Redis unreachable: keep trying; `confirm` before a commit decides.
            Err(e) => tracing::debug!(error = %e, "index writer lease not renewed"),
        }
    }
}
