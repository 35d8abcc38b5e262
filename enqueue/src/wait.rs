//! `--wait`: poll a job until it reaches a terminal state, with an optional progress bar.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use paperboy_shared::queue::{JobRecord, Queue, QueueError};
use tokio::time::Instant;

/// First delay between two polls.
pub const FIRST_POLL: Duration = Duration::from_millis(100);
/// Longest delay between two polls.
pub const MAX_POLL: Duration = Duration::from_millis(500);

/// How to wait, independent of the flags that asked for it.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    /// Give up at this instant (the job goes on).
    pub deadline: Option<Instant>,
    /// Draw a progress bar on stderr.
    pub progress_bar: bool,
}

/// How waiting ended.
#[derive(Debug)]
pub enum WaitEnd {
    /// The job reached a terminal state.
    Finished(JobRecord),
    /// The deadline passed first; the record as last seen.
    TimedOut(JobRecord),
}

/// The delay after `current`: grows by half each poll, up to [`MAX_POLL`].
pub fn next_poll(current: Duration) -> Duration {
    (current + current / 2).min(MAX_POLL)
}

/// Polls `id` until it is terminal or the deadline passes. Always looks at least once.
pub async fn wait_for(queue: &Queue, id: &str, opts: WaitOptions) -> Result<WaitEnd, QueueError> {
    let mut bar = opts.progress_bar.then(|| JobBar::new(id));
    let mut delay = FIRST_POLL;
    loop {
        let record = queue.get(id).await?;
        if let Some(bar) = bar.as_mut() {
            bar.update(&record);
        }
        if record.state.is_terminal() {
            if let Some(bar) = bar.take() {
                bar.finish();
            }
            return Ok(WaitEnd::Finished(record));
        }
        let now = Instant::now();
        let sleep = match opts.deadline {
            Some(d) if now >= d => {
                if let Some(bar) = bar.take() {
                    bar.finish();
                }
                return Ok(WaitEnd::TimedOut(record));
            }
            Some(d) => delay.min(d - now),
            None => delay,
        };
        tokio::time::sleep(sleep).await;
        delay = next_poll(delay);
    }
}

/// A progress bar on stderr fed from the job's progress (done / total / message).
struct JobBar {
    bar: ProgressBar,
    counting: bool,
}

impl JobBar {
    fn new(id: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(Self::spinner_style());
        bar.set_prefix(id.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        JobBar {
            bar,
            counting: false,
        }
    }

    fn spinner_style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {prefix} {elapsed} {wide_msg}")
            .expect("a valid template")
    }

    fn bar_style() -> ProgressStyle {
        ProgressStyle::with_template(
            "{spinner} {prefix} {elapsed} [{bar:30}] {pos}/{len} {wide_msg}",
        )
        .expect("a valid template")
        .progress_chars("=> ")
    }

    fn update(&mut self, r: &JobRecord) {
        let p = &r.progress;
        if p.total > 0 {
            if !self.counting {
                self.bar.set_style(Self::bar_style());
                self.counting = true;
            }
            self.bar.set_length(p.total);
            self.bar.set_position(p.done.min(p.total));
        }
        let msg = if p.message.is_empty() {
            format!("{} {}", r.kind, r.state)
        } else {
            format!("{} {}: {}", r.kind, r.state, p.message)
        };
        self.bar.set_message(msg);
    }

    fn finish(self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_backs_off_from_100_to_500_ms() {
        let mut d = FIRST_POLL;
        let mut seen = vec![d];
        for _ in 0..8 {
            d = next_poll(d);
            seen.push(d);
        }
        assert_eq!(seen[1], Duration::from_millis(150));
        assert_eq!(seen[2], Duration::from_millis(225));
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*seen.last().unwrap(), MAX_POLL);
    }
}
