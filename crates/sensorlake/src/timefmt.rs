//! The two date formats the device reads, by hand (no `jiff` on the device): HTTP
//! dates (`Date:` headers, for clock skew) and RFC 3339 times (credential
//! expirations), with the UTC calendar arithmetic they need.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Seconds since 1970 of a valid UTC date and time (None if a field is out of range
/// or the time is before 1970 or after 9999).
fn to_secs(year: i64, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> Option<i64> {
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && min < 60
        && sec < 60;
    valid.then(|| {
        days_from_civil(year, month, day) * 86_400
            + i64::from(hour) * 3600
            + i64::from(min) * 60
            + i64::from(sec)
    })
}

fn number(text: &str, digits: usize) -> Option<u32> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn time_of_day(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split(':');
    let h = number(parts.next()?, 2)?;
    let m = number(parts.next()?, 2)?;
    let s = number(parts.next()?, 2)?;
    parts.next().is_none().then_some((h, m, s))
}

fn from_secs(secs: i64) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Parses an HTTP date: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), also with the
/// weekday left out or the zone written `UT`, `UTC` or `+0000`.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let text = match text.split_once(',') {
        Some((weekday, rest)) if weekday.len() == 3 => rest,
        Some(_) => return None,
        None => text,
    };
    let mut f = text.split_ascii_whitespace();
    let day: u32 = f
        .next()
        .filter(|d| (1..=2).contains(&d.len()))?
        .parse()
        .ok()?;
    let month = match f.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = i64::from(number(f.next()?, 4)?);
    let (h, m, s) = time_of_day(f.next()?)?;
    if !matches!(f.next()?, "GMT" | "UT" | "UTC" | "+0000" | "-0000" | "Z") || f.next().is_some() {
        return None;
    }
    from_secs(to_secs(year, month, day, h, m, s)?)
}

/// Parses an RFC 3339 time (`2024-02-29T23:59:59Z`, `…T23:59:59.5+01:00`), rounding a
/// fraction of a second down.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if text.len() < 20 || !text.is_ascii() {
        return None;
    }
    let (date, rest) = text.split_at(10);
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let mut d = date.split('-');
    let year = i64::from(number(d.next()?, 4)?);
    let month = number(d.next()?, 2)?;
    let day = number(d.next()?, 2)?;
    let (h, m, s) = time_of_day(rest.get(..8)?)?;
    let mut zone = &rest[8..];
    if let Some(frac) = zone.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        zone = &frac[digits..];
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = zone[1..].split_once(':')?;
            let (oh, om) = (number(oh, 2)?, number(om, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * i64::from(oh * 3600 + om * 60)
        }
    };
    from_secs(to_secs(year, month, day, h, m, s)? - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            at(784_111_777)
        );
        assert_eq!(
            parse_http_date(" 06 Nov 1994 08:49:37 +0000 "),
            at(784_111_777)
        );
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"),
            at(1_709_251_199)
        );
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 +0100",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("2024-02-29T23:59:59Z"), at(1_709_251_199));
        assert_eq!(
            parse_rfc3339("2024-03-01T00:59:59.999+01:00"),
            at(1_709_251_199)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T18:59:59-05:00"),
            at(1_709_251_199)
        );
        for bad in [
            "2024-02-30T00:00:00Z",
            "2024-02-29T23:59:60Z",
            "2024-02-29 23:59:59",
            "2024-02-29T23:59:59.Z",
            "1969-12-31T23:59:59Z",
            "2024-02-29T23:59:59+24:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_match_the_signer_calendar() {
        for days in (0..2_932_896i64).step_by(997) {
            let (y, m, d, ..) = crate::sigv4::utc(days as u64 * 86_400);
            assert_eq!(days_from_civil(y as i64, m as u32, d as u32), days);
        }
    }
}
