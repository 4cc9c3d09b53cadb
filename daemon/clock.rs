//! The daemon's clock for the decisions that wait (webhook retries, mapping schedules): the
//! system clock in production, or one that follows tokio's clock so that tests can run those
//! waits on paused time and check them to the millisecond.

/// Where "now" comes from. Cheap to copy.
#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// Wall-clock time at creation, advanced by tokio's clock (paused or not) since then.
    Tokio {
        anchor_ms: i64,
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that reads `anchor` now and follows tokio's clock from here on.
    pub fn following_tokio(anchor: jiff::Timestamp) -> Clock {
        Clock::Tokio {
            anchor_ms: anchor.as_millisecond(),
            start: tokio::time::Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> jiff::Timestamp {
        match self {
            Clock::System => jiff::Timestamp::now(),
            Clock::Tokio { .. } => jiff::Timestamp::from_millisecond(self.now_ms()).unwrap_or(jiff::Timestamp::MAX),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => jiff::Timestamp::now().as_millisecond(),
            Clock::Tokio { anchor_ms, start } => {
                anchor_ms.saturating_add(i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX))
            }
        }
    }
}
