//! Mapping schedules: an interval (`30s`, `15m`, `2h`, `1d`) or a cron expression, optionally
//! prefixed with a time zone (`TZ=Europe/Paris 0 9 * * MON-FRI`).

use std::str::FromStr;

use chrono::TimeZone;

/// Shortest interval accepted.
pub const MIN_INTERVAL_SECONDS: u64 = 10;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    Every(std::time::Duration),
    Cron {
        cron: Box<croner::Cron>,
        zone: chrono_tz::Tz,
    },
}

/// Why a schedule was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error("interval {0:?} is shorter than {MIN_INTERVAL_SECONDS}s")]
    TooShort(String),
    #[error("unknown time zone {0:?}")]
    Zone(String),
    #[error("{0:?} is neither an interval like 15m nor a cron expression ({1})")]
    Invalid(String, String),
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        if let Some(interval) = parse_interval(text) {
            if interval.as_secs() < MIN_INTERVAL_SECONDS {
                return Err(ScheduleError::TooShort(text.to_owned()));
            }
            return Ok(Schedule::Every(interval));
        }
        let (zone, expression) = match text.strip_prefix("TZ=").or_else(|| text.strip_prefix("CRON_TZ=")) {
            Some(rest) => {
                let (zone, expression) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let zone = chrono_tz::Tz::from_str(zone).map_err(|_| ScheduleError::Zone(zone.to_owned()))?;
                (zone, expression.trim())
            }
            None => (chrono_tz::UTC, text),
        };
        let cron =
            croner::Cron::from_str(expression).map_err(|e| ScheduleError::Invalid(text.to_owned(), e.to_string()))?;
        Ok(Schedule::Cron {
            cron: Box::new(cron),
            zone,
        })
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: jiff::Timestamp) -> Option<jiff::Timestamp> {
        match self {
            Schedule::Every(interval) => Some(after + jiff::SignedDuration::try_from(*interval).ok()?),
            Schedule::Cron { cron, zone } => {
                let start = zone.timestamp_millis_opt(after.as_millisecond()).single()?;
                let next = cron.find_next_occurrence(&start, false).ok()?;
                jiff::Timestamp::from_millisecond(next.timestamp_millis()).ok()
            }
        }
    }
}

fn parse_interval(text: &str) -> Option<std::time::Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "m" => number.checked_mul(60)?,
        "h" => number.checked_mul(3600)?,
        "d" => number.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn intervals_and_cron_with_zones() {
        let every = Schedule::parse("15m").unwrap();
        assert_eq!(
            every.next_after(at("2026-01-01T00:00:00Z")),
            Some(at("2026-01-01T00:15:00Z"))
        );
        let cron = Schedule::parse("0 9 * * *").unwrap();
        assert_eq!(
            cron.next_after(at("2026-01-01T10:00:00Z")),
            Some(at("2026-01-02T09:00:00Z"))
        );
        let paris = Schedule::parse("TZ=Europe/Paris 0 9 * * *").unwrap();
        assert_eq!(
            paris.next_after(at("2026-01-01T10:00:00Z")),
            Some(at("2026-01-02T08:00:00Z"))
        );
    }

    #[test]
    fn bad_schedules_say_why() {
        assert_eq!(Schedule::parse("5s").unwrap_err(), ScheduleError::TooShort("5s".into()));
        assert_eq!(
            Schedule::parse("TZ=Mars/Base 0 9 * * *").unwrap_err(),
            ScheduleError::Zone("Mars/Base".into())
        );
        assert!(matches!(
            Schedule::parse("every tuesday"),
            Err(ScheduleError::Invalid(..))
        ));
    }
}
