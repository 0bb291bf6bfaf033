use super::*;

fn err(s: &str) -> String {
    parse_object(s.as_bytes()).unwrap_err()
}

#[test]
fn go_syntax_error_texts() {
    assert_eq!(err("{"), "unexpected end of JSON input");
    assert_eq!(err("{\"a\""), "unexpected end of JSON input");
    assert_eq!(
        err("{x}"),
        "invalid character 'x' looking for beginning of object key string"
    );
    assert_eq!(err("{\"a\" 1}"), "invalid character '1' after object key");
    assert_eq!(
        err("{\"a\":1 \"b\":2}"),
        "invalid character '\"' after object key:value pair"
    );
    assert_eq!(
        err("{\"a\":[1 2]}"),
        "invalid character '2' after array element"
    );
    assert_eq!(err("{} x"), "invalid character 'x' after top-level value");
    assert_eq!(err("{}x"), "invalid character 'x' after top-level value");
    assert_eq!(
        err("{\"a\":}"),
        "invalid character '}' looking for beginning of value"
    );
    assert_eq!(
        err("{\"a\":tru}"),
        "invalid character '}' in literal true (expecting 'e')"
    );
    assert_eq!(
        err("{\"a\":nul}"),
        "invalid character '}' in literal null (expecting 'l')"
    );
    assert_eq!(
        err("{\"a\":fx}"),
        "invalid character 'x' in literal false (expecting 'a')"
    );
    assert_eq!(err("{\"a\":-}"), "invalid character '}' in numeric literal");
    assert_eq!(
        err("{\"a\":1.}"),
        "invalid character '}' after decimal point in numeric literal"
    );
    assert_eq!(
        err("{\"a\":1e}"),
        "invalid character '}' in exponent of numeric literal"
    );
    assert_eq!(
        err("{\"a\":\"\\x\"}"),
        "invalid character 'x' in string escape code"
    );
    assert_eq!(
        err("{\"a\":\"\\u12g4\"}"),
        "invalid character 'g' in \\u hexadecimal character escape"
    );
    assert_eq!(
        err("{\"a\":\"\t\"}"),
        "invalid character '\\t' in string literal"
    );
    assert_eq!(
        err("{'a':1}"),
        "invalid character '\\'' looking for beginning of object key string"
    );
    assert_eq!(
        err("{\"a\":01}"),
        "invalid character '1' after object key:value pair"
    );
    assert_eq!(
        err("{\u{e9}}"),
        "invalid character 'Ã' looking for beginning of object key string"
    );
    assert_eq!(
        err("{\"a\":1e400}"),
        "json: cannot unmarshal number 1e400 into Go value of type float64"
    );
    // A syntax error anywhere wins over a conversion error earlier on.
    assert_eq!(
        err("{\"a\":1e400,}"),
        "invalid character '}' looking for beginning of object key string"
    );
}

#[test]
fn max_depth() {
    let deep = format!("{{\"a\":{}", "[".repeat(MAX_DEPTH));
    assert_eq!(err(&deep), "invalid character '[' exceeded max depth");
    let ok = format!(
        "{{\"a\":{}{}}}",
        "[".repeat(MAX_DEPTH - 1),
        "]".repeat(MAX_DEPTH - 1)
    );
    assert!(parse_object(ok.as_bytes()).is_ok());
}

#[test]
fn values() {
    let m = parse_object(
        br#" {"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","n":-1.5e2,"t":true,"f":false,"z":null,"a":[1,"x",[]],"o":{"k":{}},"s":"dup"} "#,
    )
    .unwrap();
    assert!(matches!(m.get("s"), Some(JsonValue::String(s)) if s == "dup"));
    assert!(matches!(m.get("n"), Some(JsonValue::Number(n)) if *n == -150.0));
    assert!(matches!(m.get("t"), Some(JsonValue::Bool(true))));
    assert!(matches!(m.get("f"), Some(JsonValue::Bool(false))));
    assert!(matches!(m.get("z"), Some(JsonValue::Null)));
    assert!(matches!(m.get("a"), Some(JsonValue::Array(a)) if a.len() == 3));
    assert!(matches!(m.get("o"), Some(JsonValue::Object(o)) if o.contains_key("k")));
    let m = parse_object(br#"{"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}"#).unwrap();
    assert!(
        matches!(m.get("s"), Some(JsonValue::String(s)) if s == "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1f600}")
    );
}

#[test]
fn go_replacement_rules() {
    let m = parse_object(b"{\"a\":\"\\ud800x\",\"b\":\"\\udc00\",\"c\":\"\\ud800\\u0041\",\"d\":\"\xff\xfe\",\"e\":\"\xe2\x82\"}").unwrap();
    let get = |k: &str| match m.get(k) {
        Some(JsonValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    assert_eq!(get("a"), "\u{fffd}x");
    assert_eq!(get("b"), "\u{fffd}");
    assert_eq!(get("c"), "\u{fffd}A");
    assert_eq!(get("d"), "\u{fffd}\u{fffd}");
    assert_eq!(get("e"), "\u{fffd}\u{fffd}");
}
