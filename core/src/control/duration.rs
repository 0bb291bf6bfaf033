//! Go's `time.Duration`: printed as the control service prints it (`String()` for `TimeStr`,
//! integer nanoseconds for `Time`), and read as Go's `time.ParseDuration` reads it (a remote
//! unit's `ttl`, the configuration's durations).

use std::fmt::Write as _;
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

/// Why a text is not a Go duration. The texts are Go's `time.ParseDuration` errors, with the
/// text quoted as Go quotes it (non-ASCII and control bytes as `\xNN`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDurationError {
    /// Not `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or beyond Go's range (an `int64` of nanoseconds).
    #[error("time: invalid duration {}", go_quote(.0))]
    Invalid(String),
    /// A number without a unit after it.
    #[error("time: missing unit in duration {}", go_quote(.0))]
    MissingUnit(String),
    /// A unit other than `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m` and `h`.
    #[error("time: unknown unit {} in duration {}", go_quote(.unit), go_quote(.input))]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole text.
        input: String,
    },
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units `ns`, `us` (or `µs`,
/// `μs`), `ms`, `s`, `m`, `h`, such as `300ms`, `-1.5h` or `2h45m`; a bare `0` is zero. The
/// duration in nanoseconds, signed like Go's `time.Duration`; anything beyond an `i64` is
/// refused. Fractions are scaled as Go scales them (through a float64).
///
/// ```
/// use receptor_core::control::{ParseDurationError, parse_go_duration};
///
/// assert_eq!(parse_go_duration("1h2m3.5s"), Ok(3_723_500_000_000));
/// assert_eq!(parse_go_duration("-5s"), Ok(-5_000_000_000));
/// assert_eq!(
///     parse_go_duration("5").unwrap_err().to_string(),
///     r#"time: missing unit in duration "5""#
/// );
/// assert!(matches!(parse_go_duration("1x"), Err(ParseDurationError::UnknownUnit { .. })));
/// ```
pub fn parse_go_duration(s: &str) -> Result<i64, ParseDurationError> {
    let invalid = || ParseDurationError::Invalid(s.to_owned());
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or("")),
        Some(b'+') => (false, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    // Up to 2^63: the magnitude of i64::MIN.
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let (whole, after, has_int) = leading_int(rest).ok_or_else(invalid)?;
        rest = after;
        let mut frac = None;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (f, scale, after, has_frac) = leading_fraction(after_dot);
            rest = after;
            frac = has_frac.then_some((f, scale));
        }
        if !has_int && frac.is_none() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(ParseDurationError::MissingUnit(s.to_owned()));
        }
        let (unit, after_unit) = rest.split_at(unit_len);
        rest = after_unit;
        let scale: u64 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(ParseDurationError::UnknownUnit {
                    unit: unit.to_owned(),
                    input: s.to_owned(),
                });
            }
        };
        if whole > LIMIT / scale {
            return Err(invalid());
        }
        let mut v = whole * scale;
        if let Some((f, f_scale)) = frac.filter(|(f, _)| *f > 0) {
            // Go: v += uint64(float64(f) * (float64(unit) / scale)), then the range check.
            let add = (f as f64 * (scale as f64 / f_scale)) as u64;
            v = v
                .checked_add(add)
                .filter(|v| *v <= LIMIT)
                .ok_or_else(invalid)?;
        }
        total = total
            .checked_add(v)
            .filter(|t| *t <= LIMIT)
            .ok_or_else(invalid)?;
    }
    if neg {
        // total <= 2^63: the two's complement negation is exact (2^63 is i64::MIN).
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// Go's `leadingInt`: the leading digits of `s` as a number (`None` beyond 2^63), the rest, and
/// whether there were any digits.
fn leading_int(s: &str) -> Option<(u64, &str, bool)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, rest) = s.split_at(len);
    let mut x: u64 = 0;
    for d in digits.bytes() {
        x = x
            .checked_mul(10)
            .and_then(|x| x.checked_add(u64::from(d - b'0')))
            .filter(|x| *x <= 1 << 63)?;
    }
    Some((x, rest, len > 0))
}

/// Go's `leadingFraction`: the leading digits of `s` as a number over a power of ten (digits
/// past what fits in 2^63 are read but ignored), the rest, and whether there were any digits.
fn leading_fraction(s: &str) -> (u64, f64, &str, bool) {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, rest) = s.split_at(len);
    let (mut x, mut scale, mut overflow) = (0u64, 1f64, false);
    for d in digits.bytes() {
        if overflow {
            continue;
        }
        if x > (i64::MAX as u64) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(d - b'0');
        if y > 1 << 63 {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, rest, len > 0)
}

/// Go's `time.quote`: in double quotes, `"` and `\` escaped, bytes of non-ASCII and control
/// characters as `\xNN`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if (' '..'\u{80}').contains(&c) {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
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

    fn parse(s: &str) -> Result<i64, String> {
        parse_go_duration(s).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_as_go_does() {
        // Expected values are Go's `time.ParseDuration`.
        const S: i64 = 1_000_000_000;
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0s", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            ("1.s", S),
            (".5s", S / 2),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4_000_000),
            ("1.0040s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * 3600 * S),
            ("3h30m", (3 * 3600 + 30 * 60) * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            ("1h2m3s4ms5us6ns", 3723 * S + 4_000_000 + 5_000 + 6),
            ("39h9m14.425s", (39 * 3600 + 9 * 60 + 14) * S + 425_000_000),
            ("1h2m3.5s", 3723 * S + S / 2),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * 60 * S),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * 60 * S),
            ("0.830103483285477580700h", 49 * 60 * S + 48_372_539_827),
        ];
        for &(text, want) in ok {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
        let bad: &[(&str, &str)] = &[
            ("", r#"time: invalid duration """#),
            ("3", r#"time: missing unit in duration "3""#),
            ("5", r#"time: missing unit in duration "5""#),
            ("-", r#"time: invalid duration "-""#),
            ("+", r#"time: invalid duration "+""#),
            ("s", r#"time: invalid duration "s""#),
            (".", r#"time: invalid duration ".""#),
            ("-.", r#"time: invalid duration "-.""#),
            (".s", r#"time: invalid duration ".s""#),
            ("+.s", r#"time: invalid duration "+.s""#),
            ("1x", r#"time: unknown unit "x" in duration "1x""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            ("1e3s", r#"time: unknown unit "e" in duration "1e3s""#),
            ("1s2", r#"time: missing unit in duration "1s2""#),
            ("1s ", r#"time: unknown unit "s " in duration "1s ""#),
            (" 1s", r#"time: invalid duration " 1s""#),
            ("--1s", r#"time: invalid duration "--1s""#),
            (
                "1µ",
                r#"time: unknown unit "\xc2\xb5" in duration "1\xc2\xb5""#,
            ),
            ("1\"s", r#"time: unknown unit "\"s" in duration "1\"s""#),
            ("1\n", r#"time: unknown unit "\x0a" in duration "1\x0a""#),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            (
                "9223372036854775.808us",
                r#"time: invalid duration "9223372036854775.808us""#,
            ),
            (
                "9223372036854ms775us808ns",
                r#"time: invalid duration "9223372036854ms775us808ns""#,
            ),
            (
                "-9223372036854775809ns",
                r#"time: invalid duration "-9223372036854775809ns""#,
            ),
            ("9999999999h", r#"time: invalid duration "9999999999h""#),
            (
                "18446744073709551616ns",
                r#"time: invalid duration "18446744073709551616ns""#,
            ),
            ("3000000h", r#"time: invalid duration "3000000h""#),
        ];
        for &(text, want) in bad {
            assert_eq!(parse(text), Err(want.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(
            parse_go_duration("1x"),
            Err(ParseDurationError::UnknownUnit {
                unit: "x".into(),
                input: "1x".into()
            })
        );
        assert_eq!(
            parse_go_duration("5"),
            Err(ParseDurationError::MissingUnit("5".into()))
        );
        assert_eq!(
            parse_go_duration(""),
            Err(ParseDurationError::Invalid(String::new()))
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_go_duration(&s);
        }

        #[test]
        fn never_panics_on_duration_shapes(s in "[-+]?([0-9]{0,25}(\\.[0-9]{0,25})?(ns|us|µs|ms|s|m|h|x)?){1,4}") {
            let _ = parse_go_duration(&s);
        }

        #[test]
        fn reads_back_what_go_prints(n in 0..=i64::MAX) {
            let text = go_duration_string(Duration::from_nanos(n as u64));
            proptest::prop_assert_eq!(parse_go_duration(&text), Ok(n));
            proptest::prop_assert_eq!(parse_go_duration(&format!("-{text}")), Ok(-n));
        }
    }
}
