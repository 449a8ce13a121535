//! How `millstream produce` cuts its input into records: one record per line, the line
//! terminator (`\n` or `\r\n`) removed, and with a key separator the part before its first
//! occurrence as the key.
//!
//! Input is whatever a user pipes in, so nothing here trusts it: a line longer than the
//! limit is an error before it is buffered whole (a file without newlines must not be read
//! into memory at once), and every failure is a [`ProduceInputError`] naming the line.

use std::io::{BufRead, Read};

/// The default limit on the length of one input line, terminator excluded: far above any
/// sensible record, far below what would exhaust memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 20;

/// What is wrong with the input of `millstream produce`.
#[derive(Debug, thiserror::Error)]
pub enum ProduceInputError {
    /// `--key-separator ""`: an empty separator would split every line before its first byte.
    #[error("--key-separator must not be empty")]
    EmptySeparator,
    /// `--max-line-bytes 0`.
    #[error("the maximum line length must be at least 1 byte")]
    ZeroMaxLineBytes,
    /// With a key separator, a line that does not contain it.
    #[error("line {line} has no key separator {separator:?}")]
    MissingSeparator {
        /// The line number, from 1.
        line: u64,
        /// The separator, as given.
        separator: String,
    },
    /// A line longer than the limit (terminator excluded).
    #[error("line {line} is longer than {max} bytes (the limit on one record's line)")]
    LineTooLong {
        /// The line number, from 1.
        line: u64,
        /// The limit.
        max: usize,
    },
    /// Reading the input failed.
    #[error("reading line {line}: {source}")]
    Read {
        /// The number of the line being read, from 1.
        line: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// One input line as a record: the key (with a separator) and the value. Both borrow the
/// line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    /// The key: the bytes before the first separator, if a separator is configured.
    pub key: Option<&'a [u8]>,
    /// The value: the whole line, or the bytes after the first separator.
    pub value: &'a [u8],
}

/// Reads records from lines of a [`BufRead`].
#[derive(Debug)]
pub struct LineRecords<R> {
    reader: R,
    separator: Option<String>,
    max_line_bytes: usize,
    line_number: u64,
    line: Vec<u8>,
}

impl<R: BufRead> LineRecords<R> {
    /// Records from the lines of `reader`, split at the first `separator` if given, each line
    /// at most `max_line_bytes` long (terminator excluded).
    pub fn new(reader: R, separator: Option<&str>, max_line_bytes: usize) -> Result<Self, ProduceInputError> {
        if separator == Some("") {
            return Err(ProduceInputError::EmptySeparator);
        }
        if max_line_bytes == 0 {
            return Err(ProduceInputError::ZeroMaxLineBytes);
        }
        Ok(LineRecords {
            reader,
            separator: separator.map(str::to_owned),
            max_line_bytes,
            line_number: 0,
            line: Vec::new(),
        })
    }

    /// The number of the last line returned (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    /// The underlying reader (e.g. to see whether more input is buffered).
    pub fn reader(&self) -> &R {
        &self.reader
    }

    /// The next line's record, `None` at the end of the input. A last line without a
    /// terminator is a line; an empty input has none.
    pub fn next_record(&mut self) -> Result<Option<ParsedLine<'_>>, ProduceInputError> {
        self.line.clear();
        let line = self.line_number + 1;
        // Room for the longest allowed line plus "\r\n": anything longer is cut off here,
        // before it is buffered, and reported below.
        let limit = (self.max_line_bytes as u64).saturating_add(2);
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.line)
            .map_err(|source| ProduceInputError::Read { line, source })?;
        if n == 0 {
            return Ok(None);
        }
        self.line_number = line;
        let mut end = self.line.len();
        if self.line.last() == Some(&b'\n') {
            end -= 1;
            if end > 0 && self.line[end - 1] == b'\r' {
                end -= 1;
            }
        } else if self.line.len() as u64 == limit {
            return Err(ProduceInputError::LineTooLong { line, max: self.max_line_bytes });
        }
        if end > self.max_line_bytes {
            return Err(ProduceInputError::LineTooLong { line, max: self.max_line_bytes });
        }
        let text = &self.line[..end];
        Ok(Some(match &self.separator {
            None => ParsedLine { key: None, value: text },
            Some(sep) => split_at_separator(text, sep.as_bytes())
                .ok_or_else(|| ProduceInputError::MissingSeparator { line, separator: sep.clone() })?,
        }))
    }
}

/// Splits `line` at the first occurrence of the non-empty `separator`.
fn split_at_separator<'a>(line: &'a [u8], separator: &[u8]) -> Option<ParsedLine<'a>> {
    let at = line.windows(separator.len()).position(|w| w == separator)?;
    Some(ParsedLine { key: Some(&line[..at]), value: &line[at + separator.len()..] })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records as owned (key, value) pairs.
    type Owned = Vec<(Option<Vec<u8>>, Vec<u8>)>;

    fn all(input: &[u8], sep: Option<&str>, max: usize) -> Result<Owned, ProduceInputError> {
        let mut records = LineRecords::new(input, sep, max)?;
        let mut out = Vec::new();
        while let Some(r) = records.next_record()? {
            out.push((r.key.map(<[u8]>::to_vec), r.value.to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn lines_terminators_and_keys() {
        let got = all(b"a=1\r\nb=2=3\n=\nlast=x", Some("="), 100).expect("valid input");
        let want: Owned = vec![
            (Some(b"a".to_vec()), b"1".to_vec()),
            (Some(b"b".to_vec()), b"2=3".to_vec()),
            (Some(Vec::new()), Vec::new()),
            (Some(b"last".to_vec()), b"x".to_vec()),
        ];
        assert_eq!(got, want);
        assert_eq!(all(b"", None, 10).expect("empty").len(), 0);
        assert_eq!(all(b"\n\n", None, 10).expect("blank lines"), vec![(None, vec![]), (None, vec![])]);
        // A lone "\r" before the end of the input is part of the value.
        assert_eq!(all(b"x\r", None, 10).expect("cr"), vec![(None, b"x\r".to_vec())]);
    }

    /// From a fuzz run (target `produce_input`): with "\r" as the separator, the "\r" of a
    /// "\r\n" terminator is not a separator (terminators go first).
    #[test]
    fn a_carriage_return_separator_is_not_taken_from_the_terminator() {
        let got = all(b"k\rv\r\nno separator\r\n", Some("\r"), 100);
        assert!(matches!(got, Err(ProduceInputError::MissingSeparator { line: 2, .. })), "{got:?}");
        let got = all(b"k\rv\r\n", Some("\r"), 100).expect("one line");
        assert_eq!(got, vec![(Some(b"k".to_vec()), b"v".to_vec())]);
    }

    #[test]
    fn errors_name_the_line() {
        match all(b"k=v\nno separator\n", Some("="), 100) {
            Err(ProduceInputError::MissingSeparator { line: 2, separator }) => assert_eq!(separator, "="),
            other => panic!("expected MissingSeparator, got {other:?}"),
        }
        assert!(matches!(LineRecords::new(&b""[..], Some(""), 10), Err(ProduceInputError::EmptySeparator)));
        assert!(matches!(LineRecords::new(&b""[..], None, 0), Err(ProduceInputError::ZeroMaxLineBytes)));
    }

    #[test]
    fn line_length_limit_holds_with_and_without_terminators() {
        assert_eq!(all(b"12345\r\n12345\n12345", None, 5).expect("at the limit").len(), 3);
        for input in [&b"123456\n"[..], b"123456", b"12345\r\r\n", b"1234567890123"] {
            assert!(
                matches!(all(input, None, 5), Err(ProduceInputError::LineTooLong { line: 1, max: 5 })),
                "{input:?}"
            );
        }
        assert!(matches!(
            all(b"ok\n123456789", None, 5),
            Err(ProduceInputError::LineTooLong { line: 2, .. })
        ));
    }
}
