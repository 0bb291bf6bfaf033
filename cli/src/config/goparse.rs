//! Scalar parsers that accept exactly what Go receptor's config path accepts.
//!
//! Go receptor converts strings with `strconv.ParseInt(s, 0, 64)` (base prefixes, `_` separators),
//! `strconv.ParseFloat(s, 64)`, its own `betterParseBool` (ghjm/cmdline) and `time.ParseDuration` (core's,
//! shared with the remote units' `ttl`).
//! Error strings mimic Go's so messages read the same as the reference.

use std::time::Duration;

use receptor_core::control::parse_go_duration;

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_int(s: &str) -> Result<i64, String> {
    let (neg, body) = split_sign(s);
    let magnitude = parse_uint_base0(body, s).map_err(|e| e.message("ParseInt", s))?;
    let cutoff = 1u64 << 63;
    match (neg, magnitude) {
        (false, m) if m >= cutoff => Err(NumError::Range.message("ParseInt", s)),
        (true, m) if m > cutoff => Err(NumError::Range.message("ParseInt", s)),
        // Two's complement wrap is exact here: m <= 2^63.
        (true, m) => Ok((m as i64).wrapping_neg()),
        (false, m) => Ok(m as i64),
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)` (no sign allowed).
pub(crate) fn parse_uint(s: &str) -> Result<u64, String> {
    parse_uint_base0(s, s).map_err(|e| e.message("ParseUint", s))
}

#[derive(Clone, Copy)]
enum NumError {
    Syntax,
    Range,
}

impl NumError {
    fn message(self, func: &str, input: &str) -> String {
        let what = match self {
            Self::Syntax => "invalid syntax",
            Self::Range => "value out of range",
        };
        format!("strconv.{func}: parsing {input:?}: {what}")
    }
}

fn split_sign(s: &str) -> (bool, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = s.strip_prefix('+') {
        (false, rest)
    } else {
        (false, s)
    }
}

/// Base-0 unsigned parse: `0x`/`0o`/`0b` prefixes, a bare leading `0` means octal, `_` separators
/// allowed only between digits (Go's `underscoreOK`, checked against the whole literal `whole`).
fn parse_uint_base0(s: &str, whole: &str) -> Result<u64, NumError> {
    if s.is_empty() {
        return Err(NumError::Syntax);
    }
    let bytes = s.as_bytes();
    let (base, digits) = if bytes.first() == Some(&b'0') {
        let prefix = bytes.get(1).map(u8::to_ascii_lowercase);
        match prefix {
            Some(b'b') if s.len() >= 3 => (2, s.get(2..).unwrap_or("")),
            Some(b'o') if s.len() >= 3 => (8, s.get(2..).unwrap_or("")),
            Some(b'x') if s.len() >= 3 => (16, s.get(2..).unwrap_or("")),
            _ => (8, s.get(1..).unwrap_or("")),
        }
    } else {
        (10, s)
    };
    let mut value: u64 = 0;
    let mut underscores = false;
    let mut overflow = false;
    for c in digits.chars() {
        if c == '_' {
            underscores = true;
            continue;
        }
        let d = c
            .to_digit(16)
            .filter(|d| *d < base)
            .ok_or(NumError::Syntax)?;
        match value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
    }
    if underscores && !underscore_ok(whole) {
        return Err(NumError::Syntax);
    }
    if overflow {
        return Err(NumError::Range);
    }
    Ok(value)
}

/// Go's `strconv.underscoreOK`: every `_` sits between digits (a base prefix counts as a digit).
fn underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in b.iter().skip(i) {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal input (hex floats are not accepted).
pub(crate) fn parse_float(s: &str) -> Result<f64, String> {
    let syntax = || NumError::Syntax.message("ParseFloat", s);
    let cleaned;
    let text = if s.contains('_') {
        if !underscore_ok(s) {
            return Err(syntax());
        }
        cleaned = s.replace('_', "");
        cleaned.as_str()
    } else {
        s
    };
    let lower = text.to_ascii_lowercase();
    let unsigned = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    let special = matches!(unsigned, "inf" | "infinity" | "nan");
    if !special && !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err(syntax());
    }
    let v: f64 = text.parse().map_err(|_| syntax())?;
    if v.is_infinite() && !special {
        return Err(NumError::Range.message("ParseFloat", s));
    }
    Ok(v)
}

/// ghjm/cmdline's `betterParseBool`.
pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "Y" | "true" | "TRUE" | "True" | "yes" | "Yes" | "YES" => Ok(true),
        "0" | "f" | "F" | "N" | "false" | "FALSE" | "False" | "no" | "No" | "NO" => Ok(false),
        _ => Err(format!("could not parse {s} as boolean")),
    }
}

/// Go's `fmt.Sprintf("%f", v)`: six decimals, `+Inf`/`-Inf`/`NaN` for the specials.
pub(crate) fn format_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v:.6}")
    }
}

/// A duration as Go's `time.ParseDuration` reads it, kept signed (Go durations may be negative).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GoDuration {
    /// Nanoseconds, within `i64` like Go's `time.Duration`.
    pub(crate) nanos: i64,
}

impl GoDuration {
    /// The duration as a std `Duration`, or `None` if it is negative.
    pub(crate) fn to_std(self) -> Option<Duration> {
        u64::try_from(self.nanos).ok().map(Duration::from_nanos)
    }
}

/// Go's `time.ParseDuration` (core's [`parse_go_duration`]), its error as Go words it.
pub(crate) fn parse_duration(s: &str) -> Result<GoDuration, String> {
    parse_go_duration(s)
        .map(|nanos| GoDuration { nanos })
        .map_err(|e| e.to_string())
}

/// Go's `hex.DecodeString`.
pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = char::from(*pair.first()?).to_digit(16)?;
            let lo = char::from(*pair.get(1)?).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_follow_go_base_prefix_rules() {
        assert_eq!(parse_int("0600"), Ok(0o600));
        assert_eq!(parse_int("0o660"), Ok(0o660));
        assert_eq!(parse_int("0x1F"), Ok(31));
        assert_eq!(parse_int("0b101"), Ok(5));
        assert_eq!(parse_int("-12"), Ok(-12));
        assert_eq!(parse_int("+12"), Ok(12));
        assert_eq!(parse_int("1_000"), Ok(1000));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            parse_int("abc"),
            Err(r#"strconv.ParseInt: parsing "abc": invalid syntax"#.to_owned())
        );
        assert!(parse_int("").is_err());
        assert!(parse_int("08").is_err());
        assert!(parse_int("0x").is_err());
        assert!(parse_int("1__0").is_err());
        assert!(parse_int("_1").is_err());
        assert!(parse_int("1.5").is_err());
        assert_eq!(
            parse_int("9223372036854775808"),
            Err(
                r#"strconv.ParseInt: parsing "9223372036854775808": value out of range"#.to_owned()
            )
        );
        assert_eq!(parse_uint("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn floats_follow_go() {
        assert_eq!(parse_float("1.5"), Ok(1.5));
        assert_eq!(parse_float(".5"), Ok(0.5));
        assert_eq!(parse_float("1."), Ok(1.0));
        assert_eq!(parse_float("-2e3"), Ok(-2000.0));
        assert_eq!(parse_float("1_000.5"), Ok(1000.5));
        assert_eq!(parse_float("+Inf"), Ok(f64::INFINITY));
        assert!(parse_float("NaN").is_ok_and(f64::is_nan));
        assert!(parse_float("abc").is_err());
        assert!(parse_float("").is_err());
        assert!(parse_float("1e400").is_err_and(|e| e.contains("value out of range")));
    }

    #[test]
    fn bools_follow_better_parse_bool() {
        for t in [
            "1", "t", "T", "Y", "true", "TRUE", "True", "yes", "Yes", "YES",
        ] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in [
            "0", "f", "F", "N", "false", "FALSE", "False", "no", "No", "NO",
        ] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["y", "n", "on", "off", "tRue", ""] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_follow_go() {
        let ns = |s: &str| parse_duration(s).map(|d| d.nanos);
        assert_eq!(ns("21s"), Ok(21_000_000_000));
        assert_eq!(ns("1m30s"), Ok(90_000_000_000));
        assert_eq!(ns("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(ns("30m10s"), Ok(1_810_000_000_000));
        assert_eq!(ns("300ms"), Ok(300_000_000));
        assert_eq!(ns("2us"), Ok(2_000));
        assert_eq!(ns("2µs"), Ok(2_000));
        assert_eq!(ns("-1.5s"), Ok(-1_500_000_000));
        assert_eq!(ns(".5s"), Ok(500_000_000));
        assert_eq!(ns("0"), Ok(0));
        for bad in ["", "1", "s", ".s", "1x", "1s2", "+", "1e3s", "9999999999h"] {
            assert!(ns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn float_formatting_matches_printf_f() {
        assert_eq!(format_float_f(1.5), "1.500000");
        assert_eq!(format_float_f(2.0), "2.000000");
        assert_eq!(format_float_f(f64::INFINITY), "+Inf");
        assert_eq!(format_float_f(f64::NAN), "NaN");
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex("0aFF"), Some(vec![10, 255]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
