//! Writing JSON exactly as Go's `encoding/json` does, and reading it as leniently.
//!
//! Go escapes `<`, `>`, `&`, U+2028 and U+2029, prints float64 in the shortest round-trip form
//! with its own exponent rules, and sorts map keys. Readers match keys case-insensitively.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal, escaped as Go's `encoding/json` escapes it.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let needs_u = matches!(
            c,
            '\u{0}'..='\u{1f}' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}'
        );
        if esc.is_none() && !needs_u {
            continue;
        }
        out.push_str(s.get(start..i).unwrap_or_default());
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// Appends a float64 the way Go's `encoding/json` formats it (`1`, `2.5`, `1e+21`, `1e-7`).
///
/// Non-finite values have no JSON form; Go refuses to marshal them. They are written as `0` here,
/// and config validation keeps them out of messages in the first place.
pub(crate) fn write_f64(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push('0');
        return;
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Link costs are nearly always small integers. Below 2^53 an integral float's shortest
    // digits, placed by the 'f' format, are exactly the integer's decimal digits.
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        let _ = write!(out, "{}", f as i64);
        return;
    }
    write_f64_general(out, f);
}

/// The general case of [`write_f64`]: from the shortest round-trip digits.
fn write_f64_general(out: &mut String, f: f64) {
    let (digits, exp) = shortest_digits(f);
    if f < 0.0 {
        out.push('-');
    }
    if (1e-6..1e21).contains(&f.abs()) {
        write_fixed(out, &digits, exp);
    } else {
        // Go's 'e' format has two exponent digits, then encoding/json trims e-0X to e-X.
        write_exponent(out, &digits, exp, if exp < 0 { 1 } else { 2 });
    }
}

/// The shortest decimal digits that round-trip `|f|` (Go's strconv with precision -1), and
/// the decimal exponent of the first digit. `f` must be finite and non-zero.
pub(crate) fn shortest_digits(f: f64) -> (String, i32) {
    // Rust's `{:e}` gives exactly those digits.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Go's 'e' format of the digits: `d[.ddd]e±X`, the exponent with at least `min_exp` digits.
pub(crate) fn write_exponent(out: &mut String, digits: &str, exp: i32, min_exp: usize) {
    out.push_str(digits.get(..1).unwrap_or("0"));
    if digits.len() > 1 {
        out.push('.');
        out.push_str(digits.get(1..).unwrap_or_default());
    }
    let sign = if exp < 0 { '-' } else { '+' };
    let _ = write!(out, "e{sign}{:0min_exp$}", exp.unsigned_abs());
}

/// Go's 'f' format of the digits: the decimal point placed by the exponent, no exponent.
pub(crate) fn write_fixed(out: &mut String, digits: &str, exp: i32) {
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        out.push_str("0.");
        for _ in 0..-point {
            out.push('0');
        }
        out.push_str(digits);
        return;
    }
    let point = point.unsigned_abs() as usize;
    if digits.len() <= point {
        out.push_str(digits);
        for _ in digits.len()..point {
            out.push('0');
        }
    } else {
        out.push_str(digits.get(..point).unwrap_or_default());
        out.push('.');
        out.push_str(digits.get(point..).unwrap_or_default());
    }
}

/// Case-insensitive key match, as Go's decoder matches struct field names.
pub(crate) fn key_is(key: &str, field: &str) -> bool {
    key.eq_ignore_ascii_case(field)
}

/// Reads a JSON object key and resolves it, case-insensitively, to an index into a list of
/// field names (`None` for an unknown key) without allocating.
pub(crate) struct FieldIndex(pub(crate) &'static [&'static str]);

impl<'de> serde::de::DeserializeSeed<'de> for FieldIndex {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for FieldIndex {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|name| key_is(v, name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut s = String::new();
        write_f64(&mut s, x);
        s
    }

    #[test]
    fn go_float_format() {
        assert_eq!(f(1.0), "1");
        assert_eq!(f(2.5), "2.5");
        assert_eq!(f(1.6), "1.6");
        assert_eq!(f(100.0), "100");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1e-7), "1e-7");
        assert_eq!(f(0.000001), "0.000001");
        assert_eq!(f(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(f(1.5e-10), "1.5e-10");
        assert_eq!(f(1.2345678901234568e20), "123456789012345680000");
        assert_eq!(f(1e100), "1e+100");
        assert_eq!(f(-2.5), "-2.5");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(123.456), "123.456");
    }

    #[test]
    fn integer_fast_path_matches_the_general_format() {
        let general = |x: f64| {
            let mut s = String::new();
            write_f64_general(&mut s, x);
            s
        };
        let mut x = 1.0f64;
        while x < 9.1e15 {
            for v in [x, x + 1.0, x - 1.0, x * 3.0, -x, -(x + 1.0)] {
                if v != 0.0 && v.fract() == 0.0 {
                    assert_eq!(f(v), general(v), "{v}");
                }
            }
            x *= 1.7;
            x = x.round();
        }
        assert_eq!(f(9_007_199_254_740_991.0), "9007199254740991");
        assert_eq!(f(9_007_199_254_740_992.0), general(9_007_199_254_740_992.0));
    }

    #[test]
    fn go_string_escape() {
        let mut s = String::new();
        write_str(&mut s, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#);
    }
}
