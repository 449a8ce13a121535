//! Query answers and their order-independent checksum (see `docs/nexmark.md`).
//!
//! A result row is rendered as its fields joined by `|` (integers in decimal, times in
//! epoch milliseconds, strings as they are). The checksum of an answer is the wrapping
//! 64-bit sum of the FNV-1a-64 hashes of its rows' UTF-8 text, so it does not depend on
//! the order rows are produced in; two answers agree when their row counts and checksums
//! are equal.
//!
//! ```
//! use millstream_nexmark::answer::{Answer, ResultRow};
//! use millstream_nexmark::queries::Q2Row;
//! let rows = vec![Q2Row { auction: 123, price: 42 }, Q2Row { auction: 246, price: 7 }];
//! assert_eq!(rows[0].render(), "123|42");
//! let from_rows = Answer::from_rows(&rows);
//! let from_lines = Answer::from_lines(["246|7", "123|42"]);
//! assert_eq!(from_rows, from_lines);
//! assert_eq!(from_rows.rows, 2);
//! ```

use millstream_model::CombineFn;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The FNV-1a-64 offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// The FNV-1a-64 prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental FNV-1a-64 hash of UTF-8 text. It is a [`fmt::Write`], so a row can be
/// rendered straight into it without building a `String`.
///
/// ```
/// use millstream_nexmark::answer::{fnv1a64, Fnv1a64};
/// use std::fmt::Write;
/// let mut h = Fnv1a64::new();
/// write!(h, "{}|{}", 1, "a").unwrap();
/// assert_eq!(h.finish(), fnv1a64(b"1|a"));
/// assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a64 {
    /// A hash of nothing yet (the offset basis).
    pub fn new() -> Self {
        Fnv1a64(FNV_OFFSET)
    }

    /// Feeds bytes.
    #[inline]
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        self.0 = h;
    }

    /// Feeds the decimal text of an integer.
    #[inline]
    pub fn write_i64(&mut self, v: i64) {
        let mut buf = [0u8; 20];
        let text = format_i64(v, &mut buf);
        self.write_bytes(text);
    }

    /// The hash of everything fed so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Write for Fnv1a64 {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// The FNV-1a-64 hash of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::new();
    h.write_bytes(bytes);
    h.finish()
}

/// Writes the decimal text of `v` into the end of `buf`, returning that text.
fn format_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let negative = v < 0;
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Where a row's fields are written: a `String` (to render it) or a hash (to checksum it
/// without allocating).
pub trait RowWriter {
    /// Writes text as it is.
    fn text(&mut self, s: &str);
    /// Writes an integer in decimal.
    fn int(&mut self, v: i64);
}

impl RowWriter for Fnv1a64 {
    #[inline]
    fn text(&mut self, s: &str) {
        self.write_bytes(s.as_bytes());
    }
    #[inline]
    fn int(&mut self, v: i64) {
        self.write_i64(v);
    }
}

impl RowWriter for String {
    fn text(&mut self, s: &str) {
        self.push_str(s);
    }
    fn int(&mut self, v: i64) {
        let mut buf = [0u8; 20];
        let text = format_i64(v, &mut buf);
        // Decimal digits and '-' are ASCII.
        self.push_str(std::str::from_utf8(text).unwrap_or_default());
    }
}

/// One field of a result row, for [`write_fields`].
#[derive(Clone, Copy, Debug)]
pub enum Field<'a> {
    /// An integer (or a time in epoch milliseconds).
    Int(i64),
    /// A string, as it is.
    Text(&'a str),
}

/// Writes `fields` joined by `|`.
#[inline]
pub fn write_fields<W: RowWriter + ?Sized>(w: &mut W, fields: &[Field<'_>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            w.text("|");
        }
        match *f {
            Field::Int(v) => w.int(v),
            Field::Text(s) => w.text(s),
        }
    }
}

/// A typed result row of a query, rendered as its fields joined by `|`.
pub trait ResultRow {
    /// Writes the row's fields, joined by `|`, to `w`.
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W);

    /// The row's text.
    fn render(&self) -> String {
        let mut s = String::new();
        self.write_row(&mut s);
        s
    }

    /// The FNV-1a-64 hash of the row's text, computed without rendering it to a string.
    fn row_hash(&self) -> u64 {
        let mut h = Fnv1a64::new();
        self.write_row(&mut h);
        h.finish()
    }
}

impl<R: ResultRow + ?Sized> ResultRow for &R {
    fn write_row<W: RowWriter + ?Sized>(&self, w: &mut W) {
        (**self).write_row(w)
    }
}

/// A query's answer, summarized: how many rows and their order-independent checksum
/// (the wrapping sum of the rows' FNV-1a-64 hashes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Answer {
    /// Number of result rows.
    pub rows: u64,
    /// Wrapping sum of the FNV-1a-64 hashes of the rows' text.
    pub checksum: u64,
}

impl Answer {
    /// The answer with no rows.
    pub fn new() -> Self {
        Answer::default()
    }

    /// Adds one row by the hash of its text.
    #[inline]
    pub fn add_hash(&mut self, hash: u64) {
        self.rows += 1;
        self.checksum = self.checksum.wrapping_add(hash);
    }

    /// Adds one row given as rendered text.
    pub fn add_line(&mut self, line: &str) {
        self.add_hash(fnv1a64(line.as_bytes()));
    }

    /// Adds one typed row.
    #[inline]
    pub fn add_row<R: ResultRow + ?Sized>(&mut self, row: &R) {
        self.add_hash(row.row_hash());
    }

    /// Folds in another (partial) answer: the answer of both sets of rows.
    pub fn merge(&mut self, other: Answer) {
        self.rows += other.rows;
        self.checksum = self.checksum.wrapping_add(other.checksum);
    }

    /// The answer of rendered rows.
    pub fn from_lines<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> Self {
        let mut a = Answer::new();
        for l in lines {
            a.add_line(l.as_ref());
        }
        a
    }

    /// The answer of typed rows.
    pub fn from_rows<R: ResultRow>(rows: impl IntoIterator<Item = R>) -> Self {
        let mut a = Answer::new();
        for r in rows {
            a.add_row(&r);
        }
        a
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rows, checksum {:016x}", self.rows, self.checksum)
    }
}

/// A [`CombineFn`] that folds result rows (or row hashes, `u64`) into an [`Answer`], so a
/// pipeline can compute its own answer (`rows.combine_globally(AnswerFn)`). Accumulators
/// merge by wrapping addition, so it lifts ahead of the shuffle.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnswerFn;

impl CombineFn<u64> for AnswerFn {
    type Accumulator = Answer;
    type Output = Answer;
    fn create_accumulator(&self) -> Answer {
        Answer::new()
    }
    fn add_input(&self, acc: &mut Answer, hash: u64) {
        acc.add_hash(hash);
    }
    fn merge_accumulators(&self, acc: &mut Answer, other: Answer) {
        acc.merge(other);
    }
    fn extract_output(&self, acc: &Answer) -> Answer {
        *acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_render_like_display() {
        for v in [0, 1, -1, 9, 10, 123456789, i64::MIN, i64::MAX, -1000] {
            let mut s = String::new();
            s.int(v);
            assert_eq!(s, v.to_string());
            let mut h = Fnv1a64::new();
            h.int(v);
            assert_eq!(h.finish(), fnv1a64(v.to_string().as_bytes()));
        }
    }

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a-64 test vectors.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn answers_do_not_depend_on_order_and_merge() {
        let a = Answer::from_lines(["x|1", "y|2", "z|3"]);
        let b = Answer::from_lines(["z|3", "x|1", "y|2"]);
        assert_eq!(a, b);
        let mut c = Answer::from_lines(["x|1"]);
        c.merge(Answer::from_lines(["y|2", "z|3"]));
        assert_eq!(a, c);
        assert_eq!(a.rows, 3);
        assert_ne!(a, Answer::from_lines(["x|1", "y|2", "z|4"]));
    }

    #[test]
    fn fields_join_with_bars() {
        let mut s = String::new();
        write_fields(&mut s, &[Field::Int(-5), Field::Text("a b"), Field::Int(7)]);
        assert_eq!(s, "-5|a b|7");
        let mut h = Fnv1a64::new();
        write_fields(&mut h, &[Field::Int(-5), Field::Text("a b"), Field::Int(7)]);
        assert_eq!(h.finish(), fnv1a64(b"-5|a b|7"));
    }
}
