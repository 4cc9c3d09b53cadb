//! Per-connection caps on inbound webhook requests: a token bucket per connection (or per
//! provider account, for webhooks sent to an app's shared URL). Buckets that have refilled are
//! dropped as new ones arrive, so the map holds only the senders active lately.

use std::collections::HashMap;
use std::sync::Mutex;

/// Buckets kept before full ones are dropped.
const PRUNE_AT: usize = 10_000;

struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// The buckets of every sender.
pub struct RateCaps {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateCaps {
    /// `per_second` requests a second per sender, bursts of twice that.
    pub fn new(per_second: u32) -> RateCaps {
        let per_second = f64::from(per_second.max(1));
        RateCaps {
            per_second,
            burst: per_second * 2.0,
            buckets: Mutex::default(),
        }
    }

    /// Takes a token of `sender`'s bucket at `now_ms`; `false` when it is empty.
    pub fn admit(&self, sender: &str, now_ms: i64) -> bool {
        // Single-entry updates cannot leave the map half-changed.
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (per_second, burst) = (self.per_second, self.burst);
        let refilled =
            |bucket: &Bucket| (bucket.tokens + (now_ms - bucket.at_ms) as f64 / 1000.0 * per_second).min(burst);
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, bucket| refilled(bucket) < burst);
        }
        let bucket = buckets.entry(sender.to_owned()).or_insert(Bucket {
            tokens: burst,
            at_ms: now_ms,
        });
        bucket.tokens = refilled(bucket);
        bucket.at_ms = now_ms;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_gets_its_burst_then_its_rate() {
        let caps = RateCaps::new(10);
        let admitted = (0..30).filter(|_| caps.admit("conn_a", 0)).count();
        assert_eq!(admitted, 20);
        assert!(!caps.admit("conn_a", 50));
        assert!(caps.admit("conn_a", 100));
        assert!(caps.admit("conn_b", 100), "senders have their own buckets");
    }
}
