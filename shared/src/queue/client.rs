//! The queue client: used by the CLI (enqueue, look, retry, cancel) and the worker runtime
//! (fetch, heartbeat, report, maintenance).

use std::time::Duration;

use super::*;

/// A connection to one paperboy instance's queues (cheap to clone: one multiplexed connection
/// with automatic reconnect).
#[derive(Clone)]
pub struct Queue {
    // Filled by the implementation: ConnectionManager, prefix, url (without password for errors).
}

/// A dedicated connection for blocking pops (a blocking command would stall every other user of
/// a multiplexed connection).
pub struct BlockingConn {}

impl Queue {
    /// Connects and checks Redis answers. `prefix` namespaces every key.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, QueueError> {
        let _ = (url, prefix);
        todo!("queue implementation")
    }

    pub fn prefix(&self) -> &str {
        todo!("queue implementation")
    }

    /// Round trip to Redis (readiness).
    pub async fn ping(&self) -> Result<(), QueueError> {
        todo!("queue implementation")
    }

    // ---- client side -------------------------------------------------------------------------

    /// Adds a job to its kind's queue. A job with a unique key that equals one queued or running
    /// returns `Enqueued::Existing` with that job's id and adds nothing.
    pub async fn enqueue(&self, job: &Job) -> Result<Enqueued, QueueError> {
        let _ = job;
        todo!("queue implementation")
    }

    /// One job by id, whatever its queue.
    pub async fn get(&self, id: &str) -> Result<JobRecord, QueueError> {
        let _ = id;
        todo!("queue implementation")
    }

    /// Jobs of one queue (or all), of one state (or all), newest first, at most `limit`.
    pub async fn list(
        &self,
        queue: Option<&str>,
        state: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, QueueError> {
        let _ = (queue, state, limit);
        todo!("queue implementation")
    }

    /// A dead, failed or cancelled job back to waiting, its attempts reset.
    pub async fn retry(&self, id: &str) -> Result<(), QueueError> {
        let _ = id;
        todo!("queue implementation")
    }

    /// Every dead job (of one queue or all) back to waiting; returns how many, in steps.
    pub async fn retry_all_dead(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        let _ = queue;
        todo!("queue implementation")
    }

    /// Cancels a waiting or scheduled job at once; a running one is asked to stop (its worker
    /// learns it at the next heartbeat). Returns the job's state after the call.
    pub async fn cancel(&self, id: &str) -> Result<JobState, QueueError> {
        let _ = id;
        todo!("queue implementation")
    }

    pub async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let _ = queue;
        todo!("queue implementation")
    }

    /// Live workers (heartbeat within their lease).
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, QueueError> {
        todo!("queue implementation")
    }

    // ---- worker side -------------------------------------------------------------------------

    /// Announces a worker (for `status`) and takes a lease in each of its queues.
    pub async fn register_worker(
        &self,
        info: &WorkerInfo,
        opts: &WorkerOptions,
    ) -> Result<(), QueueError> {
        let _ = (info, opts);
        todo!("queue implementation")
    }

    /// Removes a worker that stopped cleanly (its inflight lists must be empty or released).
    pub async fn unregister_worker(&self, worker: &str, queues: &[String]) -> Result<(), QueueError> {
        let _ = (worker, queues);
        todo!("queue implementation")
    }

    /// Takes up to `max` waiting jobs of `queue` for `worker`, without blocking.
    pub async fn fetch(
        &self,
        worker: &str,
        queue: &str,
        max: usize,
        opts: &WorkerOptions,
    ) -> Result<Vec<Fetched>, QueueError> {
        let _ = (worker, queue, max, opts);
        todo!("queue implementation")
    }

    pub async fn blocking_connection(&self) -> Result<BlockingConn, QueueError> {
        todo!("queue implementation")
    }

    /// Waits up to `timeout` for one job of `queue` (wakes up as soon as one is pushed).
    pub async fn fetch_blocking(
        &self,
        conn: &mut BlockingConn,
        worker: &str,
        queue: &str,
        timeout: Duration,
        opts: &WorkerOptions,
    ) -> Result<Option<Fetched>, QueueError> {
        let _ = (conn, worker, queue, timeout, opts);
        todo!("queue implementation")
    }

    /// Renews the worker's lease in each queue; reports cancel requests and lost leases.
    pub async fn heartbeat(
        &self,
        worker: &str,
        queues: &[String],
        opts: &WorkerOptions,
    ) -> Result<HeartbeatReply, QueueError> {
        let _ = (worker, queues, opts);
        todo!("queue implementation")
    }

    pub async fn progress(&self, queue: &str, id: &str, progress: &Progress) -> Result<(), QueueError> {
        let _ = (queue, id, progress);
        todo!("queue implementation")
    }

    /// Ends a job. Ignored (`Reported::Stale`) if `worker` no longer holds it.
    pub async fn report(
        &self,
        worker: &str,
        queue: &str,
        id: &str,
        outcome: Outcome,
    ) -> Result<Reported, QueueError> {
        let _ = (worker, queue, id, outcome);
        todo!("queue implementation")
    }

    /// Gives a job back to waiting (graceful stop past the grace period); does not count as a
    /// start.
    pub async fn release(&self, worker: &str, queue: &str, id: &str) -> Result<(), QueueError> {
        let _ = (worker, queue, id);
        todo!("queue implementation")
    }

    /// One bounded maintenance pass over a queue: due retries back to waiting, expired leases'
    /// jobs back (or to dead as poison), finished jobs past retention deleted.
    pub async fn maintain(&self, queue: &str, opts: &WorkerOptions) -> Result<Maintenance, QueueError> {
        let _ = (queue, opts);
        todo!("queue implementation")
    }
}
