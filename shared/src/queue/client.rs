//! The queue client: used by the CLI (enqueue, look, retry, cancel) and the worker runtime
//! (fetch, heartbeat, report, maintenance).
//!
//! Every state change is one Lua script from `scripts/` (EVALSHA with automatic fallback to
//! loading the script); reads that need a consistent picture are scripts too. Times inside the
//! scripts come from Redis' clock, so workers on different hosts agree on lease deadlines. The
//! worker registry (`status`) uses the caller's clock.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, RedisError, Script};

use super::keys::Keys;
use super::*;

/// How long a connection attempt may take before Redis counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may take. Not redis-rs' 500 ms default, which turns a slow Redis into
/// a failed worker (crates.md §2.4 item 6).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Ids per step of every bounded script (promote, cleanup, retry_all_dead).
const BATCH: usize = 100;
/// Expired leases handled per maintenance pass.
const RECOVER_WORKERS: usize = 10;
/// How long the "your jobs were taken back" marker waits for the worker's next heartbeat.
const LOST_MARKER: Duration = Duration::from_secs(24 * 3600);
/// Longest time one BLMOVE blocks (`fetch_blocking` loops for longer waits).
const MAX_BLOCK: Duration = Duration::from_secs(1);
/// After `recover` took a worker's jobs back, how long a BLMOVE it had sent may still move an id
/// into its inflight list; `maintain` looks at that list once more after this time.
const LATE_MOVE: Duration = Duration::from_secs(2);

/// A script and its source (the source goes into `SCRIPT LOAD` ahead of pipelined EVALSHAs).
struct Lua {
    script: Script,
    code: &'static str,
}

impl Lua {
    fn new(code: &'static str) -> Self {
        Lua {
            script: Script::new(code),
            code,
        }
    }
}

/// Packs script arguments (`ARGV`), each one Redis argument.
macro_rules! args {
    ($($a:expr),* $(,)?) => {{
        let mut v: Vec<Vec<u8>> = Vec::new();
        $( redis::ToRedisArgs::write_redis_args(&$a, &mut v); )*
        v
    }};
}

macro_rules! lua {
    ($file:literal) => {
        Lua::new(concat!(
            include_str!("scripts/common.lua"),
            "\n",
            include_str!(concat!("scripts/", $file))
        ))
    };
}

struct Scripts {
    enqueue: Lua,
    fetch: Lua,
    start: Lua,
    heartbeat: Lua,
    progress: Lua,
    report: Lua,
    release: Lua,
    unregister: Lua,
    maintain: Lua,
    cancel: Lua,
    retry: Lua,
    stats: Lua,
    lead: Lua,
    tick: Lua,
    lease: Lua,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    enqueue: lua!("enqueue.lua"),
    fetch: lua!("fetch.lua"),
    start: lua!("start.lua"),
    heartbeat: lua!("heartbeat.lua"),
    progress: lua!("progress.lua"),
    report: lua!("report.lua"),
    release: lua!("release.lua"),
    unregister: lua!("unregister.lua"),
    maintain: lua!("maintain.lua"),
    cancel: lua!("cancel.lua"),
    retry: lua!("retry.lua"),
    stats: lua!("stats.lua"),
    lead: lua!("lead.lua"),
    tick: lua!("tick.lua"),
    lease: lua!("lease.lua"),
});

/// The pseudo-queue whose hash tag holds the scheduler's keys (`leader`, `term`, `last:<entry>`).
pub const SCHEDULER: &str = "scheduler";

/// What [`Queue::claim_tick`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickClaim {
    /// Recorded as fired: enqueue its job.
    Fire,
    /// This or a later tick was already fired.
    AlreadyFired,
    /// The caller does not hold the leader lease.
    NotLeader,
}

/// What [`Queue::lead`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leadership {
    /// Just became the leader.
    Elected,
    /// Still the leader; the lease is renewed.
    Renewed,
    /// Another worker leads.
    Follower,
}

/// What [`Queue::lease`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// The caller holds the lease (acquired or renewed), with this fencing term: every new
    /// holder gets a larger one.
    Held(u64),
    /// Another holder has it (its token; empty when nobody holds it, on a renew).
    Busy(String),
    /// Released (or it was not the caller's).
    Released(bool),
}

/// What to do with a named lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOp {
    Acquire,
    Renew,
    Release,
}

/// A connection to one paperboy instance's queues (cheap to clone: one multiplexed connection
/// with automatic reconnect).
#[derive(Clone)]
pub struct Queue {
    conn: ConnectionManager,
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    keys: Keys,
    /// The URL without its password, for error messages.
    url: String,
}

/// A dedicated connection for blocking pops (a blocking command would stall every other user of
/// a multiplexed connection). Reconnects on the next call after an error.
pub struct BlockingConn {
    conn: Option<MultiplexedConnection>,
    client: Client,
    url: String,
}

impl BlockingConn {
    async fn get(&mut self) -> Result<&mut MultiplexedConnection, QueueError> {
        if self.conn.is_none() {
            self.conn = Some(open_blocking(&self.client, &self.url).await?);
        }
        Ok(self.conn.as_mut().expect("just set"))
    }
}

async fn open_blocking(client: &Client, url: &str) -> Result<MultiplexedConnection, QueueError> {
    // No response timeout: BLMOVE legitimately waits; fetch_blocking bounds each call itself.
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(None);
    match tokio::time::timeout(
        CONNECT_TIMEOUT + Duration::from_millis(500),
        client.get_multiplexed_async_connection_with_config(&cfg),
    )
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(unreachable(url, e)),
        Err(_) => Err(unreachable(url, timeout_error("connecting"))),
    }
}

/// `url` with its password removed (for messages). Unparsable input keeps only the scheme and
/// whatever follows an `@`.
pub fn redact_url(url: &str) -> String {
    if let Some(mut u) = redis::parse_redis_url(url) {
        if u.password().is_some() {
            let _ = u.set_password(None);
        }
        return u.to_string();
    }
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://{}", &url[..s], &url[a + 1..]),
        _ => url.to_string(),
    }
}

fn unreachable(url: &str, source: RedisError) -> QueueError {
    QueueError::Unreachable {
        url: url.to_string(),
        source,
    }
}

fn timeout_error(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("timed out {what}"),
    ))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

type FetchedRow = (String, String, u32, u32);

fn fetched(queue: &str, (id, payload, attempts, starts): FetchedRow) -> Fetched {
    Fetched {
        id,
        queue: queue.to_string(),
        payload,
        attempts,
        starts,
    }
}

/// Builds a `JobRecord` from a job hash.
fn parse_record(mut h: HashMap<String, String>) -> Result<JobRecord, QueueError> {
    let id = h.remove("id").unwrap_or_default();
    let bad = |reason: String| QueueError::BadPayload {
        id: id.clone(),
        reason,
    };
    let payload = h.remove("payload").unwrap_or_default();
    let job: serde_json::Value =
        serde_json::from_str(&payload).map_err(|e| bad(format!("payload is not JSON: {e}")))?;
    let state_s = h.remove("state").unwrap_or_default();
    let state =
        JobState::parse(&state_s).ok_or_else(|| bad(format!("unknown state {state_s:?}")))?;
    let num = |h: &HashMap<String, String>, k: &str| -> Option<i64> {
        h.get(k)
            .filter(|v| !v.is_empty())
            .and_then(|v| v.parse().ok())
    };
    let errors = match h.get("errors").filter(|v| !v.is_empty()) {
        None => Vec::new(),
        Some(raw) => serde_json::from_str(raw).unwrap_or_else(|e| {
            tracing::warn!(job = %id, error = %e, "unreadable error records");
            Vec::new()
        }),
    };
    let result = match h.get("result").filter(|v| !v.is_empty()) {
        None => None,
        Some(raw) => {
            Some(serde_json::from_str(raw).map_err(|e| bad(format!("result is not JSON: {e}")))?)
        }
    };
    Ok(JobRecord {
        kind: h.remove("kind").unwrap_or_default(),
        queue: h.remove("queue").unwrap_or_default(),
        job,
        state,
        attempts: num(&h, "attempts").unwrap_or(0) as u32,
        max_attempts: num(&h, "max_attempts").unwrap_or(0) as u32,
        starts: num(&h, "starts").unwrap_or(0) as u32,
        recovered: num(&h, "recovered").unwrap_or(0) as u32,
        errors,
        created_at_ms: num(&h, "created_at").unwrap_or(0),
        started_at_ms: num(&h, "started_at"),
        finished_at_ms: num(&h, "finished_at"),
        run_at_ms: if state == JobState::Scheduled {
            num(&h, "run_at")
        } else {
            None
        },
        worker: h.remove("worker").filter(|w| !w.is_empty()),
        result,
        progress: Progress {
            done: num(&h, "progress_done").unwrap_or(0) as u64,
            total: num(&h, "progress_total").unwrap_or(0) as u64,
            message: h.remove("progress_msg").unwrap_or_default(),
        },
        unique_key: h.remove("unique").filter(|u| !u.is_empty()),
        cancel_requested: h.get("cancel").map(String::as_str) == Some("1"),
        id,
    })
}

/// The policy limit `recover` applies to a queue: the smallest `max_starts` of its kinds.
fn max_starts_of(queue: &str) -> u32 {
    JobKind::ALL
        .iter()
        .filter(|k| k.queue() == queue)
        .map(|k| k.policy().max_starts)
        .min()
        .unwrap_or(3)
}

impl Queue {
    /// Connects and checks Redis answers. `prefix` namespaces every key.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, QueueError> {
        let safe_url = redact_url(url);
        let client = Client::open(url).map_err(|e| QueueError::BadUrl {
            url: safe_url.clone(),
            reason: e.to_string(),
        })?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(3)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(2));
        let conn = match tokio::time::timeout(
            CONNECT_TIMEOUT + Duration::from_millis(500),
            ConnectionManager::new_with_config(client.clone(), cfg),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(unreachable(&safe_url, e)),
            Err(_) => return Err(unreachable(&safe_url, timeout_error("connecting"))),
        };
        let q = Queue {
            conn,
            inner: Arc::new(Inner {
                client,
                keys: Keys::new(prefix),
                url: safe_url,
            }),
        };
        q.ping().await?;
        Ok(q)
    }

    pub fn prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    /// The key builder of this instance (tests, diagnostics).
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The Redis URL without its password.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    fn err(&self, e: RedisError) -> QueueError {
        if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_connection_dropped()
        {
            unreachable(&self.inner.url, e)
        } else {
            QueueError::Redis(e)
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, QueueError> {
        cmd.query_async(&mut self.conn())
            .await
            .map_err(|e| self.err(e))
    }

    async fn pipe<T: redis::FromRedisValue>(&self, p: &redis::Pipeline) -> Result<T, QueueError> {
        p.query_async(&mut self.conn())
            .await
            .map_err(|e| self.err(e))
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        lua: &Lua,
        queue: &str,
        args: Vec<Vec<u8>>,
    ) -> Result<T, QueueError> {
        let mut inv = lua.script.key(self.inner.keys.base(queue));
        for a in &args {
            inv.arg(a.as_slice());
        }
        inv.invoke_async(&mut self.conn())
            .await
            .map_err(|e| self.err(e))
    }

    /// Round trip to Redis (readiness).
    pub async fn ping(&self) -> Result<(), QueueError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    // ---- client side -------------------------------------------------------------------------

    /// Adds a job to its kind's queue. A job with a unique key that equals one queued or running
    /// returns `Enqueued::Existing` with that job's id and adds nothing.
    pub async fn enqueue(&self, job: &Job) -> Result<Enqueued, QueueError> {
        self.enqueue_keyed(job, &job.unique_key().unwrap_or_default())
            .await
    }

    async fn enqueue_keyed(&self, job: &Job, unique: &str) -> Result<Enqueued, QueueError> {
        let kind = job.kind();
        let id = ulid::Ulid::new().to_string();
        let (new, id): (i64, String) = self
            .run(
                &SCRIPTS.enqueue,
                kind.queue(),
                args![
                    id,
                    kind.name(),
                    kind.queue(),
                    job.to_json(),
                    kind.policy().max_attempts,
                    unique
                ],
            )
            .await?;
        Ok(if new == 1 {
            Enqueued::New(id)
        } else {
            Enqueued::Existing(id)
        })
    }

    /// As [`Queue::enqueue`], with `unique` as the uniqueness key when the job has none of its
    /// own (the scheduler: one queued or running job per schedule entry).
    pub async fn enqueue_unique(&self, job: &Job, unique: &str) -> Result<Enqueued, QueueError> {
        let key = job.unique_key().unwrap_or_else(|| unique.to_string());
        self.enqueue_keyed(job, &key).await
    }

    /// Takes or renews the scheduler's leader lease for `me` (`ttl`: how long it lasts without
    /// renewal).
    pub async fn lead(&self, me: &str, ttl: Duration) -> Result<Leadership, QueueError> {
        let r: i64 = self
            .run(&SCRIPTS.lead, SCHEDULER, args![me, ms(ttl), "lead"])
            .await?;
        Ok(match r {
            2 => Leadership::Elected,
            1 => Leadership::Renewed,
            _ => Leadership::Follower,
        })
    }

    /// Gives the leader lease up if `me` holds it (clean stop).
    pub async fn resign(&self, me: &str) -> Result<bool, QueueError> {
        let r: i64 = self
            .run(&SCRIPTS.lead, SCHEDULER, args![me, 0, "resign"])
            .await?;
        Ok(r == 1)
    }

    /// A named exclusive lease with fencing in `queue`'s hash tag (`lease.lua`): the index
    /// writer's lease (`<base of index>lease:writer`). `me` must be unique per holder; the
    /// lease lasts `ttl` after the last acquire/renew.
    pub async fn lease(
        &self,
        queue: &str,
        name: &str,
        me: &str,
        ttl: Duration,
        op: LeaseOp,
    ) -> Result<LeaseState, QueueError> {
        let mode = match op {
            LeaseOp::Acquire => "acquire",
            LeaseOp::Renew => "renew",
            LeaseOp::Release => "release",
        };
        let (n, other): (u64, String) = self
            .run(&SCRIPTS.lease, queue, args![name, me, ms(ttl), mode])
            .await?;
        Ok(match (op, n) {
            (LeaseOp::Release, n) => LeaseState::Released(n == 1),
            (_, 0) => LeaseState::Busy(other),
            (_, term) => LeaseState::Held(term),
        })
    }

    /// The key of the pending set `name` of queue `queue`.
    fn pending_key(&self, queue: &str, name: &str) -> String {
        format!("{}pending:{name}", self.inner.keys.base(queue))
    }

    /// Adds ids to the pending set `name` of `queue`: work that the next job of that queue
    /// takes in batches (the index update collects consumed documents this way).
    pub async fn pending_add(
        &self,
        queue: &str,
        name: &str,
        ids: &[i64],
    ) -> Result<(), QueueError> {
        self.pending_write("SADD", queue, name, ids).await
    }

    /// `SADD` / `SREM` of ids on a pending set (nothing to send for no ids).
    async fn pending_write(
        &self,
        cmd: &str,
        queue: &str,
        name: &str,
        ids: &[i64],
    ) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: i64 = self
            .query(redis::cmd(cmd).arg(self.pending_key(queue, name)).arg(ids))
            .await?;
        Ok(())
    }

    /// Up to `n` ids of the pending set, left in it until [`Queue::pending_done`] (a job that
    /// dies between the two leaves them for the next).
    pub async fn pending_peek(
        &self,
        queue: &str,
        name: &str,
        n: usize,
    ) -> Result<Vec<i64>, QueueError> {
        self.query(
            redis::cmd("SRANDMEMBER")
                .arg(self.pending_key(queue, name))
                .arg(n.max(1)),
        )
        .await
    }

    /// Removes ids from the pending set once their work is done.
    pub async fn pending_done(
        &self,
        queue: &str,
        name: &str,
        ids: &[i64],
    ) -> Result<(), QueueError> {
        self.pending_write("SREM", queue, name, ids).await
    }

    /// How many ids the pending set holds.
    pub async fn pending_len(&self, queue: &str, name: &str) -> Result<u64, QueueError> {
        self.query(redis::cmd("SCARD").arg(self.pending_key(queue, name)))
            .await
    }

    /// The current leader's worker id, if any.
    pub async fn leader(&self) -> Result<Option<String>, QueueError> {
        let key = format!("{}leader", self.inner.keys.base(SCHEDULER));
        self.query(redis::cmd("GET").arg(key)).await
    }

    /// The last fired tick (ms since the epoch) of a schedule entry; a new entry starts at
    /// `now_ms` (nothing from before it is replayed).
    pub async fn last_tick(&self, entry: &str, now_ms: i64) -> Result<i64, QueueError> {
        self.run(&SCRIPTS.tick, SCHEDULER, args!["", entry, now_ms, "init"])
            .await
    }

    /// Records `tick_ms` as the last fired tick of `entry` if `me` leads and it was not fired.
    pub async fn claim_tick(
        &self,
        me: &str,
        entry: &str,
        tick_ms: i64,
    ) -> Result<TickClaim, QueueError> {
        let r: i64 = self
            .run(&SCRIPTS.tick, SCHEDULER, args![me, entry, tick_ms, "claim"])
            .await?;
        Ok(match r {
            1 => TickClaim::Fire,
            0 => TickClaim::AlreadyFired,
            _ => TickClaim::NotLeader,
        })
    }

    /// Adds many jobs in one round trip (fan-out, bulk CLI commands); same rules as `enqueue`,
    /// results in the order of `jobs`.
    pub async fn enqueue_many(&self, jobs: &[Job]) -> Result<Vec<Enqueued>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let lua = &SCRIPTS.enqueue;
        let mut p = redis::pipe();
        // Loads the script on this connection ahead of the EVALSHAs (they run in order).
        p.cmd("SCRIPT").arg("LOAD").arg(lua.code).ignore();
        for job in jobs {
            let kind = job.kind();
            p.cmd("EVALSHA")
                .arg(lua.script.get_hash())
                .arg(1)
                .arg(self.inner.keys.base(kind.queue()))
                .arg(ulid::Ulid::new().to_string())
                .arg(kind.name())
                .arg(kind.queue())
                .arg(job.to_json())
                .arg(kind.policy().max_attempts)
                .arg(job.unique_key().unwrap_or_default());
        }
        let rows: Vec<(i64, String)> = self.pipe(&p).await?;
        Ok(rows
            .into_iter()
            .map(|(new, id)| {
                if new == 1 {
                    Enqueued::New(id)
                } else {
                    Enqueued::Existing(id)
                }
            })
            .collect())
    }

    /// The queue holding job `id` and its hash, if any.
    async fn locate(
        &self,
        id: &str,
    ) -> Result<Option<(String, HashMap<String, String>)>, QueueError> {
        let queues = crate::job::all_queues();
        let mut p = redis::pipe();
        for q in &queues {
            p.hgetall(self.inner.keys.job(q, id));
        }
        let hashes: Vec<HashMap<String, String>> = self.pipe(&p).await?;
        Ok(queues
            .into_iter()
            .zip(hashes)
            .find(|(_, h)| !h.is_empty())
            .map(|(q, h)| (q.to_string(), h)))
    }

    /// One job by id, whatever its queue.
    pub async fn get(&self, id: &str) -> Result<JobRecord, QueueError> {
        match self.locate(id).await? {
            Some((_, h)) => parse_record(h),
            None => Err(QueueError::NotFound(id.to_string())),
        }
    }

    /// Jobs of one queue (or all), of one state (or all), newest first, at most `limit`.
    ///
    /// Bounded: reads at most a few `limit`-sized windows of each structure (finished jobs of
    /// one state are looked for in the newest 10 000 finished ids).
    pub async fn list(
        &self,
        queue: Option<&str>,
        state: Option<JobState>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let queues: Vec<String> = match queue {
            Some(q) => vec![q.to_string()],
            None => crate::job::all_queues()
                .into_iter()
                .map(String::from)
                .collect(),
        };
        let k = &self.inner.keys;
        let end = limit as isize - 1;
        let mut out = Vec::new();
        for q in &queues {
            let mut p = redis::pipe();
            let sources: Vec<&str> = match state {
                Some(JobState::Waiting) => vec!["waiting"],
                Some(JobState::Scheduled) => vec!["scheduled"],
                Some(JobState::Running) => vec!["running"],
                Some(JobState::Dead) => vec!["dead"],
                Some(_) => vec![],
                None => vec!["waiting", "scheduled", "running", "finished", "dead"],
            };
            for s in &sources {
                match *s {
                    "waiting" => p.lrange(k.waiting(q), 0, end),
                    "scheduled" => p.zrevrange(k.scheduled(q), 0, end),
                    "running" => p.zrevrange(k.running(q), 0, end),
                    "finished" => p.zrevrange(k.finished(q), 0, end),
                    _ => p.zrevrange(k.dead(q), 0, end),
                };
            }
            let mut ids: Vec<String> = if sources.is_empty() {
                Vec::new()
            } else {
                let lists: Vec<Vec<String>> = self.pipe(&p).await?;
                lists.into_iter().flatten().collect()
            };
            let mut records = self.records(q, &ids, state).await?;
            if let Some(st @ (JobState::Succeeded | JobState::Failed | JobState::Cancelled)) = state
            {
                // Finished jobs of one state: page through the newest finished ids.
                let page = limit.max(BATCH);
                let mut start = 0usize;
                records.clear();
                while records.len() < limit && start < 10_000 {
                    ids = self
                        .query(
                            redis::cmd("ZREVRANGE")
                                .arg(k.finished(q))
                                .arg(start)
                                .arg(start + page - 1),
                        )
                        .await?;
                    if ids.is_empty() {
                        break;
                    }
                    records.extend(self.records(q, &ids, Some(st)).await?);
                    start += page;
                }
            }
            out.extend(records);
        }
        out.sort_by(|a, b| b.id.cmp(&a.id));
        out.dedup_by(|a, b| a.id == b.id);
        out.truncate(limit);
        Ok(out)
    }

    /// The records of `ids` in `queue` (missing ones skipped), filtered by state.
    async fn records(
        &self,
        queue: &str,
        ids: &[String],
        state: Option<JobState>,
    ) -> Result<Vec<JobRecord>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = redis::pipe();
        for id in ids {
            p.hgetall(self.inner.keys.job(queue, id));
        }
        let hashes: Vec<HashMap<String, String>> = self.pipe(&p).await?;
        let mut out = Vec::new();
        for h in hashes.into_iter().filter(|h| !h.is_empty()) {
            match parse_record(h) {
                Ok(r) if state.is_none_or(|s| s == r.state) => out.push(r),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable job"),
            }
        }
        Ok(out)
    }

    /// A dead, failed or cancelled job back to waiting, its attempts reset.
    pub async fn retry(&self, id: &str) -> Result<(), QueueError> {
        let Some((queue, _)) = self.locate(id).await? else {
            return Err(QueueError::NotFound(id.to_string()));
        };
        let (status, state): (String, String) =
            self.run(&SCRIPTS.retry, &queue, args!["one", id]).await?;
        let wrong = |action| QueueError::WrongState {
            id: id.to_string(),
            state: JobState::parse(&state).unwrap_or(JobState::Waiting),
            action,
        };
        match status.as_str() {
            "ok" => Ok(()),
            "notfound" => Err(QueueError::NotFound(id.to_string())),
            "unique" => Err(wrong(
                "retried while an equal unique job is queued or running",
            )),
            _ => Err(wrong("retried")),
        }
    }

    /// Every dead job (of one queue or all) back to waiting; returns how many, in steps.
    /// Dead jobs whose unique key is held by a queued or running job stay dead.
    pub async fn retry_all_dead(&self, queue: Option<&str>) -> Result<u64, QueueError> {
        let queues: Vec<String> = match queue {
            Some(q) => vec![q.to_string()],
            None => crate::job::all_queues()
                .into_iter()
                .map(String::from)
                .collect(),
        };
        let mut total = 0u64;
        for q in &queues {
            let mut offset = 0u64;
            loop {
                let (retried, skipped, seen): (u64, u64, u64) = self
                    .run(&SCRIPTS.retry, q, args!["dead", offset, BATCH])
                    .await?;
                total += retried;
                offset += skipped;
                if seen == 0 {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// Cancels a waiting or scheduled job at once; a running one is asked to stop (its worker
    /// learns it at the next heartbeat). Returns the job's state after the call.
    pub async fn cancel(&self, id: &str) -> Result<JobState, QueueError> {
        let Some((queue, _)) = self.locate(id).await? else {
            return Err(QueueError::NotFound(id.to_string()));
        };
        let (status, state): (String, String) =
            self.run(&SCRIPTS.cancel, &queue, args![id]).await?;
        let st = JobState::parse(&state);
        match (status.as_str(), st) {
            ("ok", Some(s)) => Ok(s),
            ("wrong", Some(s)) => Err(QueueError::WrongState {
                id: id.to_string(),
                state: s,
                action: "cancelled",
            }),
            _ => Err(QueueError::NotFound(id.to_string())),
        }
    }

    pub async fn stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let (waiting, scheduled, running, finished, dead, age): (u64, u64, u64, u64, u64, i64) =
            self.run(&SCRIPTS.stats, queue, Vec::new()).await?;
        Ok(QueueStats {
            queue: queue.to_string(),
            waiting,
            scheduled,
            running,
            finished,
            dead,
            oldest_waiting_ms: (age >= 0).then_some(age),
        })
    }

    /// The queue's lifetime counters (`enqueued`, `succeeded`, `failed`, `retried`, `dead`,
    /// `cancelled`, `recovered`, `requeued`), for metrics.
    pub async fn counters(&self, queue: &str) -> Result<HashMap<String, u64>, QueueError> {
        self.query(redis::cmd("HGETALL").arg(self.inner.keys.stats(queue)))
            .await
    }

    /// Live workers (heartbeat within their lease).
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, QueueError> {
        let k = &self.inner.keys;
        let now = now_ms();
        // Forget registry entries silent for a day (crashed workers; their hashes expire).
        let mut p = redis::pipe();
        p.cmd("ZREMRANGEBYSCORE")
            .arg(k.workers())
            .arg("-inf")
            .arg(now - 24 * 3600 * 1000)
            .ignore();
        p.cmd("ZRANGE")
            .arg(k.workers())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES");
        let (entries,): (Vec<(String, i64)>,) = self.pipe(&p).await?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = redis::pipe();
        for (id, _) in &entries {
            p.hgetall(k.worker(id));
        }
        let hashes: Vec<HashMap<String, String>> = self.pipe(&p).await?;
        let mut live = Vec::new();
        for ((id, seen), h) in entries.into_iter().zip(hashes) {
            let lease: i64 = h
                .get("lease_ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30_000);
            if h.is_empty() || seen + lease < now {
                continue;
            }
            let queues: Vec<String> = h
                .get("queues")
                .map(|q| {
                    q.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            live.push(WorkerInfo {
                host: h.get("host").cloned().unwrap_or_default(),
                pid: h.get("pid").and_then(|v| v.parse().ok()).unwrap_or(0),
                started_at_ms: h
                    .get("started_at")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                last_seen_ms: seen,
                running: Vec::new(),
                queues,
                id,
            });
        }
        let mut p = redis::pipe();
        for w in &live {
            for q in &w.queues {
                p.lrange(k.inflight(q, &w.id), 0, -1);
            }
        }
        let lists: Vec<Vec<String>> = if live.iter().any(|w| !w.queues.is_empty()) {
            self.pipe(&p).await?
        } else {
            Vec::new()
        };
        let mut lists = lists.into_iter();
        for w in &mut live {
            for _ in &w.queues {
                w.running.extend(lists.next().unwrap_or_default());
            }
        }
        Ok(live)
    }

    // ---- worker side -------------------------------------------------------------------------

    /// Announces a worker (for `status`) and takes a lease in each of its queues.
    pub async fn register_worker(
        &self,
        info: &WorkerInfo,
        opts: &WorkerOptions,
    ) -> Result<(), QueueError> {
        let k = &self.inner.keys;
        let now = now_ms();
        let mut p = redis::pipe();
        p.hset_multiple(
            k.worker(&info.id),
            &[
                ("host", info.host.clone()),
                ("pid", info.pid.to_string()),
                ("queues", info.queues.join(",")),
                ("started_at", info.started_at_ms.to_string()),
                ("lease_ms", ms(opts.lease).to_string()),
            ],
        )
        .ignore();
        p.pexpire(k.worker(&info.id), ms(LOST_MARKER) as i64)
            .ignore();
        p.zadd(k.workers(), &info.id, now).ignore();
        let () = self.pipe(&p).await?;
        for q in &info.queues {
            let _: (i64, Vec<String>, Vec<String>) = self
                .run(&SCRIPTS.heartbeat, q, args![info.id, ms(opts.lease), "1"])
                .await?;
        }
        Ok(())
    }

    /// Removes a worker that stopped cleanly (its inflight lists must be empty or released;
    /// anything left in them goes back to waiting).
    pub async fn unregister_worker(
        &self,
        worker: &str,
        queues: &[String],
    ) -> Result<(), QueueError> {
        for q in queues {
            let _: i64 = self.run(&SCRIPTS.unregister, q, args![worker]).await?;
        }
        let k = &self.inner.keys;
        let mut p = redis::pipe();
        p.zrem(k.workers(), worker).ignore();
        p.del(k.worker(worker)).ignore();
        let () = self.pipe(&p).await?;
        Ok(())
    }

    /// Takes up to `max` waiting jobs of `queue` for `worker`, without blocking.
    pub async fn fetch(
        &self,
        worker: &str,
        queue: &str,
        max: usize,
        opts: &WorkerOptions,
    ) -> Result<Vec<Fetched>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<FetchedRow> = self
            .run(&SCRIPTS.fetch, queue, args![worker, max, ms(opts.lease)])
            .await?;
        Ok(rows.into_iter().map(|r| fetched(queue, r)).collect())
    }

    pub async fn blocking_connection(&self) -> Result<BlockingConn, QueueError> {
        let conn = open_blocking(&self.inner.client, &self.inner.url).await?;
        Ok(BlockingConn {
            conn: Some(conn),
            client: self.inner.client.clone(),
            url: self.inner.url.clone(),
        })
    }

    /// Waits up to `timeout` for one job of `queue` (wakes up as soon as one is pushed).
    ///
    /// If this future is dropped while waiting, an id BLMOVE already moved stays in the worker's
    /// inflight list as "waiting"; `unregister_worker` (or `recover`) gives it back.
    pub async fn fetch_blocking(
        &self,
        conn: &mut BlockingConn,
        worker: &str,
        queue: &str,
        timeout: Duration,
        opts: &WorkerOptions,
    ) -> Result<Option<Fetched>, QueueError> {
        let k = &self.inner.keys;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // BLMOVE's timeout 0 would block forever: at least 10 ms. At most MAX_BLOCK, so that
            // `maintain`'s second look (LATE_MOVE) comes after any move it could still make.
            let block = left.min(MAX_BLOCK);
            let secs = format!("{:.3}", block.as_secs_f64().max(0.01));
            let c = conn.get().await?;
            let cmd = redis::cmd("BLMOVE")
                .arg(k.waiting(queue))
                .arg(k.inflight(queue, worker))
                .arg("RIGHT")
                .arg("LEFT")
                .arg(secs)
                .clone();
            let popped: Option<String> =
                match tokio::time::timeout(block + RESPONSE_TIMEOUT, cmd.query_async(c)).await {
                    Ok(Ok(v)) => v,
                    Ok(Err(e)) => {
                        conn.conn = None;
                        return Err(self.err(e));
                    }
                    Err(_) => {
                        conn.conn = None;
                        return Err(unreachable(
                            &self.inner.url,
                            timeout_error("waiting for BLMOVE"),
                        ));
                    }
                };
            let Some(id) = popped else {
                continue; // waited MAX_BLOCK (or all that was left): the loop decides
            };
            let mut inv = SCRIPTS.start.script.key(k.base(queue));
            inv.arg(worker).arg(&id).arg(ms(opts.lease));
            let row: Option<FetchedRow> = match inv.invoke_async(c).await {
                Ok(r) => r,
                Err(e) => {
                    conn.conn = None;
                    return Err(self.err(e));
                }
            };
            if let Some(r) = row {
                return Ok(Some(fetched(queue, r)));
            }
            // A cancelled job's leftover id: skipped, wait on.
        }
    }

    /// Renews the worker's lease in each queue; reports cancel requests, lost leases, and which
    /// of `running` (queue, job id: what the worker runs, taken before the call) it no longer
    /// holds.
    pub async fn heartbeat(
        &self,
        worker: &str,
        queues: &[String],
        opts: &WorkerOptions,
        running: &[(String, JobId)],
    ) -> Result<HeartbeatReply, QueueError> {
        let lease = ms(opts.lease);
        let calls = queues.iter().map(|q| async move {
            let mut a = args![worker, lease, "0"];
            for (_, id) in running.iter().filter(|(rq, _)| rq == q) {
                a.push(id.as_bytes().to_vec());
            }
            let r: (i64, Vec<String>, Vec<String>) = self.run(&SCRIPTS.heartbeat, q, a).await?;
            Ok::<_, QueueError>((q.clone(), r))
        });
        let results = futures::future::try_join_all(calls).await?;
        let k = &self.inner.keys;
        let mut p = redis::pipe();
        p.zadd(k.workers(), worker, now_ms()).ignore();
        p.pexpire(k.worker(worker), ms(LOST_MARKER) as i64).ignore();
        let () = self.pipe(&p).await?;
        let mut reply = HeartbeatReply::default();
        for (q, (lost, cancel, gone)) in results {
            if lost == 1 {
                reply.lost.push(q);
            }
            reply.cancel.extend(cancel);
            reply.gone.extend(gone);
        }
        Ok(reply)
    }

    pub async fn progress(
        &self,
        queue: &str,
        id: &str,
        progress: &Progress,
    ) -> Result<(), QueueError> {
        let _: i64 = self
            .run(
                &SCRIPTS.progress,
                queue,
                args![id, progress.done, progress.total, progress.message],
            )
            .await?;
        Ok(())
    }

    /// Ends a job. Ignored (`Reported::Stale`) if `worker` no longer holds it.
    pub async fn report(
        &self,
        worker: &str,
        queue: &str,
        id: &str,
        outcome: Outcome,
    ) -> Result<Reported, QueueError> {
        let (what, data, retry_in): (&str, String, i64) = match &outcome {
            Outcome::Succeeded(v) => ("succeeded", v.to_string(), -1),
            Outcome::Failed { error, retry_in } => (
                "failed",
                serde_json::to_string(error).expect("an error record always serializes"),
                retry_in.map(|d| ms(d) as i64).unwrap_or(-1),
            ),
            Outcome::Cancelled => ("cancelled", String::new(), -1),
        };
        let r: String = self
            .run(
                &SCRIPTS.report,
                queue,
                args![worker, id, what, data, retry_in],
            )
            .await?;
        Ok(match r.as_str() {
            "succeeded" => Reported::Succeeded,
            "retrying" => Reported::Retrying,
            "dead" => Reported::Dead,
            "cancelled" => Reported::Cancelled,
            _ => Reported::Stale,
        })
    }

    /// Gives a job back to waiting (graceful stop past the grace period); does not count as a
    /// start. A job someone asked to cancel ends cancelled instead.
    pub async fn release(&self, worker: &str, queue: &str, id: &str) -> Result<(), QueueError> {
        let _: String = self.run(&SCRIPTS.release, queue, args![worker, id]).await?;
        Ok(())
    }

    /// One bounded maintenance pass over a queue: due retries back to waiting, expired leases'
    /// jobs back (or to dead as poison), finished jobs past retention deleted.
    pub async fn maintain(
        &self,
        queue: &str,
        opts: &WorkerOptions,
    ) -> Result<Maintenance, QueueError> {
        let (promoted, recovered, poisoned, cleaned): (u64, u64, u64, u64) = self
            .run(
                &SCRIPTS.maintain,
                queue,
                args![
                    max_starts_of(queue),
                    ms(opts.retention),
                    ms(opts.dead_retention),
                    BATCH,
                    RECOVER_WORKERS,
                    ms(LOST_MARKER),
                    ms(LATE_MOVE)
                ],
            )
            .await?;
        Ok(Maintenance {
            promoted,
            recovered,
            poisoned,
            cleaned,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("redis://:s3cret@host:6379/2"),
            "redis://host:6379/2"
        );
        assert_eq!(
            redact_url("rediss://user:s3cret@host:6380"),
            "rediss://user@host:6380"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert!(!redact_url("redis://:s3cret@ho st:bad").contains("s3cret"));
    }

    #[test]
    fn scripts_carry_the_common_prelude() {
        assert!(SCRIPTS.fetch.code.contains("local function try_start"));
        assert!(SCRIPTS.fetch.code.contains("RPOP"));
    }

    #[test]
    fn records_parse_from_a_job_hash() {
        let h: HashMap<String, String> = [
            ("id", "01J"),
            ("kind", "ping"),
            ("queue", "ping"),
            ("payload", r#"{"kind":"ping","args":{"sleep_ms":0}}"#),
            ("state", "dead"),
            ("attempts", "3"),
            ("max_attempts", "3"),
            ("starts", "3"),
            ("created_at", "5"),
            ("finished_at", "9"),
            ("unique", ""),
            (
                "errors",
                r#"[{"attempt":1,"at_ms":7,"class":"transient","message":"boom","worker":"w"}]"#,
            ),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let r = parse_record(h).unwrap();
        assert_eq!(r.state, JobState::Dead);
        assert_eq!(r.attempts, 3);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].message, "boom");
        assert_eq!(r.finished_at_ms, Some(9));
        assert_eq!(r.unique_key, None);
        assert!(matches!(r.job().unwrap(), Job::Ping { sleep_ms: 0, .. }));
    }
}
