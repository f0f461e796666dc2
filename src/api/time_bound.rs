//! `from` and `to` of the analytics endpoints: an RFC 3339 date-time, or a date that stands for
//! a whole day of the endpoint's time zone (UTC where it has none).
//!
//! The text is kept as given and read by the handler, which knows the time zone; a value that is
//! no date, or one outside the years 0000–9999 (PostgreSQL's timestamps end in 4714 BC), is a
//! 422 naming the parameter, never a database error.

use std::borrow::Cow;

use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseFromParameter, ParseResult, Type},
};

use crate::error::ApiError;

/// The years a bound may name: what RFC 3339 can spell, well inside what PostgreSQL stores.
const YEARS: std::ops::RangeInclusive<i32> = 0..=9999;

/// A `from` or `to` as the client wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBound(String);

impl TimeBound {
    /// A bound as typed into a form.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The instant a range starts at: a date is the start of that day in `tz`.
    pub fn start(&self, field: &str, tz: Tz) -> Result<DateTime<Utc>, ApiError> {
        match self.parse(field)? {
            Parsed::At(at) => Ok(at),
            Parsed::Day(day) => Ok(day_start(tz, day)),
        }
    }

    /// The instant an (exclusive) range ends at: a date counts whole, so it ends where the next
    /// day of `tz` starts (`to=2026-11-30` includes all of November 30).
    pub fn end(&self, field: &str, tz: Tz) -> Result<DateTime<Utc>, ApiError> {
        match self.parse(field)? {
            Parsed::At(at) => Ok(at),
            Parsed::Day(day) => Ok(day_start(
                tz,
                day.succ_opt().expect("a year below 10000 has a next day"),
            )),
        }
    }

    fn parse(&self, field: &str) -> Result<Parsed, ApiError> {
        let text = self.0.trim();
        let (parsed, year) = if let Ok(at) = text.parse::<DateTime<FixedOffset>>() {
            // The year as written: `0000-01-01T00:00:00+01:00` is in range, though its UTC
            // instant falls in the year before.
            (Parsed::At(at.with_timezone(&Utc)), at.year())
        } else if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            (Parsed::Day(day), day.year())
        } else if spells_another_year(text) {
            return Err(out_of_range(field));
        } else {
            return Err(ApiError::unprocessable(
                "invalid_parameter",
                format!(
                    "`{field}` must be a date-time (RFC 3339, e.g. 2026-11-01T09:30:00Z) or a \
                     date (2026-11-01), in the years 0000 to 9999"
                ),
            ));
        };
        if !YEARS.contains(&year) {
            return Err(out_of_range(field));
        }
        Ok(parsed)
    }
}

fn out_of_range(field: &str) -> ApiError {
    ApiError::unprocessable(
        "invalid_range",
        format!("`{field}` must lie within the years 0000 to 9999"),
    )
}

/// Whether `text` starts like a date of a year with a sign or five digits (`+10000-01-01`,
/// `-4714-11-24`), which not every parser reads: out of range rather than malformed.
fn spells_another_year(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']);
    let rest = unsigned.unwrap_or(text);
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && rest[digits..].starts_with('-') && (unsigned.is_some() || digits > 4)
}

enum Parsed {
    At(DateTime<Utc>),
    Day(NaiveDate),
}

/// `from` and `to` as instants, either of them possibly absent.
pub type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `from` and `to`, either of them absent, as instants; dates in `tz`.
pub fn range(from: Option<&TimeBound>, to: Option<&TimeBound>, tz: Tz) -> Result<Bounds, ApiError> {
    let from = from.map(|b| b.start("from", tz)).transpose()?;
    let to = to.map(|b| b.end("to", tz)).transpose()?;
    Ok((from, to))
}

/// The first instant of a local day: midnight, or when midnight does not exist (a DST change at
/// midnight, as in America/Santiago), the first local time after it that does.
pub fn day_start(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let mut local = day.and_time(NaiveTime::MIN);
    // Gaps are an hour or less in practice; a skipped day (Pacific/Apia, 2011-12-30) ends the
    // search at the next midnight after 24 hours of steps.
    for _ in 0..=(24 * 4) {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => local += TimeDelta::minutes(15),
        }
    }
    // Unreachable with real zones; UTC midnight keeps the bounds sorted enough to be useful.
    day.and_time(NaiveTime::MIN).and_utc()
}

impl Type for TimeBound {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_date-time_or_date".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            any_of: vec![
                MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date-time"))),
                MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date"))),
            ],
            ..MetaSchema::ANY
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromParameter for TimeBound {
    /// Never fails: the handler reads the value, with the time zone and a message for a person.
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(s: &str) -> TimeBound {
        TimeBound(s.to_owned())
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn date_times_are_read_as_written() {
        let tz: Tz = "Asia/Tokyo".parse().unwrap();
        for (text, at) in [
            ("2026-11-01T09:30:00Z", "2026-11-01T09:30:00Z"),
            ("2026-11-01T09:30:00+02:00", "2026-11-01T07:30:00Z"),
            ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
            ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(bound(text).start("from", tz).unwrap(), utc(at), "{text}");
            assert_eq!(bound(text).end("to", tz).unwrap(), utc(at), "{text}");
        }
    }

    #[test]
    fn dates_are_whole_days_of_the_zone() {
        let utc_tz = Tz::UTC;
        let new_york: Tz = "America/New_York".parse().unwrap();
        let d = bound("2026-11-01");
        assert_eq!(
            d.start("from", utc_tz).unwrap(),
            utc("2026-11-01T00:00:00Z")
        );
        assert_eq!(d.end("to", utc_tz).unwrap(), utc("2026-11-02T00:00:00Z"));
        // 1 November 2026 ends daylight saving time in New York: a day of 25 hours.
        assert_eq!(
            d.start("from", new_york).unwrap(),
            utc("2026-11-01T04:00:00Z")
        );
        assert_eq!(d.end("to", new_york).unwrap(), utc("2026-11-02T05:00:00Z"));
        let last = bound("9999-12-31");
        let after_the_last_day = NaiveDate::from_ymd_opt(10000, 1, 1).unwrap();
        assert_eq!(
            last.end("to", utc_tz).unwrap(),
            after_the_last_day.and_time(NaiveTime::MIN).and_utc()
        );
        assert_eq!(bound("0000-01-01").start("from", utc_tz).unwrap().year(), 0);
    }

    #[test]
    fn anything_else_is_refused_with_the_parameter_named() {
        for (text, code) in [
            ("-9999-01-01T00:00:00Z", "invalid_range"),
            ("+10000-01-01T00:00:00Z", "invalid_range"),
            ("+10000-01-01", "invalid_range"),
            ("123456-01-01T00:00:00Z", "invalid_range"),
            ("-0001-12-31", "invalid_range"),
            ("10000-01-01", "invalid_range"),
            ("2026-13-01", "invalid_parameter"),
            ("2026-11-01T25:00:00Z", "invalid_parameter"),
            ("yesterday", "invalid_parameter"),
            ("", "invalid_parameter"),
            ("2026-11-01\u{0}", "invalid_parameter"),
        ] {
            let err = bound(text).start("from", Tz::UTC).unwrap_err();
            assert_eq!((err.status().as_u16(), err.code()), (422, code), "{text}");
            assert!(err.to_string().contains("`from`"), "{err}");
        }
    }
}
