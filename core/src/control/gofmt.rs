//! Go's `strconv` and `fmt` renderings that leak into control-service error texts.
//!
//! `work results` reports `strconv.ParseInt` errors verbatim, the JSON syntax errors quote the
//! offending byte with `strconv.Quote`, and a non-numeric JSON `startpos` is printed with `%s`.

use std::fmt::Write as _;

use super::json::{JsonValue, decode_utf8};
use crate::wire::{shortest_digits, write_exponent, write_fixed};

/// Go's `strconv.Quote` of a byte string: printable runes kept, invalid UTF-8 as `\xNN`.
pub(crate) fn go_quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut i = 0;
    while let Some(rest) = s.get(i..).filter(|r| !r.is_empty()) {
        let (c, width) = decode_utf8(rest);
        i += width;
        if width == 1 && c == char::REPLACEMENT_CHARACTER {
            let _ = write!(out, "\\x{:02x}", rest.first().copied().unwrap_or_default());
            continue;
        }
        escape_rune(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `quoteChar` from `encoding/json`: the byte as a rune (so 0xC3 is `'Ã'`) in single quotes.
pub(crate) fn quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        _ => {
            let mut out = String::from("'");
            escape_rune(&mut out, char::from(c), '"');
            out.push('\'');
            out
        }
    }
}

fn escape_rune(out: &mut String, c: char, quote: char) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) {
        out.push(c);
        return;
    }
    let code = c as u32;
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        _ if code < 0x20 || code == 0x7f => {
            let _ = write!(out, "\\x{code:02x}");
        }
        _ if code < 0x10000 => {
            let _ = write!(out, "\\u{code:04x}");
        }
        _ => {
            let _ = write!(out, "\\U{code:08x}");
        }
    }
}

/// An approximation of Go's `strconv.IsPrint` without Unicode category tables: control
/// characters, separators other than ASCII space, common format characters, surrogates,
/// private-use and non-characters are not printable. Unassigned code points count as printable
/// here (Go escapes them).
fn is_print(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x180E
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x206F
            | 0xE000..=0xF8FF
            | 0xFDD0..=0xFDEF
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xFFFE..=0xFFFF
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xF0000..
    ) && (u & 0xFFFE) != 0xFFFE
}

/// Go's `strconv.ParseInt(s, 10, 64)`, with its error text on failure.
pub(crate) fn parse_int(s: &[u8]) -> Result<i64, String> {
    let fail = |what: &str| format!("strconv.ParseInt: parsing {}: {what}", go_quote(s));
    let (neg, digits) = match s.first() {
        Some(b'+') => (false, s.get(1..).unwrap_or_default()),
        Some(b'-') => (true, s.get(1..).unwrap_or_default()),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(fail("invalid syntax"));
    }
    let mut n: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(fail("invalid syntax"));
        }
        // Go stops at the first overflowing digit, before looking at the rest.
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
        {
            Some(n) => n,
            None => return Err(fail("value out of range")),
        };
    }
    let limit = 1u64 << 63;
    match (neg, n) {
        (false, n) if n < limit => Ok(n as i64),
        (true, n) if n <= limit => Ok((n as i64).wrapping_neg()),
        _ => Err(fail("value out of range")),
    }
}

/// Go's `int64(f)` for a float64 on amd64: truncation, and `math.MinInt64` when out of range.
pub(crate) fn float_to_i64(f: f64) -> i64 {
    // 2^63, exactly representable.
    let limit = -(i64::MIN as f64);
    if (-limit..limit).contains(&f) {
        f.trunc() as i64
    } else {
        i64::MIN
    }
}

/// Go's `fmt.Sprintf("%s", v)` of a decoded JSON value (`interface{}`), e.g.
/// `%!s(bool=true)`, `[a %!s(float64=1)]`, `map[k:<nil>]`.
pub(crate) fn sprint_s(v: &JsonValue) -> String {
    let mut out = String::new();
    match v {
        // At the top level a nil interface is a bad-verb argument; nested, it prints `<nil>`.
        JsonValue::Null => out.push_str("%!s(<nil>)"),
        _ => sprint_nested(&mut out, v),
    }
    out
}

enum Piece<'a> {
    Value(&'a JsonValue),
    Text(&'a str),
}

fn sprint_nested(out: &mut String, v: &JsonValue) {
    // Iterative, so deeply nested input cannot overflow the stack.
    let mut stack = vec![Piece::Value(v)];
    while let Some(p) = stack.pop() {
        let v = match p {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            Piece::Value(v) => v,
        };
        match v {
            JsonValue::Null => out.push_str("<nil>"),
            JsonValue::Bool(b) => {
                let _ = write!(out, "%!s(bool={b})");
            }
            JsonValue::Number(f) => {
                let _ = write!(out, "%!s(float64={})", format_g(*f));
            }
            JsonValue::String(s) => out.push_str(s),
            JsonValue::Array(items) => {
                out.push('[');
                stack.push(Piece::Text("]"));
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push(Piece::Value(item));
                    if i > 0 {
                        stack.push(Piece::Text(" "));
                    }
                }
            }
            JsonValue::Object(map) => {
                out.push_str("map[");
                stack.push(Piece::Text("]"));
                for (i, (k, item)) in map.iter().enumerate().rev() {
                    stack.push(Piece::Value(item));
                    stack.push(Piece::Text(":"));
                    stack.push(Piece::Text(k));
                    if i > 0 {
                        stack.push(Piece::Text(" "));
                    }
                }
            }
        }
    }
}

/// Go's `%v` of a float64: `strconv.FormatFloat(f, 'g', -1, 64)` (`1`, `1.5`, `1e+06`).
pub(crate) fn format_g(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        }
        .to_owned();
    }
    let (digits, exp) = shortest_digits(f);
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    // With the shortest precision Go switches to %e below 1e-4 and from 1e+06 on.
    if (-4..6).contains(&exp) {
        write_fixed(&mut out, &digits, exp);
    } else {
        write_exponent(&mut out, &digits, exp, 2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::json::parse_object;

    #[test]
    fn quote() {
        assert_eq!(go_quote(b"abc"), "\"abc\"");
        assert_eq!(go_quote(b""), "\"\"");
        assert_eq!(go_quote(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            go_quote(b"\x07\x08\x0c\n\r\t\x0b\x00\x7f"),
            "\"\\a\\b\\f\\n\\r\\t\\v\\x00\\x7f\""
        );
        assert_eq!(go_quote("é☃😀".as_bytes()), "\"é☃😀\"");
        assert_eq!(go_quote(b"\xff\xe2\x82"), "\"\\xff\\xe2\\x82\"");
        assert_eq!(
            go_quote("\u{85}\u{a0}\u{ad}\u{2028}\u{feff}".as_bytes()),
            "\"\\u0085\\u00a0\\u00ad\\u2028\\ufeff\""
        );
        assert_eq!(go_quote("\u{f0000}".as_bytes()), "\"\\U000f0000\"");
    }

    #[test]
    fn quote_char_forms() {
        assert_eq!(quote_char(b'x'), "'x'");
        assert_eq!(quote_char(b'\''), "'\\''");
        assert_eq!(quote_char(b'"'), "'\"'");
        assert_eq!(quote_char(b'\\'), "'\\\\'");
        assert_eq!(quote_char(0), "'\\x00'");
        assert_eq!(quote_char(0xc3), "'Ã'");
        assert_eq!(quote_char(0x80), "'\\u0080'");
    }

    #[test]
    fn parse_int_like_go() {
        assert_eq!(parse_int(b"0"), Ok(0));
        assert_eq!(parse_int(b"+17"), Ok(17));
        assert_eq!(parse_int(b"-17"), Ok(-17));
        assert_eq!(parse_int(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            parse_int(b"9223372036854775808"),
            Err("strconv.ParseInt: parsing \"9223372036854775808\": value out of range".into())
        );
        assert_eq!(
            parse_int(b"99999999999999999999x"),
            Err("strconv.ParseInt: parsing \"99999999999999999999x\": value out of range".into())
        );
        assert_eq!(
            parse_int(b""),
            Err("strconv.ParseInt: parsing \"\": invalid syntax".into())
        );
        assert_eq!(
            parse_int(b"-"),
            Err("strconv.ParseInt: parsing \"-\": invalid syntax".into())
        );
        assert_eq!(
            parse_int(b"1_000"),
            Err("strconv.ParseInt: parsing \"1_000\": invalid syntax".into())
        );
        assert_eq!(
            parse_int(b"0x10"),
            Err("strconv.ParseInt: parsing \"0x10\": invalid syntax".into())
        );
    }

    #[test]
    fn float_conversion() {
        assert_eq!(float_to_i64(3.9), 3);
        assert_eq!(float_to_i64(-3.9), -3);
        assert_eq!(float_to_i64(1e19), i64::MIN);
        assert_eq!(float_to_i64(-1e19), i64::MIN);
    }

    #[test]
    fn g_format() {
        for (f, s) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (0.1, "0.1"),
        ] {
            assert_eq!(format_g(f), s, "{f}");
        }
    }

    #[test]
    fn sprint_values() {
        let m = parse_object(
            br#"{"n":null,"b":true,"s":"x","a":[1,"y",null,false,[2.5]],"o":{"k":1,"a":null}}"#,
        )
        .unwrap();
        let p = |k: &str| sprint_s(m.get(k).unwrap());
        assert_eq!(p("n"), "%!s(<nil>)");
        assert_eq!(p("b"), "%!s(bool=true)");
        assert_eq!(p("s"), "x");
        assert_eq!(
            p("a"),
            "[%!s(float64=1) y <nil> %!s(bool=false) [%!s(float64=2.5)]]"
        );
        assert_eq!(p("o"), "map[a:<nil> k:%!s(float64=1)]");
    }
}
