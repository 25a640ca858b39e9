//! The one duration syntax of the whole command line and of the agent's configuration
//! (`demo --duration`, `broker serve --url-expiry`, `[upload] backoff_initial`, ...):
//! `250ms`, `60s`, `15min` (or `15m`), `2h`, sums like `1h30m`, or a bare number of
//! seconds. Negative, fractional and overflowing values are refused with a message
//! naming the text, never rounded or saturated.

use std::time::Duration;

/// Parses `250ms`, `60s`, `15min`, `5m`, `2h`, `1h30m`, or plain seconds (`45`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = |why: &str| {
        format!("duration {text:?}: {why}; use e.g. 250ms, 60s, 15min, 2h, 1h30m or plain seconds")
    };
    if t.is_empty() {
        return Err(bad("empty"));
    }
    if t.starts_with('-') {
        return Err(bad("negative durations are not allowed"));
    }
    let too_large = || format!("duration {text:?} is too large");
    let mut rest = t;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("a number must come before each unit"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| too_large())?;
        rest = &rest[digits..];
        if rest.starts_with(['.', ',']) {
            return Err(bad("only whole numbers (write 1500ms, not 1.5s)"));
        }
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let unit = &rest[..unit_len];
        // A bare number is seconds, but only on its own: `1h30` is ambiguous.
        if unit.is_empty() && digits != t.len() {
            return Err(bad("a unit is missing"));
        }
        let part = match unit {
            "" | "s" => Some(Duration::from_secs(n)),
            "ms" => Some(Duration::from_millis(n)),
            "m" | "min" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            other => return Err(bad(&format!("unknown unit {other:?}"))),
        }
        .ok_or_else(too_large)?;
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A duration as the shortest text [`parse_duration`] reads back as the same value
/// (`6h`, `1h30m`, `90s`, `1500ms`).
pub fn format_duration(d: Duration) -> String {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{d:?}");
    }
    if d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 || out.is_empty() {
        out += &format!("{s}s");
    }
    if out.ends_with('m') && !out.contains('h') {
        out += "in";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_sums() {
        for (text, want) in [
            ("250ms", Duration::from_millis(250)),
            ("1500ms", Duration::from_millis(1500)),
            ("60s", Duration::from_secs(60)),
            ("15min", Duration::from_secs(900)),
            ("5m", Duration::from_secs(300)),
            ("2h", Duration::from_secs(7200)),
            ("1h30m", Duration::from_secs(5400)),
            ("1s500ms", Duration::from_millis(1500)),
            ("45", Duration::from_secs(45)),
            (" 6h ", Duration::from_secs(21600)),
            ("0", Duration::ZERO),
            ("18446744073709551615", Duration::from_secs(u64::MAX)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refusals_name_the_problem() {
        for (text, why) in [
            ("", "empty"),
            ("-5s", "negative"),
            ("-1", "negative"),
            ("1.5s", "whole numbers"),
            ("5 parsecs", "unknown unit"),
            ("soon", "a number must come"),
            ("1h30", "unit is missing"),
            ("18446744073709551616", "too large"),
            ("18446744073709551615h", "too large"),
            ("18446744073709551615s1s", "too large"),
            ("99999999999999999999ms", "too large"),
        ] {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(why) && err.contains(text), "{text}: {err}");
        }
    }

    #[test]
    fn formatting_reads_back() {
        for d in [
            Duration::from_secs(21600),
            Duration::from_secs(5400),
            Duration::from_secs(90 * 60),
            Duration::from_secs(30),
            Duration::from_millis(1500),
            Duration::from_secs(3661),
            Duration::ZERO,
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(21600)), "6h");
        assert_eq!(format_duration(Duration::from_secs(1800)), "30min");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
