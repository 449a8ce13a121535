//! The record-batch frame: the unit written to segment files and staging files.
//!
//! ```text
//! offset  size  field
//! 0       4     magic: b"MSLB"
//! 4       1     format version (currently 1)
//! 5       1     flags: bit 0 = the payload starts with a staged batch id; other bits 0
//! 6       2     reserved, 0
//! 8       8     base offset, u64 little endian (the first record's offset)
//! 16      8     max timestamp, i64 little endian (the largest record timestamp)
//! 24      4     record count, u32 little endian
//! 28      4     payload length in bytes, u32 little endian
//! 32      4     CRC32 (IEEE, crc32fast) of bytes 0..32 followed by the payload, u32 LE
//! 36      n     payload: [varint id length, id bytes if flag bit 0] then the records
//! ```

use bytes::Bytes;

use crate::record::{encode_record, get_varint, put_varint, Record, RecordDecoder};

/// Magic bytes that open every batch.
pub const BATCH_MAGIC: [u8; 4] = *b"MSLB";
/// The batch format version this build writes, and the only one it reads.
pub const BATCH_VERSION: u8 = 1;
/// Size of the batch header in bytes.
pub const HEADER_LEN: usize = 36;
/// Flag bit: the payload starts with the id of the staged batch this batch commits.
pub const FLAG_STAGED_ID: u8 = 1;

/// A parsed batch header (the CRC is not yet verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub flags: u8,
    pub base_offset: u64,
    pub max_timestamp_ms: i64,
    pub record_count: u32,
    pub payload_len: u32,
    pub crc: u32,
}

/// Why a header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not a batch header at all (garbage, zeros, a torn write).
    BadMagic([u8; 4]),
    /// Magic bytes right, version unknown.
    Version(u8),
    /// Flags or reserved bits set that this version does not define.
    BadFlags(u8, u16),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::BadMagic(m) => write!(f, "bad magic bytes {m:02x?}, expected {BATCH_MAGIC:02x?}"),
            HeaderError::Version(v) => write!(f, "unknown batch format version {v}"),
            HeaderError::BadFlags(flags, reserved) => {
                write!(f, "undefined flags {flags:#04x} or reserved bits {reserved:#06x} set")
            }
        }
    }
}

fn le<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

impl BatchHeader {
    /// Parses the first [`HEADER_LEN`] bytes of `bytes` (which must be at least that long).
    pub(crate) fn parse(bytes: &[u8]) -> Result<BatchHeader, HeaderError> {
        let magic = le::<4>(&bytes[0..4]);
        if magic != BATCH_MAGIC {
            return Err(HeaderError::BadMagic(magic));
        }
        if bytes[4] != BATCH_VERSION {
            return Err(HeaderError::Version(bytes[4]));
        }
        let flags = bytes[5];
        let reserved = u16::from_le_bytes(le(&bytes[6..8]));
        if flags & !FLAG_STAGED_ID != 0 || reserved != 0 {
            return Err(HeaderError::BadFlags(flags, reserved));
        }
        Ok(BatchHeader {
            flags,
            base_offset: u64::from_le_bytes(le(&bytes[8..16])),
            max_timestamp_ms: i64::from_le_bytes(le(&bytes[16..24])),
            record_count: u32::from_le_bytes(le(&bytes[24..28])),
            payload_len: u32::from_le_bytes(le(&bytes[28..32])),
            crc: u32::from_le_bytes(le(&bytes[32..36])),
        })
    }

    /// Header plus payload length in bytes.
    pub(crate) fn frame_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.payload_len)
    }

    /// The offset after this batch's last record.
    pub(crate) fn next_offset(&self) -> u64 {
        self.base_offset.saturating_add(u64::from(self.record_count))
    }

    /// Whether `payload` matches the header's CRC. `header` is the raw header bytes.
    pub(crate) fn crc_matches(&self, header: &[u8], payload: &[u8]) -> bool {
        compute_crc(header, payload) == self.crc
    }

    /// The staged batch id (if the flag is set) and the payload position where records start.
    pub(crate) fn staged_id(&self, payload: &[u8]) -> Result<(Option<String>, usize), String> {
        if self.flags & FLAG_STAGED_ID == 0 {
            return Ok((None, 0));
        }
        let mut pos = 0;
        let len = get_varint(payload, &mut pos).ok_or("truncated staged id length")?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| pos.checked_add(l))
            .filter(|&e| e <= payload.len())
            .ok_or("staged id runs past the payload")?;
        let id = std::str::from_utf8(&payload[pos..end]).map_err(|_| "staged id is not UTF-8")?;
        Ok((Some(id.to_string()), end))
    }

    /// A decoder over the records of `payload` (this header's batch, CRC verified).
    pub(crate) fn decoder(&self, payload: Bytes) -> Result<RecordDecoder, String> {
        let (_, start) = self.staged_id(&payload)?;
        Ok(RecordDecoder::new(payload, start, self.max_timestamp_ms))
    }
}

/// CRC32 of the first 32 header bytes followed by the payload.
pub(crate) fn compute_crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..32]);
    hasher.update(payload);
    hasher.finalize()
}

/// The largest payload a batch can have.
pub const MAX_PAYLOAD_LEN: u64 = u32::MAX as u64;

/// Encodes batches into one reused buffer.
#[derive(Debug, Default)]
pub(crate) struct BatchEncoder {
    buf: Vec<u8>,
}

impl BatchEncoder {
    /// Encodes `records` as one frame with `base_offset`, optionally prefixed by a staged
    /// batch id. Returns the frame, or the payload size if it exceeds [`MAX_PAYLOAD_LEN`]
    /// (or there are more than `u32::MAX` records).
    pub(crate) fn encode<'a, I>(
        &mut self,
        base_offset: u64,
        records: I,
        staged_id: Option<&str>,
    ) -> Result<&[u8], u64>
    where
        I: Iterator<Item = &'a Record> + Clone,
    {
        let (mut count, mut max_ts, mut bound) = (0u64, i64::MIN, 0usize);
        for r in records.clone() {
            count += 1;
            max_ts = max_ts.max(r.timestamp_ms);
            bound = bound.saturating_add(r.encoded_len_bound());
        }
        if count == 0 {
            max_ts = 0;
        }
        let buf = &mut self.buf;
        buf.clear();
        buf.reserve(HEADER_LEN + bound + staged_id.map_or(0, |s| s.len() + 10));
        buf.resize(HEADER_LEN, 0);
        if let Some(id) = staged_id {
            put_varint(buf, id.len() as u64);
            buf.extend_from_slice(id.as_bytes());
        }
        for r in records {
            encode_record(buf, r, max_ts);
        }
        let payload_len = (buf.len() - HEADER_LEN) as u64;
        if payload_len > MAX_PAYLOAD_LEN || count > u64::from(u32::MAX) {
            return Err(payload_len);
        }
        buf[0..4].copy_from_slice(&BATCH_MAGIC);
        buf[4] = BATCH_VERSION;
        buf[5] = if staged_id.is_some() { FLAG_STAGED_ID } else { 0 };
        buf[16..24].copy_from_slice(&max_ts.to_le_bytes());
        buf[24..28].copy_from_slice(&(count as u32).to_le_bytes());
        buf[28..32].copy_from_slice(&(payload_len as u32).to_le_bytes());
        set_base_offset(buf, base_offset);
        Ok(buf)
    }
}

/// Rewrites the base offset of the frame in `frame` and its CRC.
pub(crate) fn set_base_offset(frame: &mut [u8], base_offset: u64) {
    frame[8..16].copy_from_slice(&base_offset.to_le_bytes());
    let (header, payload) = frame.split_at_mut(HEADER_LEN);
    let crc = compute_crc(header, payload);
    header[32..36].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<Record> {
        (0..5)
            .map(|i| Record::new(format!("value {i}")).with_key(format!("k{i}")).with_timestamp(100 + i))
            .collect()
    }

    #[test]
    fn frame_round_trips() {
        let mut enc = BatchEncoder::default();
        let recs = records();
        let frame = enc.encode(42, recs.iter(), None).expect("encode").to_vec();
        let header = BatchHeader::parse(&frame).expect("parse");
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.record_count, 5);
        assert_eq!(header.max_timestamp_ms, 104);
        assert_eq!(header.next_offset(), 47);
        assert_eq!(header.frame_len(), frame.len() as u64);
        assert!(header.crc_matches(&frame, &frame[HEADER_LEN..]));
        let mut decoder = header.decoder(Bytes::copy_from_slice(&frame[HEADER_LEN..])).expect("decoder");
        for r in &recs {
            assert_eq!(&decoder.next_record().expect("record"), r);
        }
        assert!(decoder.is_done());
    }

    #[test]
    fn header_layout_is_as_documented() {
        let mut enc = BatchEncoder::default();
        let recs = records();
        let frame = enc.encode(0x0102_0304_0506_0708, recs.iter(), None).expect("encode");
        assert_eq!(&frame[0..4], b"MSLB");
        assert_eq!(frame[4], 1);
        assert_eq!(&frame[5..8], &[0, 0, 0]);
        assert_eq!(&frame[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&frame[16..24], &104i64.to_le_bytes());
        assert_eq!(&frame[24..28], &5u32.to_le_bytes());
        assert_eq!(&frame[28..32], &((frame.len() - HEADER_LEN) as u32).to_le_bytes());
        let mut crc_input = frame[..32].to_vec();
        crc_input.extend_from_slice(&frame[HEADER_LEN..]);
        assert_eq!(&frame[32..36], &crc32fast::hash(&crc_input).to_le_bytes());
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let mut enc = BatchEncoder::default();
        let recs = records();
        let frame = enc.encode(7, recs.iter(), Some("tx-1")).expect("encode").to_vec();
        for byte in 0..frame.len() {
            for bit in 0..8 {
                let mut damaged = frame.clone();
                damaged[byte] ^= 1 << bit;
                let intact = match BatchHeader::parse(&damaged) {
                    Err(_) => false,
                    Ok(h) => {
                        h.frame_len() == damaged.len() as u64
                            && h.crc_matches(&damaged, &damaged[HEADER_LEN..])
                    }
                };
                assert!(!intact, "flip of bit {bit} in byte {byte} went unnoticed");
            }
        }
    }

    #[test]
    fn staged_id_prefix_and_rebasing() {
        let mut enc = BatchEncoder::default();
        let recs = records();
        let mut frame = enc.encode(0, recs.iter(), Some("epoch-9")).expect("encode").to_vec();
        set_base_offset(&mut frame, 1000);
        let header = BatchHeader::parse(&frame).expect("parse");
        assert_eq!(header.base_offset, 1000);
        assert!(header.crc_matches(&frame, &frame[HEADER_LEN..]));
        let payload = Bytes::copy_from_slice(&frame[HEADER_LEN..]);
        assert_eq!(header.staged_id(&payload).expect("id").0.as_deref(), Some("epoch-9"));
        let mut decoder = header.decoder(payload).expect("decoder");
        assert_eq!(decoder.next_record().expect("record"), recs[0]);
    }

    #[test]
    fn unknown_version_and_flags_are_reported() {
        let mut enc = BatchEncoder::default();
        let recs = records();
        let mut frame = enc.encode(0, recs.iter(), None).expect("encode").to_vec();
        frame[4] = 2;
        assert_eq!(BatchHeader::parse(&frame), Err(HeaderError::Version(2)));
        frame[4] = 1;
        frame[5] = 0x80;
        assert!(matches!(BatchHeader::parse(&frame), Err(HeaderError::BadFlags(0x80, 0))));
        assert!(matches!(BatchHeader::parse(&[0u8; HEADER_LEN]), Err(HeaderError::BadMagic(_))));
    }
}
