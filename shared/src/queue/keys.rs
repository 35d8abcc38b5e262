//! Every Redis key paperboy uses, built in one place (prefix isolation, cluster hash tags).
//!
//! The keys of one queue share the hash tag `{<prefix>:<queue>}`, so that every Lua script
//! touches one slot. Scripts get the queue's base (`<prefix>:{<prefix>:<queue>}:`) as `KEYS[1]`
//! and build the keys below from it; the names here and in `scripts/*.lua` must match.

/// Key builder for one paperboy instance (one prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:{<prefix>:<queue>}:`, the start of every key of one queue.
    pub fn base(&self, queue: &str) -> String {
        format!("{p}:{{{p}:{queue}}}:", p = self.prefix)
    }

    pub fn job(&self, queue: &str, id: &str) -> String {
        format!("{}job:{id}", self.base(queue))
    }

    pub fn waiting(&self, queue: &str) -> String {
        format!("{}waiting", self.base(queue))
    }

    pub fn scheduled(&self, queue: &str) -> String {
        format!("{}scheduled", self.base(queue))
    }

    pub fn running(&self, queue: &str) -> String {
        format!("{}running", self.base(queue))
    }

    pub fn inflight(&self, queue: &str, worker: &str) -> String {
        format!("{}inflight:{worker}", self.base(queue))
    }

    pub fn leases(&self, queue: &str) -> String {
        format!("{}leases", self.base(queue))
    }

    /// Marker left by `recover` for a worker whose jobs were taken back; the worker's next
    /// heartbeat reads and deletes it (fencing).
    pub fn lost(&self, queue: &str, worker: &str) -> String {
        format!("{}lost:{worker}", self.base(queue))
    }

    /// Zset of workers whose jobs `recover` took back, score = when to look at their inflight
    /// list once more (an id a late BLMOVE moved there).
    pub fn tombs(&self, queue: &str) -> String {
        format!("{}tombs", self.base(queue))
    }

    pub fn finished(&self, queue: &str) -> String {
        format!("{}finished", self.base(queue))
    }

    pub fn dead(&self, queue: &str) -> String {
        format!("{}dead", self.base(queue))
    }

    pub fn unique(&self, queue: &str, key: &str) -> String {
        format!("{}unique:{key}", self.base(queue))
    }

    pub fn stats(&self, queue: &str) -> String {
        format!("{}stats", self.base(queue))
    }

    /// Zset of worker ids, score = last heartbeat (ms).
    pub fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// Hash describing one worker (host, pid, queues, started_at, lease_ms).
    pub fn worker(&self, id: &str) -> String {
        format!("{}:worker:{id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_share_one_hash_tag() {
        let k = Keys::new("pb");
        let tag = "{pb:ping}";
        for key in [
            k.base("ping"),
            k.job("ping", "01J"),
            k.waiting("ping"),
            k.scheduled("ping"),
            k.running("ping"),
            k.inflight("ping", "h:1:x"),
            k.leases("ping"),
            k.lost("ping", "h:1:x"),
            k.tombs("ping"),
            k.finished("ping"),
            k.dead("ping"),
            k.unique("ping", "consume:a/b"),
            k.stats("ping"),
        ] {
            assert!(key.starts_with("pb:"), "{key}");
            assert_eq!(key.find('{'), Some(3), "{key}");
            assert!(key[3..].starts_with(tag), "{key}");
        }
        assert_eq!(k.job("ping", "X"), "pb:{pb:ping}:job:X");
        assert_eq!(k.workers(), "pb:workers");
        assert_eq!(k.worker("w1"), "pb:worker:w1");
    }
}
