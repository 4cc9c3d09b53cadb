//! Mapping schedules: an interval (`30s`, `15m`, `2h`, `1d`) or a cron expression, optionally
//! prefixed with a time zone (`TZ=Europe/Paris 0 9 * * MON-FRI`).

use std::str::FromStr;

use chrono::TimeZone;

/// Shortest interval accepted.
pub const MIN_INTERVAL_SECONDS: u64 = 10;
/// Longest interval accepted: a year.
pub const MAX_INTERVAL_SECONDS: u64 = 366 * 86_400;
/// A cron schedule must fire within this many days (Feb 29 fires within four years).
pub const HORIZON_DAYS: i64 = 5 * 366;
/// The longest schedule text.
pub const MAX_LENGTH: usize = 200;

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
    #[error("interval \"{0}\" is shorter than {MIN_INTERVAL_SECONDS}s")]
    TooShort(String),
    #[error("interval \"{0}\" is longer than a year (366d)")]
    TooLong(String),
    #[error("unknown time zone \"{0}\"")]
    Zone(String),
    #[error("\"{0}\" is neither an interval like 15m nor a cron expression ({1})")]
    Invalid(String, String),
    #[error("cron expression \"{0}\" never fires within {HORIZON_DAYS} days")]
    Never(String),
    #[error("longer than {MAX_LENGTH} characters")]
    Length,
}

/// `text` as quoted in an error: at most 64 characters, no control characters.
fn shown(text: &str) -> String {
    let mut shown: String = text.chars().filter(|c| !c.is_control()).take(64).collect();
    if text.chars().count() > 64 {
        shown.push('…');
    }
    shown
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        if text.len() > MAX_LENGTH {
            return Err(ScheduleError::Length);
        }
        if looks_like_interval(text) {
            let Some(interval) = parse_interval(text) else {
                return Err(ScheduleError::TooLong(shown(text)));
            };
            if interval.as_secs() < MIN_INTERVAL_SECONDS {
                return Err(ScheduleError::TooShort(shown(text)));
            }
            if interval.as_secs() > MAX_INTERVAL_SECONDS {
                return Err(ScheduleError::TooLong(shown(text)));
            }
            return Ok(Schedule::Every(interval));
        }
        let (zone, expression) = match text.strip_prefix("TZ=").or_else(|| text.strip_prefix("CRON_TZ=")) {
            Some(rest) => {
                let (zone, expression) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let zone = chrono_tz::Tz::from_str(zone).map_err(|_| ScheduleError::Zone(shown(zone)))?;
                (zone, expression.trim())
            }
            None => (chrono_tz::UTC, text),
        };
        let cron = croner::Cron::from_str(expression)
            .map_err(|e| ScheduleError::Invalid(shown(text), shown(&e.to_string())))?;
        let schedule = Schedule::Cron {
            cron: Box::new(cron),
            zone,
        };
        let now = jiff::Timestamp::now();
        let horizon = now + jiff::SignedDuration::from_hours(HORIZON_DAYS * 24);
        match schedule.next_after(now) {
            Some(next) if next <= horizon => Ok(schedule),
            _ => Err(ScheduleError::Never(shown(text))),
        }
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: jiff::Timestamp) -> Option<jiff::Timestamp> {
        match self {
            Schedule::Every(interval) => after.checked_add(jiff::SignedDuration::try_from(*interval).ok()?).ok(),
            Schedule::Cron { cron, zone } => {
                let start = zone.timestamp_millis_opt(after.as_millisecond()).single()?;
                let next = cron.find_next_occurrence(&start, false).ok()?;
                jiff::Timestamp::from_millisecond(next.timestamp_millis()).ok()
            }
        }
    }
}

/// Digits and a unit letter: an interval, valid or not.
fn looks_like_interval(text: &str) -> bool {
    text.strip_suffix(['s', 'm', 'h', 'd'])
        .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
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
    fn schedules_must_fire_within_the_horizon() {
        assert!(matches!(Schedule::parse("3000000d"), Err(ScheduleError::TooLong(_))));
        assert!(matches!(
            Schedule::parse("18446744073709551615s"),
            Err(ScheduleError::TooLong(_))
        ));
        assert!(matches!(
            Schedule::parse("99999999999999999999999d"),
            Err(ScheduleError::TooLong(_))
        ));
        assert!(matches!(Schedule::parse("0 0 30 2 *"), Err(ScheduleError::Never(_))));
        assert!(Schedule::parse("0 0 29 2 *").is_ok(), "Feb 29 comes within four years");
        assert!(Schedule::parse("366d").is_ok());
        let long = "1".repeat(300) + "s";
        assert_eq!(Schedule::parse(&long).unwrap_err(), ScheduleError::Length);
        let error = Schedule::parse(&format!("{} * * * *", "9".repeat(150)))
            .unwrap_err()
            .to_string();
        assert!(error.len() < 200, "the input is not echoed whole: {error}");
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
