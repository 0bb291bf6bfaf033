//! Command-line framing of a control session (control-and-work.md §1.2).
//!
//! Go's control service reads one byte at a time so that it never consumes a byte past the
//! newline: whatever follows a `work submit` or `connect` line is payload, not a command. This
//! reader keeps that contract while taking whole buffers: [`LineReader::push`] stops right after
//! the first `\n` and reports how many bytes it took.

/// Bound on one command line (after dropping `\r`): longer lines are refused with
/// `ERROR: command line too long` and the session ends. Go has none, so a client that never
/// sends a newline makes it buffer without end. A `work submit` line carries the work params
/// inline (AWX sends pod specs and kubeconfigs, tens of KiB), so the bound is generous; what
/// a session holds is at most this much, however many bytes arrive.
pub const MAX_LINE_LEN: usize = 4 * 1024 * 1024;

/// What one [`LineReader::push`] produced, besides the bytes it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete, non-empty command line: without its `\n` and with every `\r` dropped.
    Line(Vec<u8>),
    /// The line grew past the reader's bound; what was buffered is discarded.
    TooLong,
}

/// Splits a control-session byte stream into command lines, exactly as Go's byte-at-a-time loop.
///
/// `\r` is dropped anywhere in a line, empty lines are skipped, and a partial line left at EOF is
/// returned by [`LineReader::finish`] so the session can still execute it.
#[derive(Debug, Clone)]
pub struct LineReader {
    buf: Vec<u8>,
    max_len: usize,
}

impl Default for LineReader {
    fn default() -> Self {
        Self::new(MAX_LINE_LEN)
    }
}

impl LineReader {
    /// A reader that gives up on lines longer than `max_len` bytes (after dropping `\r`).
    pub fn new(max_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_len,
        }
    }

    /// Takes bytes from `data` up to and including the first `\n`, and never more.
    ///
    /// Returns how many bytes were consumed (at least one unless `data` is empty) and, when a
    /// line ended, the line. An empty line is consumed and yields nothing. Call again with the
    /// rest of `data` to continue.
    pub fn push(&mut self, data: &[u8]) -> (usize, Option<LineEvent>) {
        let newline = data.iter().position(|&b| b == b'\n');
        let segment = match newline {
            Some(i) => data.get(..i).unwrap_or_default(),
            None => data,
        };
        let consumed = newline.map_or(data.len(), |i| i + 1);
        let kept = segment.iter().filter(|&&b| b != b'\r').count();
        if self.buf.len().saturating_add(kept) > self.max_len {
            self.buf = Vec::new();
            return (consumed, Some(LineEvent::TooLong));
        }
        self.buf
            .extend(segment.iter().copied().filter(|&b| b != b'\r'));
        if newline.is_none() || self.buf.is_empty() {
            return (consumed, None);
        }
        (
            consumed,
            Some(LineEvent::Line(std::mem::take(&mut self.buf))),
        )
    }

    /// At EOF: the unterminated line buffered so far, if it is non-empty.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.buf.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.buf))
        }
    }

    /// Whether part of a line is buffered.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Option<LineEvent> {
        Some(LineEvent::Line(s.as_bytes().to_vec()))
    }

    #[test]
    fn stops_right_after_the_newline() {
        let mut r = LineReader::default();
        let data = b"work submit localhost echo\nPAYLOAD\nmore";
        let (n, ev) = r.push(data);
        assert_eq!(n, 27);
        assert_eq!(ev, line("work submit localhost echo"));
        assert_eq!(&data[n..], b"PAYLOAD\nmore");
        assert!(!r.has_partial());
    }

    #[test]
    fn drops_carriage_returns_anywhere() {
        let mut r = LineReader::default();
        assert_eq!(r.push(b"st\ratus\r\n"), (9, line("status")));
    }

    #[test]
    fn empty_lines_are_consumed_silently() {
        let mut r = LineReader::default();
        assert_eq!(r.push(b"\n"), (1, None));
        assert_eq!(r.push(b"\r\n"), (2, None));
        assert_eq!(r.push(b"\r\r\nx\n"), (3, None));
        assert_eq!(r.push(b"x\n"), (2, line("x")));
    }

    #[test]
    fn line_split_over_pushes() {
        let mut r = LineReader::default();
        assert_eq!(r.push(b"pi"), (2, None));
        assert!(r.has_partial());
        assert_eq!(r.push(b"ng no"), (5, None));
        assert_eq!(r.push(b"de2\nstatus\n"), (4, line("ping node2")));
        assert_eq!(r.push(b"status\n"), (7, line("status")));
    }

    #[test]
    fn byte_at_a_time_matches_whole_buffer() {
        let data = b"a\r\n\nbc\nd";
        let mut whole = LineReader::default();
        let mut lines_whole = Vec::new();
        let mut rest: &[u8] = data;
        while !rest.is_empty() {
            let (n, ev) = whole.push(rest);
            lines_whole.extend(ev);
            rest = &rest[n..];
        }
        let mut single = LineReader::default();
        let mut lines_single = Vec::new();
        for b in data {
            let (n, ev) = single.push(std::slice::from_ref(b));
            assert_eq!(n, 1);
            lines_single.extend(ev);
        }
        assert_eq!(lines_whole, lines_single);
        assert_eq!(whole.finish(), Some(b"d".to_vec()));
        assert_eq!(single.finish(), Some(b"d".to_vec()));
    }

    #[test]
    fn partial_line_at_eof() {
        let mut r = LineReader::default();
        assert_eq!(r.push(b"status"), (6, None));
        assert_eq!(r.finish(), Some(b"status".to_vec()));
        assert_eq!(r.finish(), None);
        let mut r = LineReader::default();
        r.push(b"\r");
        assert_eq!(r.finish(), None);
    }

    #[test]
    fn too_long_lines_are_reported() {
        let mut r = LineReader::new(4);
        assert_eq!(r.push(b"abcd"), (4, None));
        assert_eq!(r.push(b"e\nx"), (2, Some(LineEvent::TooLong)));
        assert!(!r.has_partial());
        assert_eq!(r.push(b"ab\r\r\n"), (5, line("ab")));
        assert_eq!(r.push(b""), (0, None));
    }

    /// The default bound: a line of `MAX_LINE_LEN` bytes is taken, one more byte is not, and
    /// the reader holds no more than the bound while the line arrives.
    #[test]
    fn default_bound_is_a_few_mib() {
        let mut r = LineReader::default();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..MAX_LINE_LEN / chunk.len() {
            assert_eq!(r.push(&chunk), (chunk.len(), None));
        }
        assert!(r.buf.capacity() <= MAX_LINE_LEN);
        assert_eq!(r.push(b"\n").1.map(|e| e != LineEvent::TooLong), Some(true));
        for _ in 0..MAX_LINE_LEN / chunk.len() {
            r.push(&chunk);
        }
        assert_eq!(r.push(b"y"), (1, Some(LineEvent::TooLong)));
        assert_eq!(r.buf.capacity(), 0);
    }
}
