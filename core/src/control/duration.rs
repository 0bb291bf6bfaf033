//! Go's `time.Duration` as the control service prints it: `String()` for `TimeStr`, integer
//! nanoseconds for `Time`.

use std::time::Duration;

/// Nanoseconds as Go's `time.Duration` (an `int64`) holds them; longer durations saturate.
pub fn go_duration_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Formats `d` exactly as Go's `time.Duration.String()`: `0s`, `123ns`, `850µs` (U+00B5),
/// `1.234567ms`, `1.5s`, `2m3.4s`, `1h0m0s`. Durations beyond Go's range saturate at
/// `2562047h47m16.854775807s`.
pub fn go_duration_string(d: Duration) -> String {
    let u = go_duration_nanos(d).unsigned_abs();
    if u < 1_000_000_000 {
        // Below a second Go picks the largest unit that keeps an integer part: ns, µs or ms.
        let (prec, unit) = match u {
            0 => return "0s".to_owned(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (whole, frac) = split_frac(u, prec);
        return format!("{whole}{frac}{unit}");
    }
    let (secs, frac) = split_frac(u, 9);
    let mut s = format!("{}{frac}s", secs % 60);
    let mins = secs / 60;
    if mins > 0 {
        s = format!("{}m{s}", mins % 60);
        let hours = mins / 60;
        if hours > 0 {
            s = format!("{hours}h{s}");
        }
    }
    s
}

/// Splits `v` into `v / 10^prec` and the fraction `.ddd` with trailing zeros removed (empty when
/// the fraction is zero), as Go's `fmtFrac`.
fn split_frac(v: u64, prec: u32) -> (u64, String) {
    let scale = 10u64.pow(prec);
    let frac = v % scale;
    if frac == 0 {
        return (v / scale, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / scale, format!(".{}", digits.trim_end_matches('0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: u64) -> String {
        go_duration_string(Duration::from_nanos(n))
    }

    #[test]
    fn matches_go_duration_string() {
        // Expected values are Go's `time.Duration(n).String()`.
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (123, "123ns"),
            (999, "999ns"),
            (1_000, "1µs"),
            (1_500, "1.5µs"),
            (850_000, "850µs"),
            (999_999, "999.999µs"),
            (1_000_000, "1ms"),
            (1_000_001, "1.000001ms"),
            (1_234_567, "1.234567ms"),
            (12_500_000, "12.5ms"),
            (999_999_999, "999.999999ms"),
            (1_000_000_000, "1s"),
            (1_000_000_001, "1.000000001s"),
            (1_200_000_000, "1.2s"),
            (1_500_000_000, "1.5s"),
            (59_999_000_000, "59.999s"),
            (60_000_000_000, "1m0s"),
            (90_500_000_000, "1m30.5s"),
            (123_400_000_000, "2m3.4s"),
            (3_599_000_000_000, "59m59s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_661_000_000_000, "1h1m1s"),
            (90_000_000_000_000, "25h0m0s"),
            (i64::MAX as u64, "2562047h47m16.854775807s"),
        ];
        for &(n, want) in cases {
            assert_eq!(ns(n), want, "{n}ns");
        }
        assert_eq!(ns(850_000).as_bytes(), b"850\xc2\xb5s");
    }

    #[test]
    fn saturates_beyond_go_range() {
        let huge = Duration::from_secs(u64::MAX);
        assert_eq!(go_duration_nanos(huge), i64::MAX);
        assert_eq!(go_duration_string(huge), "2562047h47m16.854775807s");
        assert_eq!(go_duration_nanos(Duration::from_micros(210)), 210_000);
    }
}
