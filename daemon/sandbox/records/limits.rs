//! Rate limiting for the record APIs, on by default at each provider's published figures:
//! sliding request windows (HubSpot's ten-secondly and search limits, Pipedrive's burst
//! window, Salesforce's daily allocation, Jobber's DDoS guard), Pipedrive's daily token budget
//! and Jobber's query-cost leaky bucket. Each takes the current time in milliseconds so tests
//! can drive it, and each can be switched off by name (`POST /_control/<provider>/limits`).

use std::collections::VecDeque;

/// A sliding window of requests.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// Whether requests over `max` are refused.
    pub enabled: bool,
    /// Requests allowed per window.
    pub max: u64,
    /// The window, in milliseconds.
    pub window_ms: i64,
    hits: VecDeque<i64>,
}

/// Where an admitted request leaves the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Requests allowed per window.
    pub max: u64,
    /// Requests in the window, this one included.
    pub used: u64,
    /// Requests left in the window.
    pub remaining: u64,
    /// Milliseconds until the oldest request leaves the window.
    pub reset_ms: i64,
}

/// A refused request: how long until the window has room again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Requests allowed per window.
    pub max: u64,
    /// Milliseconds until a request would be admitted.
    pub retry_after_ms: i64,
}

impl Refusal {
    /// `retry_after_ms` in whole seconds, rounded up, at least one.
    pub fn retry_after_secs(&self) -> i64 {
        ceil_secs(self.retry_after_ms)
    }
}

/// Milliseconds as whole seconds, rounded up, at least one.
pub fn ceil_secs(ms: i64) -> i64 {
    ((ms + 999) / 1000).max(1)
}

impl RateLimit {
    /// A window of `max` requests per `window_ms`, switched on.
    pub fn new(max: u64, window_ms: i64) -> RateLimit {
        RateLimit {
            enabled: true,
            max,
            window_ms,
            hits: VecDeque::new(),
        }
    }

    /// Switches limiting on or off and starts a fresh window.
    pub fn configure(&mut self, enabled: bool, max: u64, window_ms: i64) {
        self.enabled = enabled;
        self.max = max.max(1);
        self.window_ms = window_ms.max(1);
        self.hits.clear();
    }

    fn prune(&mut self, now_ms: i64) {
        while self.hits.front().is_some_and(|&at| at + self.window_ms <= now_ms) {
            self.hits.pop_front();
        }
    }

    /// Admits or refuses a request at `now_ms`. Always admits when switched off (and then
    /// reports nothing meaningful).
    pub fn admit(&mut self, now_ms: i64) -> Result<Usage, Refusal> {
        if !self.enabled {
            return Ok(Usage {
                max: self.max,
                used: 0,
                remaining: self.max,
                reset_ms: 0,
            });
        }
        self.prune(now_ms);
        let used = self.hits.len() as u64;
        if used >= self.max {
            let oldest = self.hits.front().copied().unwrap_or(now_ms);
            return Err(Refusal {
                max: self.max,
                retry_after_ms: (oldest + self.window_ms - now_ms).max(1),
            });
        }
        self.hits.push_back(now_ms);
        let oldest = self.hits.front().copied().unwrap_or(now_ms);
        Ok(Usage {
            max: self.max,
            used: used + 1,
            remaining: self.max - used - 1,
            reset_ms: (oldest + self.window_ms - now_ms).max(0),
        })
    }
}

/// A daily budget of tokens, each request charged by its kind (Pipedrive's token-based
/// limit), starting afresh at midnight UTC.
#[derive(Debug, Clone)]
pub struct TokenBudget {
    pub enabled: bool,
    /// Tokens a day.
    pub max: u64,
    used: u64,
    day: i64,
}

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

impl TokenBudget {
    /// A budget of `max` tokens a day, switched on.
    pub fn new(max: u64) -> TokenBudget {
        TokenBudget {
            enabled: true,
            max,
            used: 0,
            day: 0,
        }
    }

    /// Charges `tokens` at `now_ms`; the milliseconds until midnight when the day's budget
    /// cannot cover them.
    pub fn charge(&mut self, tokens: u64, now_ms: i64) -> Result<(), i64> {
        if !self.enabled {
            return Ok(());
        }
        let day = now_ms.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.used = 0;
        }
        if self.used + tokens > self.max {
            return Err((day + 1) * DAY_MS - now_ms);
        }
        self.used += tokens;
        Ok(())
    }

    /// Tokens left today.
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }
}

/// Jobber's query-cost bucket, on by default at Jobber's documented figures: it drains by each
/// query's cost and refills at `restore` points a second; switched off it stays full (nothing
/// is ever throttled).
#[derive(Debug, Clone)]
pub struct CostBucket {
    /// Whether queries are charged and throttled.
    pub enabled: bool,
    /// The bucket's size (`maximumAvailable`).
    pub max: f64,
    /// Points restored per second (`restoreRate`).
    pub restore: f64,
    available: f64,
    last_ms: i64,
}

/// Jobber's documented bucket size.
pub const JOBBER_MAX_COST: f64 = 10_000.0;
/// Jobber's documented restore rate, points per second.
pub const JOBBER_RESTORE_RATE: f64 = 500.0;

impl Default for CostBucket {
    fn default() -> CostBucket {
        CostBucket {
            enabled: true,
            max: JOBBER_MAX_COST,
            restore: JOBBER_RESTORE_RATE,
            available: JOBBER_MAX_COST,
            last_ms: 0,
        }
    }
}

impl CostBucket {
    /// Switches charging on (`max` points, restoring `max / 20` a second) or off, full.
    pub fn configure(&mut self, enabled: bool, max: u64, now_ms: i64) {
        *self = CostBucket::default();
        self.enabled = enabled;
        if enabled {
            self.max = max.max(1) as f64;
            self.restore = self.max / 20.0;
            self.available = self.max;
        }
        self.last_ms = now_ms;
    }

    /// Points available at `now_ms`.
    pub fn available(&mut self, now_ms: i64) -> f64 {
        if !self.enabled {
            return self.max;
        }
        let elapsed = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.available = (self.available + elapsed * self.restore).min(self.max);
        self.last_ms = now_ms.max(self.last_ms);
        self.available
    }

    /// Takes `cost` points if available; `false` (and nothing taken) when throttled.
    pub fn take(&mut self, cost: f64, now_ms: i64) -> bool {
        if !self.enabled {
            return true;
        }
        if self.available(now_ms) < cost {
            return false;
        }
        self.available -= cost;
        true
    }

    /// Gives back points charged but not used (requested minus actual cost).
    pub fn refund(&mut self, points: f64) {
        if self.enabled {
            self.available = (self.available + points.max(0.0)).min(self.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_refuses_over_max_and_reopens() {
        let mut limit = RateLimit::new(3, 1_000);
        limit.configure(false, 3, 1_000);
        for at in 0..10 {
            assert!(limit.admit(at).is_ok(), "off admits");
        }
        limit.configure(true, 3, 1_000);
        assert_eq!(limit.admit(0).unwrap().remaining, 2);
        assert_eq!(limit.admit(100).unwrap().remaining, 1);
        let last = limit.admit(200).unwrap();
        assert_eq!((last.used, last.remaining), (3, 0));
        let refused = limit.admit(300).unwrap_err();
        assert_eq!(refused.retry_after_ms, 700);
        assert_eq!(refused.retry_after_secs(), 1);
        assert!(limit.admit(1_000).is_ok(), "the first request left the window");
    }

    #[test]
    fn token_budget_refuses_past_the_day_and_starts_afresh_at_midnight() {
        let mut budget = TokenBudget::new(25);
        let noon = 10 * DAY_MS + DAY_MS / 2;
        assert!(budget.charge(10, noon).is_ok());
        assert!(budget.charge(10, noon).is_ok());
        assert_eq!(budget.charge(10, noon), Err(DAY_MS / 2), "until midnight");
        assert_eq!(budget.remaining(), 5);
        assert!(budget.charge(10, 11 * DAY_MS).is_ok(), "a new day");
    }

    #[test]
    fn bucket_throttles_and_restores() {
        let mut bucket = CostBucket::default();
        assert!(bucket.enabled, "on by default");
        assert_eq!((bucket.max, bucket.restore), (JOBBER_MAX_COST, JOBBER_RESTORE_RATE));
        bucket.configure(false, 200, 0);
        assert!(bucket.take(1e9, 0), "off never throttles");
        assert_eq!(bucket.available(0), JOBBER_MAX_COST);
        bucket.configure(true, 200, 0);
        assert_eq!(bucket.restore, 10.0);
        assert!(bucket.take(101.0, 0));
        assert!(!bucket.take(101.0, 0), "99 left");
        bucket.refund(1.0);
        assert!(bucket.take(101.0, 200), "100 + 2 restored");
        assert!(bucket.available(100_000) <= 200.0);
    }
}
