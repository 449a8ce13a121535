//! Records and their compact encoding inside a batch payload.
//!
//! Each record is encoded as (all integers unsigned LEB128 varints):
//!
//! ```text
//! varint  max_timestamp_ms - timestamp_ms (two's complement wrapping difference, as u64;
//!         max_timestamp_ms is the batch header's)
//! varint  key length + 1, or 0 for "no key"
//! bytes   key
//! varint  value length
//! bytes   value
//! varint  header count
//! per header:
//!   varint  name length, bytes name (UTF-8)
//!   varint  value length, bytes value
//! ```
//!
//! A record's offset is not stored: it is the batch's base offset plus the record's index in
//! the batch.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// One record: an optional key, a value, an event timestamp and headers.
///
/// Keys and values are [`Bytes`], so records read from the log share the buffer they were
/// read into instead of being copied one by one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// The key: records with a key go to the partition its hash picks (see
    /// [`crate::partition_for_key`]); `None` lets the producer choose.
    pub key: Option<Bytes>,
    /// The value.
    pub value: Bytes,
    /// Event time in milliseconds since the Unix epoch (any `i64`; used for time retention).
    pub timestamp_ms: i64,
    /// Headers: names and values, in order, duplicates allowed.
    pub headers: Vec<(String, Bytes)>,
}

impl Record {
    /// A record with `value`, no key, no headers, timestamped now.
    pub fn new(value: impl Into<Bytes>) -> Self {
        Record { key: None, value: value.into(), timestamp_ms: now_ms(), headers: Vec::new() }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the timestamp (milliseconds since the Unix epoch).
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = timestamp_ms;
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// An upper bound on the encoded size of this record in bytes.
    pub(crate) fn encoded_len_bound(&self) -> usize {
        let key = self.key.as_ref().map_or(0, Bytes::len);
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len() + 20).sum();
        key + self.value.len() + headers + 40
    }
}

/// A record read back from the log, with its offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredRecord {
    /// The record's offset in its partition.
    pub offset: u64,
    /// The record.
    pub record: Record,
}

/// The current wall-clock time in milliseconds since the Unix epoch (negative before 1970).
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 varint at `*pos`, advancing it. `None` if truncated or longer
/// than 10 bytes.
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            return None;
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Encodes one record (see the module docs) relative to the batch's `max_timestamp_ms`.
pub(crate) fn encode_record(out: &mut Vec<u8>, record: &Record, max_timestamp_ms: i64) {
    put_varint(out, max_timestamp_ms.wrapping_sub(record.timestamp_ms) as u64);
    match &record.key {
        Some(key) => {
            put_varint(out, key.len() as u64 + 1);
            out.extend_from_slice(key);
        }
        None => put_varint(out, 0),
    }
    put_varint(out, record.value.len() as u64);
    out.extend_from_slice(&record.value);
    put_varint(out, record.headers.len() as u64);
    for (name, value) in &record.headers {
        put_varint(out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        put_varint(out, value.len() as u64);
        out.extend_from_slice(value);
    }
}

/// Decodes the records of one batch payload in order.
#[derive(Debug)]
pub(crate) struct RecordDecoder {
    payload: Bytes,
    pos: usize,
    max_timestamp_ms: i64,
}

impl RecordDecoder {
    /// A decoder over `payload` starting at byte `pos` (after any staged-id prefix).
    pub(crate) fn new(payload: Bytes, pos: usize, max_timestamp_ms: i64) -> Self {
        RecordDecoder { payload, pos, max_timestamp_ms }
    }

    /// Whether all bytes were consumed.
    pub(crate) fn is_done(&self) -> bool {
        self.pos >= self.payload.len()
    }

    fn varint(&mut self, what: &str) -> Result<u64, String> {
        get_varint(&self.payload, &mut self.pos)
            .ok_or_else(|| format!("truncated or overlong varint for {what} at payload byte {}", self.pos))
    }

    fn slice(&mut self, len: u64, what: &str) -> Result<Bytes, String> {
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= self.payload.len())
            .ok_or_else(|| format!("{what} of {len} bytes at payload byte {start} runs past the payload"))?;
        self.pos = end;
        Ok(self.payload.slice(start..end))
    }

    /// Decodes the next record. The error is a reason for a [`crate::LogError::Corrupt`].
    pub(crate) fn next_record(&mut self) -> Result<Record, String> {
        let delta = self.varint("timestamp")?;
        let timestamp_ms = self.max_timestamp_ms.wrapping_sub(delta as i64);
        let key = match self.varint("key length")? {
            0 => None,
            n => Some(self.slice(n - 1, "key")?),
        };
        let value_len = self.varint("value length")?;
        let value = self.slice(value_len, "value")?;
        let count = self.varint("header count")?;
        let mut headers = Vec::with_capacity(usize::try_from(count.min(64)).unwrap_or(0));
        for _ in 0..count {
            let name_len = self.varint("header name length")?;
            let name = self.slice(name_len, "header name")?;
            let name =
                String::from_utf8(name.to_vec()).map_err(|_| "header name is not UTF-8".to_string())?;
            let value_len = self.varint("header value length")?;
            headers.push((name, self.slice(value_len, "header value")?));
        }
        Ok(Record { key, value, timestamp_ms, headers })
    }

    /// Skips the next record without building it.
    pub(crate) fn skip_record(&mut self) -> Result<(), String> {
        self.varint("timestamp")?;
        if let n @ 1.. = self.varint("key length")? {
            self.slice(n - 1, "key")?;
        }
        let value_len = self.varint("value length")?;
        self.slice(value_len, "value")?;
        for _ in 0..self.varint("header count")? {
            let name_len = self.varint("header name length")?;
            self.slice(name_len, "header name")?;
            let value_len = self.varint("header value length")?;
            self.slice(value_len, "header value")?;
        }
        Ok(())
    }

    /// The current byte position in the payload.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut pos = 0;
            assert_eq!(get_varint(&buf, &mut pos), Some(v), "{v}");
            assert_eq!(pos, buf.len());
        }
        let mut buf = Vec::new();
        put_varint(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
    }

    #[test]
    fn truncated_and_overlong_varints_are_rejected() {
        let mut pos = 0;
        assert_eq!(get_varint(&[0x80, 0x80], &mut pos), None);
        let mut pos = 0;
        assert_eq!(get_varint(&[0xff; 11], &mut pos), None);
        let mut pos = 0;
        assert_eq!(get_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], &mut pos), None);
    }

    #[test]
    fn records_round_trip_including_extreme_timestamps() {
        let records = vec![
            Record::new("plain").with_timestamp(5),
            Record::new("").with_key("").with_timestamp(i64::MIN),
            Record::new(vec![0u8; 1000])
                .with_key("k")
                .with_timestamp(i64::MAX)
                .with_header("h1", "v1")
                .with_header("", ""),
        ];
        let max = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(0);
        let mut buf = Vec::new();
        for r in &records {
            encode_record(&mut buf, r, max);
            assert!(buf.len() <= records.iter().map(Record::encoded_len_bound).sum());
        }
        let mut decoder = RecordDecoder::new(Bytes::from(buf.clone()), 0, max);
        for r in &records {
            assert_eq!(&decoder.next_record().expect("decode"), r);
        }
        assert!(decoder.is_done());
        let mut skipper = RecordDecoder::new(Bytes::from(buf), 0, max);
        for _ in &records {
            skipper.skip_record().expect("skip");
        }
        assert!(skipper.is_done());
    }

    #[test]
    fn truncated_record_is_an_error() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &Record::new("value").with_key("key").with_timestamp(1), 1);
        for cut in 0..buf.len() {
            let mut decoder = RecordDecoder::new(Bytes::copy_from_slice(&buf[..cut]), 0, 1);
            assert!(decoder.next_record().is_err(), "cut at {cut}");
        }
    }
}
