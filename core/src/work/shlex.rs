//! `github.com/google/shlex` `Split`, which Go receptor uses on command parameters.
//!
//! Rules (no expansion of any kind): space, tab, CR and LF separate words; `'...'` quotes
//! literally; `"..."` quotes with `\` escaping the next character (which is kept alone, so
//! `"\a"` is `a`); outside quotes `\` escapes the next character; `#` at the start of a word
//! begins a comment that runs to the end of the line. Quotes may join a word (`a"b c"d` is one
//! word `ab cd`), and `''` is an empty word.

/// Why [`shlex_split`] failed; the texts are google/shlex's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShlexError {
    /// A quote was not closed.
    #[error("EOF found when expecting closing quote")]
    UnclosedQuote,
    /// The input ended right after a backslash.
    #[error("EOF found after escape character")]
    TrailingEscape,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Word,
    Escaping,
    EscapingQuoted,
    QuotingEscaping,
    Quoting,
    Comment,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits `s` into words as google/shlex's `Split` does.
pub fn shlex_split(s: &str) -> Result<Vec<String>, ShlexError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Start;
    for c in s.chars() {
        state = match state {
            State::Start => match c {
                c if is_space(c) => State::Start,
                '"' => State::QuotingEscaping,
                '\'' => State::Quoting,
                '\\' => State::Escaping,
                '#' => State::Comment,
                c => {
                    word.push(c);
                    State::Word
                }
            },
            State::Word => match c {
                c if is_space(c) => {
                    words.push(std::mem::take(&mut word));
                    State::Start
                }
                '"' => State::QuotingEscaping,
                '\'' => State::Quoting,
                '\\' => State::Escaping,
                c => {
                    word.push(c);
                    State::Word
                }
            },
            State::Escaping => {
                word.push(c);
                State::Word
            }
            State::EscapingQuoted => {
                word.push(c);
                State::QuotingEscaping
            }
            State::QuotingEscaping => match c {
                '"' => State::Word,
                '\\' => State::EscapingQuoted,
                c => {
                    word.push(c);
                    State::QuotingEscaping
                }
            },
            State::Quoting => match c {
                '\'' => State::Word,
                c => {
                    word.push(c);
                    State::Quoting
                }
            },
            State::Comment => {
                if c == '\n' {
                    State::Start
                } else {
                    State::Comment
                }
            }
        };
    }
    match state {
        State::Start | State::Comment => {}
        State::Word => words.push(word),
        State::Escaping | State::EscapingQuoted => return Err(ShlexError::TrailingEscape),
        State::Quoting | State::QuotingEscaping => return Err(ShlexError::UnclosedQuote),
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<String> {
        shlex_split(s).unwrap()
    }

    #[test]
    fn google_shlex_cases() {
        // The test string of google/shlex's own tests.
        let input = "one two \"three four\" \"five \\\"six\\\"\" seven#eight # nine # ten\n eleven 'twelve\\' thirteen=13 fourteen/14";
        assert_eq!(
            ok(input),
            [
                "one",
                "two",
                "three four",
                "five \"six\"",
                "seven#eight",
                "eleven",
                "twelve\\",
                "thirteen=13",
                "fourteen/14"
            ]
        );
    }

    #[test]
    fn words_and_quotes() {
        assert!(ok("").is_empty());
        assert!(ok("  \t\r\n ").is_empty());
        assert_eq!(ok("-c 'echo out; exit 3'"), ["-c", "echo out; exit 3"]);
        assert_eq!(ok("a\"b c\"d"), ["ab cd"]);
        assert_eq!(ok("'' x"), ["", "x"]);
        assert_eq!(ok("\"\""), [""]);
        assert_eq!(ok("a\\ b"), ["a b"]);
        assert_eq!(ok("\"\\a\\\\\""), ["a\\"]);
        assert_eq!(ok("'$HOME' *"), ["$HOME", "*"]);
        assert_eq!(ok("x # comment\ny"), ["x", "y"]);
        assert_eq!(ok("#only a comment"), Vec::<String>::new());
        assert_eq!(ok("it worked!"), ["it", "worked!"]);
        assert_eq!(ok("é ü"), ["é", "ü"]);
    }

    #[test]
    fn errors() {
        assert_eq!(shlex_split("'open"), Err(ShlexError::UnclosedQuote));
        assert_eq!(shlex_split("a \"open"), Err(ShlexError::UnclosedQuote));
        assert_eq!(shlex_split("a\\"), Err(ShlexError::TrailingEscape));
        assert_eq!(shlex_split("\"a\\"), Err(ShlexError::TrailingEscape));
        assert_eq!(
            ShlexError::UnclosedQuote.to_string(),
            "EOF found when expecting closing quote"
        );
        assert_eq!(
            ShlexError::TrailingEscape.to_string(),
            "EOF found after escape character"
        );
    }
}
