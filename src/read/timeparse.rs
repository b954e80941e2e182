//! Times on the wire: RFC 3339 strings and epoch milliseconds in, RFC 3339
//! with milliseconds out, and the relative forms (`now`, `now-15m`) that
//! query ranges accept.
//!
//! Hand-written rather than through `time`'s generic parser because event
//! timestamps are parsed once per ingested event and rendered once per
//! returned event: this path must not allocate. Only the proleptic Gregorian
//! calendar in years 0000-9999 is accepted, which is all RFC 3339 allows.

use pulsestream_storage::Micros;

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Why a time did not parse. The message is shown to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("must be an RFC 3339 time (2026-11-25T10:00:00.123Z) or epoch milliseconds")]
    Malformed,
    #[error("is out of the supported range")]
    OutOfRange,
    #[error("must be an RFC 3339 time, epoch milliseconds, `now` or `now-<n>(s|m|h|d)`")]
    BadRelative,
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of a day number (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Parses an RFC 3339 date-time (`T` or space separator, `Z` or `±HH:MM`,
/// any number of fraction digits, truncated to microseconds).
pub fn parse_rfc3339(s: &str) -> Result<Micros, TimeError> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(TimeError::Malformed);
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(TimeError::Malformed);
    }
    let field = |r: std::ops::Range<usize>| digits(&b[r]).ok_or(TimeError::Malformed);
    let (y, mo, d) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (h, mi, sec) = (field(11..13)?, field(14..16)?, field(17..19)?);
    // A leap second (60) is accepted and folded into the next second's start.
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60
    {
        return Err(TimeError::Malformed);
    }
    let mut i = 19;
    let mut frac_us = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100_000i64;
        while i < b.len() && b[i].is_ascii_digit() {
            frac_us += i64::from(b[i] - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return Err(TimeError::Malformed);
        }
    }
    let offset_secs = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
            let oh = digits(&[*oh1, *oh2]).ok_or(TimeError::Malformed)?;
            let om = digits(&[*om1, *om2]).ok_or(TimeError::Malformed)?;
            if oh > 23 || om > 59 {
                return Err(TimeError::Malformed);
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return Err(TimeError::Malformed),
    };
    let secs = days_from_civil(y, mo, d) * SECS_PER_DAY + h * 3600 + mi * 60 + sec - offset_secs;
    Ok(Micros(secs * MICROS_PER_SEC + frac_us))
}

/// Earliest and latest epoch milliseconds accepted (years 0000-9999), so the
/// conversion to micros cannot overflow and every time renders as RFC 3339.
const MIN_EPOCH_MS: i64 = -62_167_219_200_000;
const MAX_EPOCH_MS: i64 = 253_402_300_799_999;

/// Epoch milliseconds to micros, refusing values outside years 0000-9999.
pub fn from_epoch_millis(ms: i64) -> Result<Micros, TimeError> {
    if (MIN_EPOCH_MS..=MAX_EPOCH_MS).contains(&ms) {
        Ok(Micros::from_millis(ms))
    } else {
        Err(TimeError::OutOfRange)
    }
}

/// Appends `t` as RFC 3339 UTC with milliseconds (`2026-11-25T10:00:00.123Z`).
pub fn write_rfc3339_millis(out: &mut String, t: Micros) {
    let secs = t.0.div_euclid(MICROS_PER_SEC);
    let ms = t.0.rem_euclid(MICROS_PER_SEC) / 1000;
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s) = (sod / 3600, (sod / 60) % 60, sod % 60);
    // Years outside 0000-9999 cannot be written as RFC 3339; clamp the
    // rendering rather than produce an unparsable string.
    let y = y.clamp(0, 9999);
    use std::fmt::Write;
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
}

/// `t` as an RFC 3339 string with milliseconds.
pub fn format_rfc3339_millis(t: Micros) -> String {
    let mut s = String::with_capacity(24);
    write_rfc3339_millis(&mut s, t);
    s
}

/// Parses a duration like `30s`, `5m`, `1h`, `7d` into micros (> 0).
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let unit = match s.as_bytes().last()? {
        b's' => MICROS_PER_SEC,
        b'm' => 60 * MICROS_PER_SEC,
        b'h' => 3600 * MICROS_PER_SEC,
        b'd' => SECS_PER_DAY * MICROS_PER_SEC,
        _ => return None,
    };
    let n: i64 = s[..s.len() - 1].parse().ok()?;
    if n <= 0 {
        return None;
    }
    n.checked_mul(unit)
}

/// Parses a query range bound: RFC 3339, epoch milliseconds, `now`, or
/// `now-<duration>`, relative to `now`.
pub fn parse_range_bound(s: &str, now: Micros) -> Result<Micros, TimeError> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now);
        }
        let d = rest
            .strip_prefix('-')
            .and_then(parse_duration)
            .ok_or(TimeError::BadRelative)?;
        return Ok(Micros(now.0.saturating_sub(d)));
    }
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
        let ms: i64 = s.parse().map_err(|_| TimeError::Malformed)?;
        return from_epoch_millis(ms);
    }
    parse_rfc3339(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_forms() {
        let base = parse_rfc3339("2026-11-25T10:00:00Z").expect("plain");
        assert_eq!(base, Micros(1_795_600_800 * MICROS_PER_SEC));
        assert_eq!(
            parse_rfc3339("2026-11-25T10:00:00.123Z").expect("ms"),
            Micros(base.0 + 123_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-25T11:30:00.5+01:30").expect("offset"),
            Micros(base.0 + 500_000)
        );
        assert_eq!(
            parse_rfc3339("2026-11-25t10:00:00.1234567z").expect("long fraction"),
            Micros(base.0 + 123_456)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(Micros(0)));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999Z"), Ok(Micros(-1000)));
    }

    #[test]
    fn rejects_bad_times() {
        for bad in [
            "",
            "2026-11-25",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T10:00:00",
            "2026-11-25T10:00:00.Z",
            "2026-11-25T10:00:00+0100",
            "2026-11-25X10:00:00Z",
            "２026-11-25T10:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "2026-11-25T10:00:00.123Z",
            "1970-01-01T00:00:00.000Z",
            "1969-12-31T23:59:59.999Z",
            "2000-02-29T23:59:59.001Z",
            "0001-01-01T00:00:00.000Z",
        ] {
            let t = parse_rfc3339(s).expect(s);
            assert_eq!(format_rfc3339_millis(t), s);
        }
    }

    #[test]
    fn relative_bounds_and_millis() {
        let now = Micros(10 * 86_400 * MICROS_PER_SEC);
        assert_eq!(parse_range_bound("now", now), Ok(now));
        assert_eq!(
            parse_range_bound("now-15m", now),
            Ok(Micros(now.0 - 15 * 60 * MICROS_PER_SEC))
        );
        assert_eq!(
            parse_range_bound("now-7d", now),
            Ok(Micros(now.0 - 7 * 86_400 * MICROS_PER_SEC))
        );
        assert_eq!(
            parse_range_bound("now+1h", now),
            Err(TimeError::BadRelative)
        );
        assert_eq!(
            parse_range_bound("now-0m", now),
            Err(TimeError::BadRelative)
        );
        assert_eq!(
            parse_range_bound("1795600800000", now),
            Ok(Micros(1_795_600_800_000_000))
        );
        assert!(parse_range_bound("99999999999999999999", now).is_err());
        assert_eq!(parse_duration("30s"), Some(30 * MICROS_PER_SEC));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("99999999999999999d"), None);
    }
}
