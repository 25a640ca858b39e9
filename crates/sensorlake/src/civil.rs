//! UTC calendar arithmetic without a date library: day numbers ↔ proleptic Gregorian
//! dates (Howard Hinnant's `days_from_civil` / `civil_from_days`), RFC 3339 parsing
//! and formatting, for the one accepted timestamp range
//! ([`TS_RANGE`]: 0..=[`MAX_TS_US`] µs since the Unix epoch).
//!
//! Linked on the device (object keys are rendered there), so it uses no `jiff`.

use crate::batch::{MAX_TS_US, TS_RANGE};

/// Microseconds in one day.
pub const DAY_US: i64 = 86_400_000_000;

/// The proleptic Gregorian date (year, month 1-12, day 1-31) of day `days` since
/// 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u8, day as u8)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12; the day is not
/// checked, see [`days_in_month`]).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year - era * 400; // [0, 399]
    let mp = (i64::from(month) + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days in `month` (1-12) of `year`.
pub fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// UTC calendar fields of an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1-12.
    pub month: u8,
    /// Day of the month, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-59.
    pub second: u8,
    /// Microseconds within the second.
    pub micros: u32,
}

impl Utc {
    /// The calendar fields of `ts_us` µs since the epoch (any instant; callers check
    /// the accepted range where it matters).
    pub fn of(ts_us: i64) -> Self {
        let (year, month, day) = civil_from_days(ts_us.div_euclid(DAY_US));
        let in_day = ts_us.rem_euclid(DAY_US);
        let secs = in_day / 1_000_000;
        Self {
            year,
            month,
            day,
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
            micros: (in_day % 1_000_000) as u32,
        }
    }
}

/// `ts_us` as RFC 3339 UTC (`2024-03-01T08:00:00.1Z`: the fraction only as long as
/// needed).
pub fn format_rfc3339(ts_us: i64) -> String {
    let t = Utc::of(ts_us);
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    );
    if t.micros != 0 {
        let fraction = format!("{:06}", t.micros);
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// Whether `ts_us` lies in the accepted range.
pub fn in_range(ts_us: i64) -> bool {
    (0..=MAX_TS_US).contains(&ts_us)
}

/// The message for a timestamp outside the accepted range.
pub fn out_of_range(what: &str) -> String {
    format!("timestamp {what} is outside {TS_RANGE}")
}

fn digits(bytes: &[u8], at: usize, n: usize) -> Option<i64> {
    let part = bytes.get(at..at + n)?;
    part.iter().all(u8::is_ascii_digit).then(|| {
        part.iter()
            .fold(0, |acc, &b| acc * 10 + i64::from(b - b'0'))
    })
}

/// Parses an RFC 3339 timestamp (`2024-03-01T08:00:00.1Z`, `… 08:00:00+01:00`; `t` or
/// a space for `T`, `z` for `Z`; seconds and fraction optional, at most 9 fraction
/// digits, none of them below the microsecond nonzero) into µs since the epoch. The
/// instant must lie in [`TS_RANGE`]. Refused: offsets beyond ±23:59, the leap second
/// `:60` (never read as `:59`), dates that do not exist.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let b = text.as_bytes();
    let bad = || {
        format!(
            "timestamp {} is neither RFC 3339 (e.g. 2024-03-01T08:00:00.1Z) nor integer microseconds",
            crate::schema::shown(text)
        )
    };
    let year = digits(b, 0, 4).ok_or_else(bad)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let month = digits(b, 5, 2).ok_or_else(bad)?;
    let day = digits(b, 8, 2).ok_or_else(bad)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return Err(bad());
    }
    let hour = digits(b, 11, 2).ok_or_else(bad)?;
    let minute = digits(b, 14, 2).ok_or_else(bad)?;
    let mut at = 16;
    let mut second = 0;
    let mut micros = 0;
    if b.get(at) == Some(&b':') {
        second = digits(b, at + 1, 2).ok_or_else(bad)?;
        at += 3;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            let fraction = &text[start..at];
            if fraction.is_empty() || fraction.len() > 9 {
                return Err(bad());
            }
            if fraction.len() > 6 && fraction[6..].bytes().any(|c| c != b'0') {
                return Err(format!(
                    "timestamp {} is finer than a microsecond (it would be cut)",
                    crate::schema::shown(text)
                ));
            }
            let kept = &fraction[..fraction.len().min(6)];
            micros = digits(kept.as_bytes(), 0, kept.len()).ok_or_else(bad)?
                * 10_i64.pow(6 - kept.len() as u32);
        }
    }
    let offset_secs = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &b[at + 1..];
            let (oh, om) = match rest.len() {
                2 => (digits(rest, 0, 2), Some(0)),
                4 => (digits(rest, 0, 2), digits(rest, 2, 2)),
                5 if rest[2] == b':' => (digits(rest, 0, 2), digits(rest, 3, 2)),
                _ => (None, None),
            };
            let (Some(oh), Some(om)) = (oh, om) else {
                return Err(bad());
            };
            if oh > 23 || om > 59 {
                return Err(format!(
                    "timestamp {}: offset {} is not a UTC offset (at most ±23:59)",
                    crate::schema::shown(text),
                    String::from_utf8_lossy(&b[at..])
                ));
            }
            let secs = oh * 3600 + om * 60;
            if sign == b'-' { -secs } else { secs }
        }
        _ => return Err(bad()),
    };
    if second == 60 {
        return Err(format!(
            "timestamp {}: second 60 (a leap second) is not supported",
            crate::schema::shown(text)
        ));
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > i64::from(days_in_month(year, month as u8))
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(format!(
            "timestamp {} is not a date and time that exists",
            crate::schema::shown(text)
        ));
    }
    let days = days_from_civil(year, month as u8, day as u8);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let us = secs * 1_000_000 + micros;
    if !in_range(us) {
        return Err(out_of_range(&crate::schema::shown(text)));
    }
    Ok(us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "host")] // jiff, the reference, is a host dependency
    #[test]
    fn day_numbers_agree_with_jiff_across_the_whole_range() {
        let epoch = jiff::civil::date(1970, 1, 1);
        let last = days_from_civil(9999, 12, 31);
        assert_eq!(last, 2_932_896);
        // Every day of the first and last 1000 years, every 7th day in between (all
        // leap days of the ends included), and both ends.
        let days = (0..366_000)
            .chain((366_000..last - 366_000).step_by(7))
            .chain(last - 366_000..=last);
        for d in days {
            let j = epoch.checked_add(jiff::Span::new().days(d)).unwrap();
            let (y, m, day) = civil_from_days(d);
            assert_eq!(
                (y, m, day),
                (i64::from(j.year()), j.month() as u8, j.day() as u8),
                "day {d}"
            );
            assert_eq!(days_from_civil(y, m, day), d);
            assert!(day <= days_in_month(y, m));
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(last), (9999, 12, 31));
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
    }

    #[cfg(feature = "host")] // jiff, the reference, is a host dependency
    #[test]
    fn instants_agree_with_jiff() {
        let mut ts: i64 = 0;
        let jiff_max = jiff::Timestamp::MAX.as_microsecond();
        while ts <= jiff_max {
            let t = Utc::of(ts);
            let j = jiff::Timestamp::from_microsecond(ts)
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .datetime();
            assert_eq!(
                (t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros),
                (
                    i64::from(j.year()),
                    j.month() as u8,
                    j.day() as u8,
                    j.hour() as u8,
                    j.minute() as u8,
                    j.second() as u8,
                    (j.subsec_nanosecond() / 1000) as u32
                ),
                "{ts}"
            );
            assert_eq!(parse_rfc3339(&format_rfc3339(ts)), Ok(ts));
            assert_eq!(
                format_rfc3339(ts),
                jiff::Timestamp::from_microsecond(ts).unwrap().to_string()
            );
            ts += 7_777_777_777_777; // ~90 days and an odd remainder
        }
        // Beyond jiff's range: the last day of 9999.
        let end = Utc::of(MAX_TS_US);
        assert_eq!(
            (
                end.year, end.month, end.day, end.hour, end.minute, end.second
            ),
            (9999, 12, 31, 23, 59, 59)
        );
        assert_eq!(end.micros, 999_999);
        assert_eq!(format_rfc3339(MAX_TS_US), "9999-12-31T23:59:59.999999Z");
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn rfc3339_accepts_the_whole_range_and_nothing_else() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59.999999Z"), Ok(MAX_TS_US));
        assert_eq!(
            parse_rfc3339("9999-12-31T22:59:59.999999-01:00"),
            Ok(MAX_TS_US)
        );
        assert_eq!(
            parse_rfc3339("2024-03-01T09:00:00.1+01:00"),
            Ok(1_709_280_000_100_000)
        );
        assert_eq!(
            parse_rfc3339("2024-03-01 08:00:00.100000000z"),
            Ok(1_709_280_000_100_000)
        );
        assert_eq!(
            parse_rfc3339("2024-03-01T08:00Z"),
            Ok(1_709_280_000_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00+0000"),
            Ok(days_from_civil(2024, 2, 29) * DAY_US)
        );
        let err = |t: &str| parse_rfc3339(t).unwrap_err();
        assert!(err("1969-12-31T23:59:59.999999Z").contains("outside"));
        assert!(err("1970-01-01T00:30:00+01:00").contains("outside"));
        assert!(err("9999-12-31T23:59:59-00:01").contains("outside"));
        assert!(err("2024-03-01T08:00:00+24:00").contains("offset +24:00"));
        assert!(err("2024-03-01T08:00:00-23:60").contains("offset"));
        assert!(err("2016-12-31T23:59:60Z").contains("leap second"));
        assert!(err("2023-02-29T00:00:00Z").contains("exists"));
        assert!(err("2024-13-01T00:00:00Z").contains("exists"));
        assert!(err("2024-03-01T24:00:00Z").contains("exists"));
        assert!(err("2024-03-01T08:00:00.0000001Z").contains("finer"));
        for bad in [
            "",
            "-",
            "2024-03-01",
            "2024-03-01T08:00:00",
            "2024-03-01T08:00:00ZZ",
            "2024-03-01T08:00:00.Z",
            "2024-03-01T08:00:00.1234567890Z",
            "+2024-03-01T08:00:00Z",
            "2024-3-01T08:00:00Z",
        ] {
            assert!(err(bad).contains("neither RFC 3339"), "{bad}: {}", err(bad));
        }
    }
}
