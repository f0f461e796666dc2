//! The dashboards' parameters, checked: ranges, time zones, cursors, the buckets of a series.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::outputs::Interval;
use crate::{
    api::{page, time_bound::day_start},
    error::ApiError,
    model::analytics::{Cursor, EventWindow, HourRange},
};

/// Default range of the aggregates (time series, breakdowns, leaderboard).
const DEFAULT_DAYS: i64 = 30;
const MAX_DAY_SPAN_DAYS: i64 = 400;
const MAX_HOUR_SPAN_DAYS: i64 = 31;
pub(super) const DEFAULT_LEADERBOARD_SIZE: u32 = 10;

fn invalid_range(detail: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_range", detail)
}

/// Both bounds, when given, in order.
pub(super) fn check_order(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(), ApiError> {
    match (from, to) {
        (Some(from), Some(to)) if from >= to => Err(invalid_range("`from` must be before `to`")),
        _ => Ok(()),
    }
}

pub(super) fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(3600) * 3600;
    DateTime::from_timestamp(secs, 0).expect("an hour within chrono's range")
}

pub fn parse_tz(raw: Option<&str>) -> Result<Tz, ApiError> {
    match raw {
        None => Ok(Tz::UTC),
        Some(name) => name.parse::<Tz>().map_err(|_| {
            ApiError::unprocessable(
                "invalid_time_zone",
                format!("Unknown time zone `{name}`: use an IANA name such as `Europe/Berlin`"),
            )
        }),
    }
}

/// The cursor of `next_cursor`.
pub(super) fn parse_cursor(text: &str) -> Result<Cursor, ApiError> {
    Cursor::decode(text).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_cursor",
            "`cursor` is not a cursor this endpoint handed out",
        )
    })
}

/// What an event list asks for.
pub(super) fn event_window(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    cursor: Option<&str>,
    limit: Option<u32>,
    now: DateTime<Utc>,
) -> Result<EventWindow, ApiError> {
    check_order(from, to)?;
    let (_, limit) = page(None, limit)?;
    let to = to.unwrap_or(now);
    let end = Cursor {
        occurred_at: to,
        id: Uuid::nil(),
    };
    let below = match cursor {
        Some(text) => parse_cursor(text)?.min(end),
        None => end,
    };
    Ok(EventWindow {
        from,
        to,
        below,
        limit,
    })
}

/// `[from, to)` of an aggregate over whole hours (breakdowns, leaderboard). Default: the last
/// 30 days. `from` is rounded down to its hour; an hour starting before `to` counts (`to`
/// rounded up).
pub fn hour_range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<HourRange, ApiError> {
    check_order(from, to)?;
    let end = to.unwrap_or(now);
    let from = from.unwrap_or(end - TimeDelta::days(DEFAULT_DAYS));
    Ok(HourRange {
        start: floor_hour(from),
        end,
    })
}

/// The buckets of a time series: `bounds[i]..bounds[i + 1]` is bucket `i`, labelled `labels[i]`.
#[derive(Debug)]
pub struct BucketPlan {
    pub bounds: Vec<DateTime<Utc>>,
    pub labels: Vec<String>,
}

impl BucketPlan {
    /// Every bucket touching `[from, to)`: the range widens to whole buckets. Days are local
    /// calendar days of `tz`; hours are UTC hours (the rollups' grain) labelled in local time,
    /// which for the usual whole-hour offsets are exactly the local hours.
    pub fn new(tz: Tz, interval: Interval, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        debug_assert!(from < to);
        let last = to - TimeDelta::microseconds(1);
        let mut bounds = Vec::new();
        let mut labels = Vec::new();
        match interval {
            Interval::Day => {
                let mut day = from.with_timezone(&tz).date_naive();
                let last_day = last.with_timezone(&tz).date_naive();
                while day <= last_day {
                    bounds.push(day_start(tz, day));
                    labels.push(day.format("%Y-%m-%d").to_string());
                    day = day.succ_opt().expect("a date within chrono's range");
                }
                bounds.push(day_start(tz, day));
            }
            Interval::Hour => {
                let mut hour = floor_hour(from);
                let end = floor_hour(last) + TimeDelta::hours(1);
                while hour < end {
                    bounds.push(hour);
                    labels.push(
                        hour.with_timezone(&tz)
                            .to_rfc3339_opts(SecondsFormat::Secs, false),
                    );
                    hour += TimeDelta::hours(1);
                }
                bounds.push(end);
            }
        }
        Self { bounds, labels }
    }
}

#[cfg(test)]
impl BucketPlan {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn start(&self) -> DateTime<Utc> {
        self.bounds[0]
    }

    fn end(&self) -> DateTime<Utc> {
        self.bounds[self.len()]
    }
}

/// The range of a time series: defaults to the 30 local days (or 720 hours) ending with the one
/// containing `to` (default now); at most 400 days of days or 31 days of hours, plus the hour a
/// DST change may add.
pub fn series_range(
    tz: Tz,
    interval: Interval,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    check_order(from, to)?;
    let to = to.unwrap_or(now);
    let from = match from {
        Some(from) => from,
        None => {
            let last = to - TimeDelta::microseconds(1);
            match interval {
                Interval::Day => {
                    let last_day = last.with_timezone(&tz).date_naive();
                    day_start(tz, last_day - TimeDelta::days(DEFAULT_DAYS - 1))
                }
                Interval::Hour => floor_hour(last) - TimeDelta::hours(DEFAULT_DAYS * 24 - 1),
            }
        }
    };
    if from >= to {
        return Err(invalid_range("`from` must be before `to`"));
    }
    let (max_days, what) = match interval {
        Interval::Day => (MAX_DAY_SPAN_DAYS, "days"),
        Interval::Hour => (MAX_HOUR_SPAN_DAYS, "hours"),
    };
    if to - from > TimeDelta::days(max_days) + TimeDelta::hours(1) {
        return Err(invalid_range(format!(
            "A series of {what} covers at most {max_days} days"
        )));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use chrono::{NaiveDate, NaiveTime};

    use super::*;
    use crate::model::analytics::{Tiers, bucket_index};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn new_york() -> Tz {
        "America/New_York".parse().unwrap()
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor {
            occurred_at: utc("2026-03-08T07:30:00.123456Z"),
            id: Uuid::new_v4(),
        };
        let text = cursor.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(parse_cursor(&text).unwrap(), cursor);
        // Before 1970 too.
        let old = Cursor {
            occurred_at: utc("1969-07-20T20:17:40Z"),
            id: Uuid::nil(),
        };
        assert_eq!(parse_cursor(&old.encode()).unwrap(), old);
    }

    #[test]
    fn garbage_cursors_are_rejected() {
        let valid = Cursor {
            occurred_at: utc("2026-01-01T00:00:00Z"),
            id: Uuid::new_v4(),
        }
        .encode();
        for garbage in [
            "",
            "not a cursor",
            "!!!!",
            &valid[..valid.len() - 2],
            &format!("{valid}AA"),
            &format!("{valid}="),
            &URL_SAFE_NO_PAD.encode([0u8; 23]),
            // Microseconds beyond what chrono represents, or PostgreSQL stores.
            &URL_SAFE_NO_PAD.encode([[0x7f; 8].as_slice(), &[0; 16]].concat()),
            &URL_SAFE_NO_PAD.encode([[0x80; 8].as_slice(), &[0; 16]].concat()),
            &Cursor {
                occurred_at: NaiveDate::from_ymd_opt(20000, 1, 1)
                    .unwrap()
                    .and_time(NaiveTime::MIN)
                    .and_utc(),
                id: Uuid::nil(),
            }
            .encode(),
        ] {
            let err = parse_cursor(garbage).unwrap_err();
            assert_eq!(err.code(), "invalid_cursor", "{garbage:?}");
            assert_eq!(err.status().as_u16(), 422);
        }
    }

    #[test]
    fn a_cursor_never_reaches_past_to() {
        let now = utc("2026-03-10T00:00:00Z");
        let to = utc("2026-03-05T00:00:00Z");
        let later = Cursor {
            occurred_at: utc("2026-03-09T00:00:00Z"),
            id: Uuid::max(),
        }
        .encode();
        let window = event_window(None, Some(to), Some(&later), None, now).unwrap();
        assert_eq!(window.below.occurred_at, to);
        assert_eq!(window.below.id, Uuid::nil());
        assert_eq!((window.limit, window.fetch()), (50, 51));
        let window = event_window(None, None, None, Some(100), now).unwrap();
        assert_eq!(window.to, now);
        for limit in [0, 101] {
            let err = event_window(None, None, None, Some(limit), now).unwrap_err();
            assert_eq!(err.status().as_u16(), 422);
        }
    }

    #[test]
    fn days_follow_local_midnights_across_dst() {
        let tz = new_york();
        let plan = BucketPlan::new(
            tz,
            Interval::Day,
            utc("2026-03-07T05:00:00Z"),
            utc("2026-03-10T04:00:00Z"),
        );
        assert_eq!(plan.labels, ["2026-03-07", "2026-03-08", "2026-03-09"]);
        let lengths: Vec<i64> = plan
            .bounds
            .windows(2)
            .map(|w| (w[1] - w[0]).num_hours())
            .collect();
        assert_eq!(lengths, [24, 23, 24]);
        assert_eq!(plan.bounds[1], utc("2026-03-08T05:00:00Z"));
        assert_eq!(plan.bounds[2], utc("2026-03-09T04:00:00Z"));

        let plan = BucketPlan::new(
            tz,
            Interval::Day,
            utc("2026-11-01T04:00:00Z"),
            utc("2026-11-02T05:00:00Z"),
        );
        assert_eq!(plan.labels, ["2026-11-01"]);
        assert_eq!((plan.end() - plan.start()).num_hours(), 25);
    }

    #[test]
    fn hours_across_dst_are_labelled_with_their_offset() {
        let tz = new_york();
        let plan = BucketPlan::new(
            tz,
            Interval::Hour,
            utc("2026-03-08T05:00:00Z"),
            utc("2026-03-09T04:00:00Z"),
        );
        assert_eq!(plan.len(), 23);
        assert_eq!(plan.labels[0], "2026-03-08T00:00:00-05:00");
        assert_eq!(plan.labels[1], "2026-03-08T01:00:00-05:00");
        assert_eq!(plan.labels[2], "2026-03-08T03:00:00-04:00");
        assert_eq!(plan.labels[22], "2026-03-08T23:00:00-04:00");

        let plan = BucketPlan::new(
            tz,
            Interval::Hour,
            utc("2026-11-01T04:00:00Z"),
            utc("2026-11-02T05:00:00Z"),
        );
        assert_eq!(plan.len(), 25);
        assert_eq!(plan.labels[1], "2026-11-01T01:00:00-04:00");
        assert_eq!(plan.labels[2], "2026-11-01T01:00:00-05:00");
        assert_eq!(plan.labels[24], "2026-11-01T23:00:00-05:00");
    }

    #[test]
    fn buckets_widen_to_whole_buckets() {
        let plan = BucketPlan::new(
            Tz::UTC,
            Interval::Day,
            utc("2026-01-01T10:00:00Z"),
            utc("2026-01-03T00:00:01Z"),
        );
        assert_eq!(plan.labels, ["2026-01-01", "2026-01-02", "2026-01-03"]);
        assert_eq!(plan.start(), utc("2026-01-01T00:00:00Z"));
        assert_eq!(plan.end(), utc("2026-01-04T00:00:00Z"));
        // An exclusive end on a boundary adds no bucket.
        let plan = BucketPlan::new(
            Tz::UTC,
            Interval::Hour,
            utc("2026-01-01T10:30:00Z"),
            utc("2026-01-01T12:00:00Z"),
        );
        assert_eq!(
            plan.labels,
            ["2026-01-01T10:00:00+00:00", "2026-01-01T11:00:00+00:00"]
        );
        assert_eq!(bucket_index(0, plan.len()), None);
        assert_eq!(bucket_index(1, plan.len()), Some(0));
        assert_eq!(bucket_index(2, plan.len()), Some(1));
        assert_eq!(bucket_index(3, plan.len()), None);
    }

    #[test]
    fn a_missing_midnight_starts_the_day_at_the_first_local_time() {
        // Chile moved its clocks from 00:00 to 01:00 on 2022-09-11.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let start = day_start(tz, NaiveDate::from_ymd_opt(2022, 9, 11).unwrap());
        assert_eq!(start, utc("2022-09-11T04:00:00Z"));
        assert_eq!(
            start.with_timezone(&tz).to_rfc3339(),
            "2022-09-11T01:00:00-03:00"
        );
    }

    #[test]
    fn default_series_cover_thirty_buckets() {
        let now = utc("2026-03-20T15:42:00Z");
        let tz = new_york();
        let (from, to) = series_range(tz, Interval::Day, None, None, now).unwrap();
        let plan = BucketPlan::new(tz, Interval::Day, from, to);
        assert_eq!(plan.len(), 30);
        assert_eq!(plan.labels.first().unwrap(), "2026-02-19");
        assert_eq!(plan.labels.last().unwrap(), "2026-03-20");

        let (from, to) = series_range(tz, Interval::Hour, None, None, now).unwrap();
        let plan = BucketPlan::new(tz, Interval::Hour, from, to);
        assert_eq!(plan.len(), 720);
        assert_eq!(plan.labels.last().unwrap(), "2026-03-20T11:00:00-04:00");
    }

    #[test]
    fn series_ranges_are_bounded() {
        let now = utc("2026-06-01T00:00:00Z");
        let to = utc("2026-05-01T00:00:00Z");
        let ok = |interval, days: i64| {
            series_range(
                Tz::UTC,
                interval,
                Some(to - TimeDelta::days(days)),
                Some(to),
                now,
            )
        };
        assert!(ok(Interval::Day, 400).is_ok());
        assert!(ok(Interval::Hour, 31).is_ok());
        for (interval, days) in [(Interval::Day, 401), (Interval::Hour, 32)] {
            let err = ok(interval, days).unwrap_err();
            assert_eq!((err.status().as_u16(), err.code()), (422, "invalid_range"));
        }
        // Backwards, empty, or a default `to` before an explicit `from`.
        for (from, to) in [
            (Some(to), Some(to)),
            (Some(to), Some(to - TimeDelta::hours(1))),
            (Some(now + TimeDelta::days(1)), None),
        ] {
            let err = series_range(Tz::UTC, Interval::Day, from, to, now).unwrap_err();
            assert_eq!(err.code(), "invalid_range");
        }
        // A year of New York days is a year of days, whatever DST did to its hours.
        let ny = new_york();
        let from = utc("2026-03-01T05:00:00Z");
        let to = utc("2027-04-05T04:00:00Z");
        let (from, to) = series_range(ny, Interval::Day, Some(from), Some(to), now).unwrap();
        assert_eq!(BucketPlan::new(ny, Interval::Day, from, to).len(), 400);
    }

    #[test]
    fn hour_ranges_default_to_thirty_days_in_whole_hours() {
        let now = utc("2026-03-20T15:42:10Z");
        let range = hour_range(None, None, now).unwrap();
        assert_eq!(range.start, utc("2026-02-18T15:00:00Z"));
        assert_eq!(range.end, now);
        let from = utc("2026-03-01T10:59:59Z");
        let range = hour_range(Some(from), Some(now), now).unwrap();
        assert_eq!(range.start, utc("2026-03-01T10:00:00Z"));
        let err = hour_range(Some(now), Some(from), now).unwrap_err();
        assert_eq!(err.code(), "invalid_range");
    }

    fn tiers(from: &str, to: &str) -> Tiers {
        hour_range(Some(utc(from)), Some(utc(to)), utc(to))
            .unwrap()
            .tiers()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn whole_utc_days_come_from_the_daily_tier() {
        let t = tiers("2026-03-01T10:20:00Z", "2026-03-05T07:30:00Z");
        assert_eq!(
            t,
            Tiers {
                head: (utc("2026-03-01T10:00:00Z"), utc("2026-03-02T00:00:00Z")),
                days: (date("2026-03-02"), date("2026-03-05")),
                // The hour starting at 07:00 is before `to`, so it counts.
                tail: (utc("2026-03-05T00:00:00Z"), utc("2026-03-05T07:30:00Z")),
            }
        );
        // Midnight to midnight: days only.
        let t = tiers("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z");
        assert_eq!(t.days, (date("2026-03-01"), date("2026-03-03")));
        assert_eq!(t.head.0, t.head.1);
        assert_eq!(t.tail.0, t.tail.1);
    }

    #[test]
    fn ranges_without_a_whole_day_read_hours_only() {
        for (from, to) in [
            ("2026-03-01T10:00:00Z", "2026-03-01T18:00:00Z"),
            ("2026-03-01T10:00:00Z", "2026-03-02T09:00:00Z"),
            ("2026-03-01T00:00:00Z", "2026-03-01T23:59:59Z"),
        ] {
            let t = tiers(from, to);
            assert_eq!(t.head, (floor_hour(utc(from)), utc(to)), "{from}..{to}");
            assert!(t.days.0 >= t.days.1, "{from}..{to}: no day");
            assert_eq!(t.tail.0, t.tail.1, "{from}..{to}: no tail");
        }
    }

    #[test]
    fn tiers_cover_the_range_once() {
        // Every hour of the range falls in exactly one tier, whatever the edges.
        let start = utc("2026-03-01T00:00:00Z");
        for from_h in [0, 1, 23, 24, 25, 47] {
            for to_h in [1, 2, 23, 24, 25, 48, 49, 95, 96, 120] {
                if to_h <= from_h {
                    continue;
                }
                let from = start + TimeDelta::hours(from_h);
                let to = start + TimeDelta::hours(to_h)
                    - TimeDelta::minutes(if to_h % 2 == 0 { 0 } else { 30 });
                let t = hour_range(Some(from), Some(to), to).unwrap().tiers();
                let mut hour = floor_hour(from);
                while hour < to {
                    let in_head = hour >= t.head.0 && hour < t.head.1;
                    let in_tail = hour >= t.tail.0 && hour < t.tail.1;
                    let day = hour.date_naive();
                    let in_days = day >= t.days.0 && day < t.days.1;
                    assert_eq!(
                        [in_head, in_days, in_tail].iter().filter(|x| **x).count(),
                        1,
                        "{from}..{to}: {hour}"
                    );
                    hour += TimeDelta::hours(1);
                }
                // And nothing outside it.
                assert!(t.head.0 >= floor_hour(from) && t.tail.1 <= to);
                assert!(
                    t.days.0 >= t.days.1
                        || (t.days.0 >= from.date_naive() && t.days.1 <= to.date_naive())
                );
            }
        }
    }

    #[test]
    fn time_zones_are_validated() {
        assert_eq!(parse_tz(None).unwrap(), Tz::UTC);
        assert_eq!(
            parse_tz(Some("Europe/Berlin")).unwrap().name(),
            "Europe/Berlin"
        );
        for bad in ["Mars/Olympus", "", "europe/berlin", "+02:00"] {
            let err = parse_tz(Some(bad)).unwrap_err();
            assert_eq!(
                (err.status().as_u16(), err.code()),
                (422, "invalid_time_zone"),
                "{bad:?}"
            );
        }
    }
}
