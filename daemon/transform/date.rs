//! `date_iso`: dates and datetimes in the formats CRMs send (ISO 8601, RFC 3339, epoch
//! milliseconds, US and European numeric dates, month names), written as ISO 8601 dates or
//! RFC 3339 UTC datetimes. The formats are listed in the module documentation of `transform`.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;

use super::{Quoted, ValueError};

const TRANSFORM: &str = "date_iso";

/// Which number comes first in a numeric date written with `/` or `-` and the year last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    Mdy,
    Dmy,
}

/// What `date_iso` writes, whatever it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Output {
    Date,
    Datetime,
}

/// The arguments of `date_iso`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct DateOptions {
    pub order: Option<Order>,
    pub output: Option<Output>,
}

/// What a value holds: a calendar date, or an instant as a UTC datetime.
#[derive(Debug, Clone, Copy, PartialEq)]
enum When {
    Day(Date),
    Instant(DateTime),
}

/// Why a value is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Problem {
    Unreadable,
    Digits,
    TwoDigitYear,
    Ambiguous,
    Invalid,
    OutOfRange,
}

impl Problem {
    fn about(self, value: &str) -> ValueError {
        let value = Quoted(value);
        let problem = match self {
            Problem::Unreadable => format!(
                "cannot read {value} as a date (expected ISO 8601, RFC 3339, epoch milliseconds, MM/DD/YYYY, \
                 DD/MM/YYYY, DD.MM.YYYY or a month name)"
            ),
            Problem::Digits => format!("{value} is all digits but not epoch milliseconds (11 to 13 digits)"),
            Problem::TwoDigitYear => format!("{value} has a two-digit year; years need four digits"),
            Problem::Ambiguous => {
                format!("{value} is ambiguous (month/day or day/month?); set order=mdy or order=dmy")
            }
            Problem::Invalid => format!("{value} is not a valid date or time"),
            Problem::OutOfRange => format!("{value} is out of the supported range (years 0000 to 9999)"),
        };
        ValueError {
            transform: TRANSFORM,
            problem,
        }
    }
}

/// The date or UTC datetime in `value`, written as the options ask.
pub(super) fn date_iso(value: &str, options: DateOptions) -> Result<String, ValueError> {
    let trimmed = value.trim();
    let when = read(trimmed, options.order).map_err(|problem| problem.about(trimmed))?;
    let mut out = String::with_capacity("YYYY-MM-DDTHH:MM:SSZ".len());
    let written = match (when, options.output) {
        (When::Day(date), None | Some(Output::Date)) => push_date(&mut out, date),
        (When::Day(date), Some(Output::Datetime)) => push_date(&mut out, date).map(|()| out.push_str("T00:00:00Z")),
        (When::Instant(utc), Some(Output::Date)) => push_date(&mut out, utc.date()),
        (When::Instant(utc), None | Some(Output::Datetime)) => push_datetime(&mut out, utc),
    };
    written.map_err(|problem| problem.about(trimmed))?;
    Ok(out)
}

/// Reads a trimmed value.
fn read(value: &str, order: Option<Order>) -> Result<When, Problem> {
    let bytes = value.as_bytes();
    if !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) {
        return epoch_millis(bytes);
    }
    let leading_digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let word_form = match bytes.get(leading_digits) {
        _ if leading_digits == 0 => bytes.first().is_some_and(u8::is_ascii_alphabetic),
        Some(b) => b.is_ascii_whitespace() || b.is_ascii_alphabetic(),
        None => false,
    };
    if word_form { words(value) } else { numeric(bytes, order) }
}

/// Epoch milliseconds: 11 to 13 digits.
fn epoch_millis(digits: &[u8]) -> Result<When, Problem> {
    if !(11..=13).contains(&digits.len()) {
        return Err(Problem::Digits);
    }
    let millis = digits.iter().fold(0_i64, |n, d| n * 10 + i64::from(d - b'0'));
    let timestamp = Timestamp::from_millisecond(millis).map_err(|_| Problem::OutOfRange)?;
    Ok(When::Instant(Offset::UTC.to_datetime(timestamp)))
}

/// Numeric dates: `YYYY-MM-DD` (with an optional time), `YYYY/MM/DD`, `MM/DD/YYYY`,
/// `DD/MM/YYYY`, `MM-DD-YYYY`, `DD-MM-YYYY` and `DD.MM.YYYY`.
fn numeric(bytes: &[u8], order: Option<Order>) -> Result<When, Problem> {
    let mut c = Cursor { bytes, at: 0 };
    let (first, first_len) = c.number();
    let sep = c
        .next()
        .filter(|b| matches!(b, b'-' | b'/' | b'.'))
        .ok_or(Problem::Unreadable)?;
    let second = c.short_number()?;
    if !c.eat(sep) {
        return Err(Problem::Unreadable);
    }
    if first_len == 4 {
        let date = make_date(first, second, c.short_number()?)?;
        return if c.at_end() {
            Ok(When::Day(date))
        } else if sep == b'-' {
            time(&mut c, date)
        } else {
            Err(Problem::Unreadable)
        };
    }
    if !(1..=2).contains(&first_len) {
        return Err(Problem::Unreadable);
    }
    let (year, year_len) = c.number();
    match year_len {
        4 if c.at_end() => {}
        2 if c.at_end() => return Err(Problem::TwoDigitYear),
        _ => return Err(Problem::Unreadable),
    }
    let order = match (sep, order) {
        (b'.', _) => Order::Dmy,
        (_, Some(order)) => order,
        _ if first == second || first > 12 => Order::Dmy,
        _ if second > 12 => Order::Mdy,
        _ => return Err(Problem::Ambiguous),
    };
    let date = match order {
        Order::Mdy => make_date(year, first, second)?,
        Order::Dmy => make_date(year, second, first)?,
    };
    Ok(When::Day(date))
}

/// The time and offset after an ISO date: `THH:MM[:SS[.fraction]][Z|±HH[:MM]]`, with `t` or a
/// space allowed for `T`. No offset means UTC.
fn time(c: &mut Cursor<'_>, date: Date) -> Result<When, Problem> {
    if !matches!(c.next(), Some(b'T' | b't' | b' ')) {
        return Err(Problem::Unreadable);
    }
    let hour = c.two_digits()?;
    if !c.eat(b':') {
        return Err(Problem::Unreadable);
    }
    let minute = c.two_digits()?;
    let mut second = 0;
    if c.eat(b':') {
        second = c.two_digits()?.min(59);
        if c.eat(b'.') || c.eat(b',') {
            let (_, fraction_len) = c.number();
            if !(1..=9).contains(&fraction_len) {
                return Err(Problem::Unreadable);
            }
        }
    }
    let offset_seconds = match c.next() {
        None | Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hours = c.two_digits()?;
            let colon = c.eat(b':');
            let minutes = if colon || !c.at_end() { c.two_digits()? } else { 0 };
            if hours > 23 || minutes > 59 {
                return Err(Problem::Invalid);
            }
            let seconds = i32::from(hours * 3600 + minutes * 60);
            if sign == b'-' { -seconds } else { seconds }
        }
        Some(_) => return Err(Problem::Unreadable),
    };
    if !c.at_end() {
        return Err(Problem::Unreadable);
    }
    let local = DateTime::from_parts(
        date,
        jiff::civil::Time::new(time_field(hour)?, time_field(minute)?, time_field(second)?, 0)
            .map_err(|_| Problem::Invalid)?,
    );
    if offset_seconds == 0 {
        return Ok(When::Instant(local));
    }
    let offset = Offset::from_seconds(offset_seconds).map_err(|_| Problem::Invalid)?;
    let timestamp = offset.to_timestamp(local).map_err(|_| Problem::OutOfRange)?;
    Ok(When::Instant(Offset::UTC.to_datetime(timestamp)))
}

/// An hour, minute or second as jiff takes it; values above `i8::MAX` are invalid anyway.
fn time_field(value: u16) -> Result<i8, Problem> {
    i8::try_from(value).map_err(|_| Problem::Invalid)
}

/// Dates with a month name: `Jan 5, 2024`, `January 5 2024`, `5 January 2024`, `Sept. 5th, 2024`.
fn words(value: &str) -> Result<When, Problem> {
    let mut tokens = value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty());
    let (Some(a), Some(b), Some(year), None) = (tokens.next(), tokens.next(), tokens.next(), tokens.next()) else {
        return Err(Problem::Unreadable);
    };
    let (month, day) = match (month_number(a), month_number(b)) {
        (Some(month), None) => (month, b),
        (None, Some(month)) => (month, a),
        _ => return Err(Problem::Unreadable),
    };
    let day_digits = day.bytes().take_while(u8::is_ascii_digit).count();
    let ordinal = &day[day_digits..];
    let ordinal_ok = ["", "st", "nd", "rd", "th"]
        .iter()
        .any(|o| o.eq_ignore_ascii_case(ordinal));
    if !(1..=2).contains(&day_digits) || !ordinal_ok {
        return Err(Problem::Unreadable);
    }
    if !year.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::Unreadable);
    }
    let year = match year.len() {
        4 => digits_value(year.as_bytes()),
        2 => return Err(Problem::TwoDigitYear),
        _ => return Err(Problem::Unreadable),
    };
    Ok(When::Day(make_date(
        year,
        month,
        digits_value(&day.as_bytes()[..day_digits]),
    )?))
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// The month (1 to 12) that a name or abbreviation (`Jan`, `Jan.`, `Sept`, any case) means.
fn month_number(token: &str) -> Option<u16> {
    let name = token.strip_suffix('.').unwrap_or(token);
    let index = MONTHS.iter().position(|month| {
        month.eq_ignore_ascii_case(name)
            || (name.len() == 3 && month[..3].eq_ignore_ascii_case(name))
            || (*month == "september" && name.eq_ignore_ascii_case("sept"))
    })?;
    // The index is below 12.
    u16::try_from(index + 1).ok()
}

/// A validated calendar date.
fn make_date(year: u16, month: u16, day: u16) -> Result<Date, Problem> {
    let year = i16::try_from(year).map_err(|_| Problem::Invalid)?;
    let month = i8::try_from(month).map_err(|_| Problem::Invalid)?;
    let day = i8::try_from(day).map_err(|_| Problem::Invalid)?;
    Date::new(year, month, day).map_err(|_| Problem::Invalid)
}

/// The value of a run of at most four ASCII digits.
fn digits_value(digits: &[u8]) -> u16 {
    digits
        .iter()
        .fold(0, |n, d| n.saturating_mul(10).saturating_add(u16::from(d - b'0')))
}

/// Writes `YYYY-MM-DD`.
fn push_date(out: &mut String, date: Date) -> Result<(), Problem> {
    let year = u16::try_from(date.year()).map_err(|_| Problem::OutOfRange)?;
    push_padded(out, year, 4);
    out.push('-');
    push_padded(out, date.month().unsigned_abs().into(), 2);
    out.push('-');
    push_padded(out, date.day().unsigned_abs().into(), 2);
    Ok(())
}

/// Writes `YYYY-MM-DDTHH:MM:SSZ`.
fn push_datetime(out: &mut String, utc: DateTime) -> Result<(), Problem> {
    push_date(out, utc.date())?;
    out.push('T');
    push_padded(out, utc.hour().unsigned_abs().into(), 2);
    out.push(':');
    push_padded(out, utc.minute().unsigned_abs().into(), 2);
    out.push(':');
    push_padded(out, utc.second().unsigned_abs().into(), 2);
    out.push('Z');
    Ok(())
}

/// Writes the last `width` decimal digits of `value`, zero-padded.
fn push_padded(out: &mut String, value: u16, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10_u16.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// A position in an ASCII value being read.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.bytes.get(self.at).copied();
        self.at += usize::from(b.is_some());
        b
    }

    fn eat(&mut self, expected: u8) -> bool {
        let found = self.bytes.get(self.at) == Some(&expected);
        self.at += usize::from(found);
        found
    }

    /// A run of digits: its value (saturating) and length.
    fn number(&mut self) -> (u16, usize) {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let digits = &self.bytes[start..self.at];
        (digits_value(digits), digits.len())
    }

    /// One or two digits.
    fn short_number(&mut self) -> Result<u16, Problem> {
        match self.number() {
            (value, 1 | 2) => Ok(value),
            _ => Err(Problem::Unreadable),
        }
    }

    /// The next two characters, which must be digits.
    fn two_digits(&mut self) -> Result<u16, Problem> {
        match self.bytes.get(self.at..self.at + 2) {
            Some(pair) if pair.iter().all(u8::is_ascii_digit) => {
                self.at += 2;
                Ok(digits_value(pair))
            }
            _ => Err(Problem::Unreadable),
        }
    }
}
