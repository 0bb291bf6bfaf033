//! RFC 3339 timestamps as Go's `time.Time` writes and reads them in JSON.

use std::fmt::Write as _;

/// Nanoseconds since the Unix epoch, the unit of advertisement times.
pub type UnixNanos = i128;

/// Formats UTC time as Go's `time.RFC3339Nano`: fraction trimmed of trailing zeros, `Z` zone.
pub fn format_rfc3339_nano(t: UnixNanos) -> String {
    format_rfc3339_nano_in(t, 0)
}

/// Formats time as Go's `time.RFC3339Nano` in a zone `offset_secs` east of UTC (`Z` for 0).
pub fn format_rfc3339_nano_in(t: UnixNanos, offset_secs: i32) -> String {
    let t = t + i128::from(offset_secs) * 1_000_000_000;
    let secs = t.div_euclid(1_000_000_000);
    let nanos = t.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days as i64);
    let mut s = String::with_capacity(35);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    if offset_secs == 0 {
        s.push('Z');
    } else {
        let sign = if offset_secs < 0 { '-' } else { '+' };
        let o = offset_secs.unsigned_abs();
        let _ = write!(s, "{sign}{:02}:{:02}", o / 3600, o / 60 % 60);
    }
    s
}

/// Parses an RFC 3339 time with optional fraction and a `Z` or `±hh:mm` zone, strictly as
/// Go's `time.Time.UnmarshalJSON` does. Returns `None` when Go would refuse it.
pub fn parse_rfc3339(s: &str) -> Option<UnixNanos> {
    parse_rfc3339_zoned(s).map(|(t, _)| t)
}

/// Like [`parse_rfc3339`], also returning the zone's offset east of UTC in seconds.
pub fn parse_rfc3339_zoned(s: &str) -> Option<(UnixNanos, i32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if b.get(10) != Some(&b'T') || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        // Go keeps nanosecond precision and ignores further digits.
        for (k, &c) in b.get(start..end)?.iter().enumerate() {
            if k < 9 {
                nanos = nanos * 10 + i64::from(c - b'0');
            }
        }
        for _ in (end - start)..9 {
            nanos *= 10;
        }
        i = end;
    }
    let offset_secs: i64 = match b.get(i..)? {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some((
        i128::from(secs) * 1_000_000_000 + i128::from(nanos),
        offset_secs as i32,
    ))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil calendar algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_zones() {
        let t = parse_rfc3339("2024-10-02T11:41:49.1234567Z").unwrap();
        assert_eq!(format_rfc3339_nano(t), "2024-10-02T11:41:49.1234567Z");
        let (z, off) = parse_rfc3339_zoned("2024-10-02T07:41:49.1234567-04:00").unwrap();
        assert_eq!(t, z);
        assert_eq!(off, -4 * 3600);
        assert_eq!(
            format_rfc3339_nano_in(z, off),
            "2024-10-02T07:41:49.1234567-04:00"
        );
        assert_eq!(format_rfc3339_nano(0), "1970-01-01T00:00:00Z");
        let t = parse_rfc3339("2026-11-21T23:18:44.209639193Z").unwrap();
        assert_eq!(format_rfc3339_nano(t), "2026-11-21T23:18:44.209639193Z");
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z").unwrap() % 1_000_000_000,
            0
        );
    }

    #[test]
    fn strictness() {
        for bad in [
            "2024-10-02t11:41:49Z",
            "2024-10-02T11:41:49",
            "24-10-02T11:41:49Z",
            "2023-02-29T00:00:00Z",
            "2024-10-02T11:41:49.Z",
            "2024-10-02T24:00:00Z",
            "",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }
}
