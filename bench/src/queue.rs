//! `paperboy-bench queue`: end-to-end no-op job throughput with 1 and 2 worker processes,
//! idle pickup latency, `redis-benchmark` LPUSH/RPOP in the same run, CLI cold start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use paperboy_shared::job::Job;
use paperboy_shared::queue::{JobState, Queue};
use redis::AsyncCommands;

/// Jobs at once per worker process in the throughput runs.
const WORKER_CONCURRENCY: usize = 256;

pub struct Args {
    pub redis_url: String,
    pub jobs: usize,
    pub samples: usize,
    pub bin_dir: PathBuf,
}

struct Worker {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_worker(args: &Args, prefix: &str, concurrency: usize) -> Result<Worker> {
    let dir = tempfile::tempdir()?;
    let bin = args.bin_dir.join("paperboy-worker");
    let child = Command::new(&bin)
        .arg("run")
        .args([
            "--queues",
            "ping",
            "--concurrency",
            &concurrency.to_string(),
        ])
        .env("PAPERBOY_REDIS_URL", &args.redis_url)
        .env("PAPERBOY_REDIS_PREFIX", prefix)
        .env("PAPERBOY_DATA_DIR", dir.path().join("data"))
        .env("PAPERBOY_MEDIA_ROOT", dir.path().join("media"))
        .env("PAPERBOY_METRICS_ADDR", "127.0.0.1:0")
        .env("PAPERBOY_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {} (build it first)", bin.display()))?;
    Ok(Worker { child, _dir: dir })
}

async fn wait_for_workers(q: &Queue, n: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while q.workers().await?.len() < n {
        if Instant::now() > deadline {
            bail!("{n} workers did not register within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn unique_prefix(tag: &str) -> String {
    format!("pbbench:{tag}:{}", ulid::Ulid::new())
}

pub(crate) async fn cleanup(redis_url: &str, prefix: &str) -> Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = {
        let mut iter: redis::AsyncIter<String> = con.scan_match(format!("{prefix}*")).await?;
        let mut keys = Vec::new();
        while let Some(k) = iter.next().await {
            keys.push(k?);
        }
        keys
    };
    for chunk in keys.chunks(500) {
        let _: () = redis::cmd("DEL").arg(chunk).query_async(&mut con).await?;
    }
    Ok(())
}

/// Redis' own counters: `INFO commandstats` calls per command and the server's CPU seconds.
#[derive(Debug, Default)]
struct RedisCounters {
    calls: HashMap<String, u64>,
    cpu_secs: f64,
}

async fn redis_counters(redis_url: &str) -> Result<RedisCounters> {
    let client = redis::Client::open(redis_url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .arg("cpu")
        .query_async(&mut con)
        .await?;
    let mut c = RedisCounters::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("cmdstat_")
            && let Some((name, fields)) = rest.split_once(':')
            && let Some(calls) = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))
                .and_then(|v| v.parse().ok())
        {
            c.calls.insert(name.to_string(), calls);
        } else if let Some((k, v)) = line.split_once(':')
            && (k == "used_cpu_sys" || k == "used_cpu_user")
        {
            c.cpu_secs += v.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    Ok(c)
}

/// What one throughput run cost Redis, per job (the Redis is shared: other clients' traffic
/// during the run counts too).
struct PerJob {
    evalsha: f64,
    blmove: f64,
    cpu_us: f64,
    /// CPU of the worker processes, and of this process (the enqueuers), per job.
    worker_cpu_us: f64,
    bench_cpu_us: f64,
}

/// User + system CPU seconds of a process so far (`/proc/<pid>/stat`, clock ticks of 1/100 s).
fn proc_cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) end with ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the ')'.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn per_job(before: &RedisCounters, after: &RedisCounters, jobs: usize) -> PerJob {
    let d = |name: &str| {
        after.calls.get(name).copied().unwrap_or(0) as f64
            - before.calls.get(name).copied().unwrap_or(0) as f64
    };
    let n = jobs.max(1) as f64;
    PerJob {
        evalsha: d("evalsha") / n,
        blmove: d("blmove") / n,
        worker_cpu_us: 0.0,
        bench_cpu_us: 0.0,
        cpu_us: (after.cpu_secs - before.cpu_secs) * 1e6 / n,
    }
}

/// Jobs per second from the first enqueue to the last job done, with `workers` processes.
async fn throughput(args: &Args, workers: usize) -> Result<(f64, PerJob)> {
    let prefix = unique_prefix("tp");
    let q = Queue::connect(&args.redis_url, &prefix).await?;
    let procs: Vec<Worker> = (0..workers)
        .map(|_| spawn_worker(args, &prefix, WORKER_CONCURRENCY))
        .collect::<Result<_>>()?;
    wait_for_workers(&q, workers).await?;

    let job = Job::Ping {
        sleep_ms: 0,
        fail: None,
    };
    let before = redis_counters(&args.redis_url).await?;
    let cpu = |procs: &[Worker]| -> (f64, f64) {
        let w = procs
            .iter()
            .map(|p| proc_cpu_secs(&p.child.id().to_string()))
            .sum();
        (w, proc_cpu_secs("self"))
    };
    let (worker_cpu0, bench_cpu0) = cpu(&procs);
    let start = Instant::now();
    // Enqueue from 4 connections, 64 in flight each.
    let per = args.jobs / 4;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let q = Queue::connect(&args.redis_url, &prefix).await?;
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            futures_util::stream::iter(0..per)
                .map(|_| {
                    let q = q.clone();
                    let job = job.clone();
                    async move { q.enqueue(&job).await }
                })
                .buffer_unordered(64)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
        }));
    }
    for t in tasks {
        t.await??;
    }
    let total = per * 4;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let s = q.stats("ping").await?;
        if s.finished as usize >= total {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {} of {total} jobs finished in 10 minutes", s.finished);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let after = redis_counters(&args.redis_url).await?;
    let (worker_cpu1, bench_cpu1) = cpu(&procs);
    drop(procs);
    cleanup(&args.redis_url, &prefix).await?;
    let mut cost = per_job(&before, &after, total);
    cost.worker_cpu_us = (worker_cpu1 - worker_cpu0) * 1e6 / total as f64;
    cost.bench_cpu_us = (bench_cpu1 - bench_cpu0) * 1e6 / total as f64;
    Ok((rate, cost))
}

/// Enqueue → start latency for an idle worker, in milliseconds, sorted.
async fn pickup(args: &Args) -> Result<Vec<f64>> {
    let prefix = unique_prefix("pickup");
    let q = Queue::connect(&args.redis_url, &prefix).await?;
    let _w = spawn_worker(args, &prefix, 8)?;
    wait_for_workers(&q, 1).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut lat = Vec::with_capacity(args.samples);
    let job = Job::Ping {
        sleep_ms: 0,
        fail: None,
    };
    for _ in 0..args.samples {
        // Start times are Redis milliseconds: count the start as the end of its millisecond,
        // so the figure is an upper bound (at most 1 ms high), never below the truth.
        let sent = chrono::Utc::now().timestamp_micros();
        let id = q.enqueue(&job).await?.id().to_string();
        loop {
            let r = q.get(&id).await?;
            if r.state == JobState::Succeeded {
                let started = r
                    .started_at_ms
                    .context("succeeded job without start time")?;
                lat.push(((started + 1) * 1000 - sent) as f64 / 1000.0);
                break;
            }
            if r.state.is_terminal() {
                bail!("ping job {id} ended {}", r.state);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // An idle gap, so every sample measures a worker waiting in its blocking pop.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cleanup(&args.redis_url, &prefix).await?;
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(lat)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// `redis-benchmark -t lpush,rpop`: requests per second of each, same Redis.
fn redis_benchmark(redis_url: &str) -> Result<Vec<(String, f64)>> {
    let url = redis::parse_redis_url(redis_url).context("parsing the Redis URL")?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let port = url.port().unwrap_or(6379).to_string();
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            &host,
            "-p",
            &port,
            "-t",
            "lpush,rpop",
            "-n",
            "200000",
            "-q",
        ])
        .output()
        .context("running redis-benchmark (apt-get install redis-tools)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    // Lines look like "LPUSH: 123456.79 requests per second, p50=0.1 msec" (with \r updates).
    for line in text.split(['\n', '\r']) {
        if let Some((name, rest)) = line.split_once(": ")
            && let Some(num) = rest.split_whitespace().next()
            && rest.contains("requests per second")
            && let Ok(v) = num.parse::<f64>()
        {
            rows.push((name.trim().to_string(), v));
        }
    }
    Ok(rows)
}

/// Median wall time of `paperboy <args>` over `n` runs.
fn cold_start(bin_dir: &Path, redis_url: &str, args: &[&str], n: usize) -> Result<f64> {
    let bin = bin_dir.join("paperboy");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let out = Command::new(&bin)
            .args(args)
            .env("PAPERBOY_REDIS_URL", redis_url)
            .env("PAPERBOY_REDIS_PREFIX", "pbbench:cold")
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            bail!(
                "paperboy {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(percentile(&times, 0.5))
}

pub async fn run(args: Args) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "## Queue benchmark ({} no-op jobs per run, {WORKER_CONCURRENCY} jobs at once per worker, \
         {cores} cores)\n",
        args.jobs
    );
    println!("| measure | value |\n|---|---|");
    for (name, v) in redis_benchmark(&args.redis_url)? {
        println!("| redis-benchmark {name} (baseline) | {v:.0} req/s |");
    }
    let mut costs = Vec::new();
    for workers in [1, 2] {
        let (rate, cost) = throughput(&args, workers).await?;
        println!("| end to end, {workers} worker process(es) | {rate:.0} jobs/s |");
        costs.push((workers, cost));
    }
    for (workers, c) in costs {
        println!(
            "| cost per job, {workers} worker process(es) | {:.2} EVALSHA + {:.2} BLMOVE; CPU: \
             Redis {:.0} µs, worker(s) {:.0} µs, enqueuers {:.0} µs |",
            c.evalsha, c.blmove, c.cpu_us, c.worker_cpu_us, c.bench_cpu_us
        );
    }
    let lat = pickup(&args).await?;
    println!(
        "| idle pickup latency ({} samples, upper bound, 1 ms resolution) | p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms |",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    let status = cold_start(&args.bin_dir, &args.redis_url, &["status"], 20)?;
    let help = cold_start(&args.bin_dir, &args.redis_url, &["--help"], 20)?;
    println!("| CLI cold start `paperboy status` (median of 20) | {status:.1} ms |");
    println!("| CLI cold start `paperboy --help` (median of 20) | {help:.1} ms |");
    Ok(())
}
