//! The periodic schedule (paperless-ngx's Celery beat), fired by exactly one worker.
//!
//! Every worker with `PAPERBOY_SCHEDULER=true` (the default) takes part in an election: a leader
//! lease in Redis (`Queue::lead`, `PAPERBOY_LEASE_SECS`, renewed every third of it). The leader
//! looks at its entries about once a second; a worker that dies stops renewing and another one
//! takes over when the lease runs out (≤ `PAPERBOY_LEASE_SECS`, 30 s by default); a worker that
//! stops cleanly resigns, so the next one takes over at its next look.
//!
//! An entry fires the latest of its ticks that is due and not yet fired. Each tick is claimed
//! with a compare-and-set of the entry's last fired tick in Redis (`Queue::claim_tick`), so a tick
//! fires once even if two workers briefly believe they lead (a frozen leader waking up), and a
//! new leader carries on where the old one stopped. Ticks missed while no worker ran fire once,
//! not once each; an entry seen for the first time starts from now. The job is enqueued with a
//! uniqueness key (the job's own, else `scheduled:<entry>`): a tick whose previous job is still
//! queued or running is skipped.
//!
//! Cron expressions: 5 fields (minute hour day month weekday, POSIX: Sunday is 0 or 7) or 6
//! with seconds first, or `disable`. Times are UTC (paperless reads `PAPERLESS_TIME_ZONE`; we
//! do not yet).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use paperboy_shared::config::{Config, names};
use paperboy_shared::job::Job;
use paperboy_shared::queue::{Enqueued, Leadership, Queue, TickClaim};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// One periodic job: the setting holding its schedule and the job it enqueues.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Name in logs, metrics and the Redis key of its last tick.
    pub name: &'static str,
    pub cron: Cron,
    pub job: Job,
}

/// Why a schedule setting was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "setting {setting}={value:?} is not a cron expression ({reason}); use 5 fields \
     (`*/10 * * * *`), 6 with seconds first, or `disable`"
)]
pub struct ScheduleError {
    pub setting: &'static str,
    pub value: String,
    pub reason: String,
}

/// The job an entry's setting enqueues. Exhaustive over `SCHEDULE_SETTINGS`: an entry without
/// a job here is a bug caught by `every_schedule_setting_has_a_job`.
fn job_of(setting: &str) -> Option<(&'static str, Job)> {
    match setting {
        names::PING_CRON => Some((
            "ping",
            Job::Ping {
                sleep_ms: 0,
                fail: None,
            },
        )),
        names::SANITY_TASK_CRON => Some(("sanity_check", Job::SanityCheck {})),
        names::TRAIN_TASK_CRON => Some(("train_classifier", Job::TrainClassifier {})),
        names::EMAIL_TASK_CRON => Some(("mail_fetch", Job::MailFetch { account: None })),
        names::INDEX_TASK_CRON => Some(("index_optimize", Job::IndexOptimize {})),
        names::EMPTY_TRASH_TASK_CRON => Some(("empty_trash", Job::EmptyTrash {})),
        _ => None,
    }
}

/// Parses a cron expression: 5 fields, or 6 with seconds first.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let expr = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(&expr)
        .or_else(|_| Cron::from_str(&expr))
        .map_err(|e| e.to_string())
}

/// The enabled entries of `config`.
pub fn entries(config: &Config) -> Result<Vec<Entry>, ScheduleError> {
    let mut out = Vec::new();
    for (setting, value) in &config.schedules {
        if value.trim().eq_ignore_ascii_case("disable") {
            continue;
        }
        let (name, job) = job_of(setting).expect("every schedule setting has a job");
        let cron = parse_cron(value).map_err(|reason| ScheduleError {
            setting,
            value: value.clone(),
            reason,
        })?;
        out.push(Entry { name, cron, job });
    }
    Ok(out)
}

/// The tick to fire at `now`, if any: the latest occurrence in `(last, now]`.
pub fn due_tick(cron: &Cron, last: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let next = cron.find_next_occurrence(&last, false).ok()?;
    if next > now {
        return None;
    }
    // Several ticks may have passed (no leader for a while): fire the latest only.
    let latest = cron.find_previous_occurrence(&now, true).ok()?;
    Some(latest.max(next))
}

/// Runs the election and the schedule until `stop` changes.
pub async fn run(
    me: String,
    queue: Queue,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<u32>,
) {
    if !config.scheduler {
        tracing::info!(
            "{}=false: this worker never fires the schedule",
            names::SCHEDULER
        );
        return;
    }
    let entries = match entries(&config) {
        Ok(e) => e,
        Err(e) => {
            // The settings were checked at start (`check`); this is only reached if they
            // changed in between.
            tracing::error!("{e}");
            return;
        }
    };
    let lease = config.lease.max(Duration::from_secs(1));
    let renew_every = lease / 3;
    let mut leading = false;
    let mut last_renew = tokio::time::Instant::now() - renew_every;
    loop {
        if last_renew.elapsed() >= renew_every || !leading {
            match queue.lead(&me, lease).await {
                Ok(l) => {
                    let now_leading = l != Leadership::Follower;
                    if now_leading != leading {
                        metrics.scheduler_leader(&me, now_leading, entries.len());
                    }
                    leading = now_leading;
                    if leading {
                        last_renew = tokio::time::Instant::now();
                    }
                }
                Err(e) => {
                    if leading {
                        metrics.scheduler_leader(&me, false, entries.len());
                    }
                    leading = false;
                    tracing::debug!(error = %e, "scheduler: Redis unreachable");
                }
            }
        }
        if leading {
            for entry in &entries {
                fire_if_due(&me, &queue, &metrics, entry).await;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => break,
        }
    }
    if leading {
        let _ = queue.resign(&me).await;
        metrics.scheduler_leader(&me, false, entries.len());
    }
}

async fn fire_if_due(me: &str, queue: &Queue, metrics: &Metrics, entry: &Entry) {
    let now = Utc::now();
    let last_ms = match queue.last_tick(entry.name, now.timestamp_millis()).await {
        Ok(ms) => ms,
        Err(e) => {
            tracing::debug!(entry = entry.name, error = %e, "scheduler: cannot read the last tick");
            return;
        }
    };
    let Some(last) = DateTime::<Utc>::from_timestamp_millis(last_ms) else {
        return;
    };
    let Some(tick) = due_tick(&entry.cron, last, now) else {
        return;
    };
    match queue
        .claim_tick(me, entry.name, tick.timestamp_millis())
        .await
    {
        Ok(TickClaim::Fire) => {}
        Ok(TickClaim::AlreadyFired | TickClaim::NotLeader) => return,
        Err(e) => {
            tracing::debug!(entry = entry.name, error = %e, "scheduler: cannot claim a tick");
            return;
        }
    }
    let unique = format!("scheduled:{}", entry.name);
    match queue.enqueue_unique(&entry.job, &unique).await {
        Ok(Enqueued::New(id)) => metrics.scheduled(entry.name, tick, Some(&id), true),
        Ok(Enqueued::Existing(id)) => metrics.scheduled(entry.name, tick, Some(&id), false),
        Err(e) => {
            // The tick is recorded as fired: it is lost, the next one comes. Say so loudly.
            tracing::warn!(entry = entry.name, error = %e, "scheduler: could not enqueue the tick's job");
            metrics.scheduled(entry.name, tick, None, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn paperless_defaults_parse_with_posix_weekdays() {
        // Sanity check: Sundays 00:30 (2026-12-06 is a Sunday).
        let c = parse_cron("30 0 * * sun").unwrap();
        let next = c
            .find_next_occurrence(&at(2026, 12, 2, 12, 0, 0), false)
            .unwrap();
        assert_eq!(next, at(2026, 12, 6, 0, 30, 0));
        // 0 and 7 are Sunday too.
        for expr in ["30 0 * * 0", "30 0 * * 7"] {
            let c = parse_cron(expr).unwrap();
            let next = c
                .find_next_occurrence(&at(2026, 12, 2, 12, 0, 0), false)
                .unwrap();
            assert_eq!(next, at(2026, 12, 6, 0, 30, 0), "{expr}");
        }
        // Mail every 10 minutes; training at 5 past every hour.
        let c = parse_cron("*/10 * * * *").unwrap();
        assert_eq!(
            c.find_next_occurrence(&at(2026, 12, 2, 12, 1, 0), false)
                .unwrap(),
            at(2026, 12, 2, 12, 10, 0)
        );
        let c = parse_cron("5 */1 * * *").unwrap();
        assert_eq!(
            c.find_next_occurrence(&at(2026, 12, 2, 12, 6, 0), false)
                .unwrap(),
            at(2026, 12, 2, 13, 5, 0)
        );
        // Seconds first, for drills and tests; double spaces are fine (paperless crashes).
        let c = parse_cron("*/2 *  * * * *").unwrap();
        assert_eq!(
            c.find_next_occurrence(&at(2026, 12, 2, 12, 0, 1), false)
                .unwrap(),
            at(2026, 12, 2, 12, 0, 2)
        );
        assert!(parse_cron("every day").is_err());
        assert!(parse_cron("61 * * * *").is_err());
    }

    #[test]
    fn a_due_tick_is_the_latest_missed_one_only() {
        let c = parse_cron("*/10 * * * *").unwrap();
        let last = at(2026, 12, 2, 12, 0, 0);
        // Not yet due.
        assert_eq!(due_tick(&c, last, at(2026, 12, 2, 12, 9, 59)), None);
        // Due exactly at its time.
        assert_eq!(
            due_tick(&c, last, at(2026, 12, 2, 12, 10, 0)),
            Some(at(2026, 12, 2, 12, 10, 0))
        );
        // Three hours without a leader: one tick, the latest.
        assert_eq!(
            due_tick(&c, last, at(2026, 12, 2, 15, 4, 0)),
            Some(at(2026, 12, 2, 15, 0, 0))
        );
        // The tick just fired is not due again.
        assert_eq!(
            due_tick(&c, at(2026, 12, 2, 15, 0, 0), at(2026, 12, 2, 15, 4, 0)),
            None
        );
    }

    #[test]
    fn every_schedule_setting_has_a_job_and_disable_turns_it_off() {
        for s in paperboy_shared::config::SCHEDULE_SETTINGS {
            assert!(job_of(s).is_some(), "{s} has no job");
        }
        let mut config = Config::from(&std::collections::HashMap::<String, String>::new()).unwrap();
        let defaults: Vec<&str> = entries(&config).unwrap().iter().map(|e| e.name).collect();
        assert_eq!(
            defaults,
            [
                "sanity_check",
                "train_classifier",
                "mail_fetch",
                "index_optimize",
                "empty_trash"
            ],
            "paperless's periodic jobs on by default, the ping canary off"
        );
        config.schedules = vec![(names::PING_CRON, "*/5 * * * * *".into())];
        let e = entries(&config).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].name, "ping");
        config.schedules = vec![(names::PING_CRON, "whenever".into())];
        let err = entries(&config).unwrap_err();
        assert!(err.to_string().contains("PAPERBOY_PING_CRON"), "{err}");
    }
}
