//! Reading a JSON command line as Go's `json.Unmarshal` into `map[string]interface{}` does.
//!
//! The control service answers malformed JSON with Go's own error text (`invalid character 'x'
//! looking for beginning of value`, `unexpected end of JSON input`, ...), so the syntax check is
//! a byte-driven state machine with the same states and messages as Go's `encoding/json`
//! scanner. Values are built alongside it. Everything is iterative: a line of ten thousand `[`
//! must not exhaust the stack (Go's own nesting limit is 10000).

use std::collections::BTreeMap;

use super::gofmt::quote_char;

/// Go's `maxNestingDepth`.
const MAX_DEPTH: usize = 10_000;

/// A decoded JSON value, as Go's `interface{}` holds it (numbers are float64).
#[derive(Debug)]
pub(crate) enum JsonValue {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<JsonValue>),
    Object(BTreeMap<String, JsonValue>),
}

impl JsonValue {
    fn take_children(&mut self, out: &mut Vec<JsonValue>) {
        match self {
            Self::Array(items) => out.append(items),
            Self::Object(map) => out.extend(std::mem::take(map).into_values()),
            _ => {}
        }
    }
}

impl Drop for JsonValue {
    // Deeply nested values are torn down with an explicit stack instead of recursion.
    fn drop(&mut self) {
        let mut stack = Vec::new();
        self.take_children(&mut stack);
        while let Some(mut v) = stack.pop() {
            v.take_children(&mut stack);
        }
    }
}

/// A JSON object as Go decodes it into `map[string]interface{}` (later duplicate keys win).
pub(crate) type JsonObject = BTreeMap<String, JsonValue>;

/// Parses `data` as one JSON object. The error is the text Go's `json.Unmarshal` would return.
pub(crate) fn parse_object(data: &[u8]) -> Result<JsonObject, String> {
    let mut v = parse(data)?;
    let kind = match &mut v {
        JsonValue::Object(map) => return Ok(std::mem::take(map)),
        // Unmarshalling null into a map leaves it nil: no keys.
        JsonValue::Null => return Ok(BTreeMap::new()),
        JsonValue::Bool(_) => "bool",
        JsonValue::Number(_) => "number",
        JsonValue::String(_) => "string",
        JsonValue::Array(_) => "array",
    };
    Err(format!(
        "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    ))
}

/// Parses one JSON value with Go's syntax rules and error texts.
pub(crate) fn parse(data: &[u8]) -> Result<JsonValue, String> {
    let mut scan = Scanner::new();
    let mut b = Builder::default();
    for (i, &c) in data.iter().enumerate() {
        let op = scan.step(c);
        if op == Op::Error {
            return Err(scan.err.unwrap_or_default());
        }
        b.on_op(op, i, data, &scan);
    }
    if scan.eof() == Op::Error {
        return Err(scan.err.unwrap_or_default());
    }
    b.finish_literal(data.len(), data);
    // Go reports the first value that failed to convert (a number out of float64 range) only
    // after the whole input proved syntactically valid.
    if let Some(e) = b.convert_err {
        return Err(e);
    }
    Ok(b.top.unwrap_or(JsonValue::Null))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Continue,
    BeginLiteral,
    BeginObject,
    ObjectKey,
    ObjectValue,
    EndObject,
    BeginArray,
    ArrayValue,
    EndArray,
    SkipSpace,
    End,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parse {
    ObjectKey,
    ObjectValue,
    ArrayValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    BeginValueOrEmpty,
    BeginValue,
    BeginStringOrEmpty,
    BeginString,
    EndValue,
    EndTop,
    InString,
    InStringEsc,
    /// Inside `\u`, with this many hex digits seen.
    InStringEscU(u8),
    Neg,
    One,
    Zero,
    Dot,
    Dot0,
    E,
    ESign,
    E0,
    /// Inside `true`, `false` or `null`, expecting `word[pos]` next.
    Lit(&'static str, usize),
    Error,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

struct Scanner {
    step: Step,
    stack: Vec<Parse>,
    end_top: bool,
    err: Option<String>,
}

impl Scanner {
    fn new() -> Self {
        Self {
            step: Step::BeginValue,
            stack: Vec::new(),
            end_top: false,
            err: None,
        }
    }

    fn error(&mut self, c: u8, context: &str) -> Op {
        self.step = Step::Error;
        self.err = Some(format!("invalid character {} {context}", quote_char(c)));
        Op::Error
    }

    fn eof(&mut self) -> Op {
        if self.err.is_some() {
            return Op::Error;
        }
        if self.end_top {
            return Op::End;
        }
        self.step(b' ');
        if self.end_top {
            return Op::End;
        }
        if self.err.is_none() {
            self.err = Some("unexpected end of JSON input".to_owned());
        }
        Op::Error
    }

    fn push(&mut self, c: u8, p: Parse, ok: Op) -> Op {
        self.stack.push(p);
        if self.stack.len() <= MAX_DEPTH {
            ok
        } else {
            self.error(c, "exceeded max depth")
        }
    }

    fn pop(&mut self) {
        self.stack.pop();
        if self.stack.is_empty() {
            self.step = Step::EndTop;
            self.end_top = true;
        } else {
            self.step = Step::EndValue;
        }
    }

    fn set_top(&mut self, p: Parse) {
        if let Some(top) = self.stack.last_mut() {
            *top = p;
        }
    }

    fn step(&mut self, c: u8) -> Op {
        match self.step {
            Step::BeginValueOrEmpty => {
                if is_space(c) {
                    Op::SkipSpace
                } else if c == b']' {
                    self.end_value(c)
                } else {
                    self.begin_value(c)
                }
            }
            Step::BeginValue => self.begin_value(c),
            Step::BeginStringOrEmpty => {
                if is_space(c) {
                    Op::SkipSpace
                } else if c == b'}' {
                    self.set_top(Parse::ObjectValue);
                    self.end_value(c)
                } else {
                    self.begin_string(c)
                }
            }
            Step::BeginString => self.begin_string(c),
            Step::EndValue => self.end_value(c),
            Step::EndTop => self.end_top(c),
            Step::InString => match c {
                b'"' => self.go(Step::EndValue),
                b'\\' => self.go(Step::InStringEsc),
                c if c < 0x20 => self.error(c, "in string literal"),
                _ => Op::Continue,
            },
            Step::InStringEsc => match c {
                b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => self.go(Step::InString),
                b'u' => self.go(Step::InStringEscU(0)),
                _ => self.error(c, "in string escape code"),
            },
            Step::InStringEscU(n) => {
                if c.is_ascii_hexdigit() {
                    self.go(if n >= 3 {
                        Step::InString
                    } else {
                        Step::InStringEscU(n + 1)
                    })
                } else {
                    self.error(c, "in \\u hexadecimal character escape")
                }
            }
            Step::Neg => match c {
                b'0' => self.go(Step::Zero),
                b'1'..=b'9' => self.go(Step::One),
                _ => self.error(c, "in numeric literal"),
            },
            Step::One => {
                if c.is_ascii_digit() {
                    Op::Continue
                } else {
                    self.zero(c)
                }
            }
            Step::Zero => self.zero(c),
            Step::Dot => {
                if c.is_ascii_digit() {
                    self.go(Step::Dot0)
                } else {
                    self.error(c, "after decimal point in numeric literal")
                }
            }
            Step::Dot0 => match c {
                b'0'..=b'9' => Op::Continue,
                b'e' | b'E' => self.go(Step::E),
                _ => self.end_value(c),
            },
            Step::E => match c {
                b'+' | b'-' => self.go(Step::ESign),
                _ => self.e_sign(c),
            },
            Step::ESign => self.e_sign(c),
            Step::E0 => {
                if c.is_ascii_digit() {
                    Op::Continue
                } else {
                    self.end_value(c)
                }
            }
            Step::Lit(word, pos) => {
                let want = word.as_bytes().get(pos).copied().unwrap_or(b' ');
                if c != want {
                    let msg = format!("in literal {word} (expecting {})", quote_char(want));
                    return self.error(c, &msg);
                }
                if pos + 1 >= word.len() {
                    self.go(Step::EndValue)
                } else {
                    self.go(Step::Lit(word, pos + 1))
                }
            }
            Step::Error => Op::Error,
        }
    }

    fn go(&mut self, step: Step) -> Op {
        self.step = step;
        Op::Continue
    }

    fn begin_value(&mut self, c: u8) -> Op {
        if is_space(c) {
            return Op::SkipSpace;
        }
        let lit = |s: &mut Self, step| {
            s.step = step;
            Op::BeginLiteral
        };
        match c {
            b'{' => {
                self.step = Step::BeginStringOrEmpty;
                self.push(c, Parse::ObjectKey, Op::BeginObject)
            }
            b'[' => {
                self.step = Step::BeginValueOrEmpty;
                self.push(c, Parse::ArrayValue, Op::BeginArray)
            }
            b'"' => lit(self, Step::InString),
            b'-' => lit(self, Step::Neg),
            b'0' => lit(self, Step::Zero),
            b't' => lit(self, Step::Lit("true", 1)),
            b'f' => lit(self, Step::Lit("false", 1)),
            b'n' => lit(self, Step::Lit("null", 1)),
            b'1'..=b'9' => lit(self, Step::One),
            _ => self.error(c, "looking for beginning of value"),
        }
    }

    fn begin_string(&mut self, c: u8) -> Op {
        if is_space(c) {
            Op::SkipSpace
        } else if c == b'"' {
            self.step = Step::InString;
            Op::BeginLiteral
        } else {
            self.error(c, "looking for beginning of object key string")
        }
    }

    fn zero(&mut self, c: u8) -> Op {
        match c {
            b'.' => self.go(Step::Dot),
            b'e' | b'E' => self.go(Step::E),
            _ => self.end_value(c),
        }
    }

    fn e_sign(&mut self, c: u8) -> Op {
        if c.is_ascii_digit() {
            self.go(Step::E0)
        } else {
            self.error(c, "in exponent of numeric literal")
        }
    }

    fn end_top(&mut self, c: u8) -> Op {
        if !is_space(c) {
            // Go records the error and reports it on the next byte (or at EOF).
            self.error(c, "after top-level value");
        }
        Op::End
    }

    fn end_value(&mut self, c: u8) -> Op {
        let Some(&top) = self.stack.last() else {
            self.step = Step::EndTop;
            self.end_top = true;
            return self.end_top(c);
        };
        if is_space(c) {
            self.step = Step::EndValue;
            return Op::SkipSpace;
        }
        match top {
            Parse::ObjectKey => {
                if c == b':' {
                    self.set_top(Parse::ObjectValue);
                    self.step = Step::BeginValue;
                    return Op::ObjectKey;
                }
                self.error(c, "after object key")
            }
            Parse::ObjectValue => match c {
                b',' => {
                    self.set_top(Parse::ObjectKey);
                    self.step = Step::BeginString;
                    Op::ObjectValue
                }
                b'}' => {
                    self.pop();
                    Op::EndObject
                }
                _ => self.error(c, "after object key:value pair"),
            },
            Parse::ArrayValue => match c {
                b',' => {
                    self.step = Step::BeginValue;
                    Op::ArrayValue
                }
                b']' => {
                    self.pop();
                    Op::EndArray
                }
                _ => self.error(c, "after array element"),
            },
        }
    }
}

enum Frame {
    Array(Vec<JsonValue>),
    Object(JsonObject, Option<String>),
}

/// Follows the scanner's opcodes and assembles the value, as Go's decoder does.
#[derive(Default)]
struct Builder {
    frames: Vec<Frame>,
    /// Start of the literal being scanned, and whether it is an object key.
    literal: Option<(usize, bool)>,
    top: Option<JsonValue>,
    convert_err: Option<String>,
}

impl Builder {
    fn on_op(&mut self, op: Op, i: usize, data: &[u8], scan: &Scanner) {
        if op != Op::Continue {
            self.finish_literal(i, data);
        }
        match op {
            Op::BeginLiteral => {
                let is_key = scan.stack.last() == Some(&Parse::ObjectKey);
                self.literal = Some((i, is_key));
            }
            Op::BeginObject => self.frames.push(Frame::Object(BTreeMap::new(), None)),
            Op::BeginArray => self.frames.push(Frame::Array(Vec::new())),
            Op::EndObject | Op::EndArray => {
                let v = match self.frames.pop() {
                    Some(Frame::Array(items)) => JsonValue::Array(items),
                    Some(Frame::Object(map, _)) => JsonValue::Object(map),
                    None => return,
                };
                self.deliver(v);
            }
            _ => {}
        }
    }

    fn finish_literal(&mut self, end: usize, data: &[u8]) {
        let Some((start, is_key)) = self.literal.take() else {
            return;
        };
        let text = data.get(start..end).unwrap_or_default();
        if is_key {
            if let Some(Frame::Object(_, key)) = self.frames.last_mut() {
                *key = Some(unquote(text));
            }
            return;
        }
        let v = match text.first() {
            Some(b'"') => JsonValue::String(unquote(text)),
            Some(b't') => JsonValue::Bool(true),
            Some(b'f') => JsonValue::Bool(false),
            Some(b'n') => JsonValue::Null,
            _ => {
                let s = String::from_utf8_lossy(text);
                match s.parse::<f64>() {
                    Ok(f) if f.is_finite() => JsonValue::Number(f),
                    _ => {
                        if self.convert_err.is_none() {
                            self.convert_err = Some(format!(
                                "json: cannot unmarshal number {s} into Go value of type float64"
                            ));
                        }
                        JsonValue::Null
                    }
                }
            }
        };
        self.deliver(v);
    }

    fn deliver(&mut self, v: JsonValue) {
        match self.frames.last_mut() {
            None => self.top = Some(v),
            Some(Frame::Array(items)) => items.push(v),
            Some(Frame::Object(map, key)) => {
                map.insert(key.take().unwrap_or_default(), v);
            }
        }
    }
}

/// Decodes a scanned string literal (quotes included) as Go's `unquote`: escapes resolved, a
/// lone or mismatched surrogate and every invalid UTF-8 byte become U+FFFD.
fn unquote(lit: &[u8]) -> String {
    let inner = lit.get(1..lit.len().saturating_sub(1)).unwrap_or_default();
    let mut out = String::with_capacity(inner.len());
    let mut r = 0;
    while let Some(&c) = inner.get(r) {
        if c == b'\\' {
            let esc = inner.get(r + 1).copied().unwrap_or(b'\\');
            r += 2;
            match esc {
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let Some(u) = hex4(inner.get(r..)) else {
                        out.push(char::REPLACEMENT_CHARACTER);
                        continue;
                    };
                    r += 4;
                    if (0xD800..0xE000).contains(&u) {
                        let next = inner.get(r..).filter(|s| s.starts_with(b"\\u"));
                        let lo = next.and_then(|s| hex4(s.get(2..)));
                        if let Some(lo) = lo.filter(|lo| (0xDC00..0xE000).contains(lo))
                            && (0xD800..0xDC00).contains(&u)
                        {
                            let c = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                            out.push(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
                            r += 6;
                            continue;
                        }
                        out.push(char::REPLACEMENT_CHARACTER);
                    } else {
                        out.push(char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER));
                    }
                }
                other => out.push(char::from(other)),
            }
            continue;
        }
        let (ch, width) = decode_utf8(inner.get(r..).unwrap_or_default());
        out.push(ch);
        r += width;
    }
    out
}

fn hex4(s: Option<&[u8]>) -> Option<u32> {
    let s = std::str::from_utf8(s?.get(..4)?).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// One character from the front of `s` as Go's `utf8.DecodeRune`: U+FFFD and width 1 for an
/// invalid sequence.
pub(crate) fn decode_utf8(s: &[u8]) -> (char, usize) {
    let Some(&lead) = s.first() else {
        return (char::REPLACEMENT_CHARACTER, 1);
    };
    let width = match lead {
        0x00..=0x7F => return (char::from(lead), 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (char::REPLACEMENT_CHARACTER, 1),
    };
    match s.get(..width).map(std::str::from_utf8) {
        Some(Ok(st)) => (st.chars().next().unwrap_or_default(), width),
        _ => (char::REPLACEMENT_CHARACTER, 1),
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
