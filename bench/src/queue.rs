//! `paperboy-bench queue`: end-to-end no-op job throughput with 1 and 2 worker processes,
//! idle pickup latency, `redis-benchmark` LPUSH/RPOP in the same run, CLI cold start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use paperboy_shared::job::Job;
use paperboy_shared::queue::{JobState, Queue};
use redis::AsyncCommands;

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

async fn cleanup(redis_url: &str, prefix: &str) -> Result<()> {
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

/// Jobs per second from the first enqueue to the last job done, with `workers` processes.
async fn throughput(args: &Args, workers: usize) -> Result<f64> {
    let prefix = unique_prefix("tp");
    let q = Queue::connect(&args.redis_url, &prefix).await?;
    let procs: Vec<Worker> = (0..workers)
        .map(|_| spawn_worker(args, &prefix, 256))
        .collect::<Result<_>>()?;
    wait_for_workers(&q, workers).await?;

    let job = Job::Ping {
        sleep_ms: 0,
        fail: None,
    };
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
    drop(procs);
    cleanup(&args.redis_url, &prefix).await?;
    Ok(rate)
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
        let sent = chrono::Utc::now().timestamp_micros();
        let id = q.enqueue(&job).await?.id().to_string();
        loop {
            let r = q.get(&id).await?;
            if r.state == JobState::Succeeded {
                let started = r
                    .started_at_ms
                    .context("succeeded job without start time")?;
                lat.push((started * 1000 - sent) as f64 / 1000.0);
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

fn percentile(sorted: &[f64], p: f64) -> f64 {
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
    println!("## Queue benchmark ({} no-op jobs per run)\n", args.jobs);
    println!("| measure | value |\n|---|---|");
    for (name, v) in redis_benchmark(&args.redis_url)? {
        println!("| redis-benchmark {name} (baseline) | {v:.0} req/s |");
    }
    for workers in [1, 2] {
        let rate = throughput(&args, workers).await?;
        println!("| end to end, {workers} worker process(es) | {rate:.0} jobs/s |");
    }
    let lat = pickup(&args).await?;
    println!(
        "| idle pickup latency ({} samples) | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms |",
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
