//! The framing shared by state blobs and manifests.
//!
//! ```text
//! offset  size  field
//! 0       4     magic: b"MSST" (state blob) or b"MSMF" (manifest)
//! 4       2     format version, u16 little endian (currently 1)
//! 6       2     flags, u16 little endian (currently always 0)
//! 8       8     payload length in bytes, u64 little endian
//! 16      n     payload
//! 16+n    4     CRC32 (IEEE, as computed by crc32fast) of bytes 0..16+n, u32 little endian
//! ```

use crate::error::CheckpointError;

/// Magic bytes that open a state blob.
pub const BLOB_MAGIC: [u8; 4] = *b"MSST";
/// Magic bytes that open a manifest.
pub const MANIFEST_MAGIC: [u8; 4] = *b"MSMF";
/// The framing version this build writes, and the newest it reads.
pub const FRAME_VERSION: u16 = 1;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 16;
/// Size of the CRC32 trailer in bytes.
pub const TRAILER_LEN: usize = 4;

/// Frames `payload`: header, payload, CRC32 trailer. Returns the framed bytes and their CRC32.
pub(crate) fn encode(magic: [u8; 4], payload: &[u8]) -> (Vec<u8>, u32) {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TRAILER_LEN);
    out.extend_from_slice(&magic);
    out.extend_from_slice(&FRAME_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    (out, crc)
}

/// A checked frame: where its payload is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    /// Byte range of the payload within the framed bytes.
    pub payload: (usize, usize),
}

/// Checks the framing of `bytes` read from `path`: magic, length, CRC32, the CRC32 against
/// `expected_checksum` (what a manifest recorded, if any), then version and flags.
///
/// The CRC32 is checked before the version so that a damaged version field reads as
/// corruption, and a `Version` error always means a genuine, intact file of another version
/// (and, with `expected_checksum`, the very file the manifest recorded).
pub(crate) fn decode(
    path: &str,
    magic: [u8; 4],
    bytes: &[u8],
    expected_checksum: Option<u32>,
) -> Result<Frame, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt { path: path.to_string(), reason };
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(corrupt(format!(
            "file is {} bytes, shorter than the {} bytes of header and checksum",
            bytes.len(),
            HEADER_LEN + TRAILER_LEN
        )));
    }
    if bytes[0..4] != magic {
        return Err(corrupt(format!(
            "bad magic bytes {:?}, expected {:?}",
            String::from_utf8_lossy(&bytes[0..4]),
            String::from_utf8_lossy(&magic)
        )));
    }
    let payload_len = u64::from_le_bytes(le_array(&bytes[8..16]));
    let expected_total = (HEADER_LEN as u64 + TRAILER_LEN as u64).checked_add(payload_len);
    if expected_total != Some(bytes.len() as u64) {
        return Err(corrupt(format!(
            "header says {payload_len} payload bytes, which needs a {} byte file, but the file is {} bytes \
             (truncated or damaged)",
            payload_len.saturating_add((HEADER_LEN + TRAILER_LEN) as u64),
            bytes.len()
        )));
    }
    let body_end = bytes.len() - TRAILER_LEN;
    let stored = u32::from_le_bytes(le_array(&bytes[body_end..]));
    let computed = crc32fast::hash(&bytes[..body_end]);
    if stored != computed {
        return Err(corrupt(format!(
            "checksum mismatch: stored crc32 {stored:#010x}, contents hash to {computed:#010x}"
        )));
    }
    if let Some(expected) = expected_checksum {
        if stored != expected {
            return Err(corrupt(format!(
                "file checksum {stored:#010x} differs from the {expected:#010x} the manifest recorded \
                 (an intact file, but not the one the checkpoint wrote)"
            )));
        }
    }
    let version = u16::from_le_bytes(le_array(&bytes[4..6]));
    if version != FRAME_VERSION {
        return Err(CheckpointError::Version {
            path: path.to_string(),
            found: u32::from(version),
            supported: u32::from(FRAME_VERSION),
        });
    }
    let flags = u16::from_le_bytes(le_array(&bytes[6..8]));
    if flags != 0 {
        return Err(corrupt(format!("unsupported flags {flags:#06x}")));
    }
    Ok(Frame { payload: (HEADER_LEN, body_end) })
}

fn le_array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let (framed, crc) = encode(BLOB_MAGIC, b"hello");
        assert_eq!(framed.len(), HEADER_LEN + 5 + TRAILER_LEN);
        assert_eq!(&framed[0..4], b"MSST");
        assert_eq!(&framed[4..6], &1u16.to_le_bytes());
        assert_eq!(&framed[6..8], &[0, 0]);
        assert_eq!(&framed[8..16], &5u64.to_le_bytes());
        assert_eq!(&framed[16..21], b"hello");
        assert_eq!(&framed[21..], &crc.to_le_bytes());
        assert_eq!(crc, crc32fast::hash(&framed[..21]));
        let frame = decode("f", BLOB_MAGIC, &framed, Some(crc)).expect("valid frame");
        assert_eq!(&framed[frame.payload.0..frame.payload.1], b"hello");
        let err = decode("f", BLOB_MAGIC, &framed, Some(crc ^ 1)).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn empty_payload() {
        let (framed, _) = encode(MANIFEST_MAGIC, b"");
        let frame = decode("f", MANIFEST_MAGIC, &framed, None).expect("valid frame");
        assert_eq!(frame.payload.0, frame.payload.1);
    }

    #[test]
    fn wrong_magic_is_corrupt() {
        let (framed, _) = encode(BLOB_MAGIC, b"x");
        let err = decode("some/file", MANIFEST_MAGIC, &framed, None).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { ref path, .. } if path == "some/file"), "{err}");
    }

    #[test]
    fn every_single_byte_flip_and_truncation_is_detected() {
        let (framed, _) = encode(BLOB_MAGIC, b"some state bytes");
        for i in 0..framed.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut damaged = framed.clone();
                damaged[i] ^= mask;
                let err = decode("f", BLOB_MAGIC, &damaged, None).unwrap_err();
                assert!(matches!(err, CheckpointError::Corrupt { .. }), "byte {i} mask {mask:#x}: {err}");
            }
        }
        for len in 0..framed.len() {
            assert!(decode("f", BLOB_MAGIC, &framed[..len], None).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn intact_newer_version_is_a_version_error() {
        let (mut framed, _) = encode(BLOB_MAGIC, b"x");
        framed[4..6].copy_from_slice(&2u16.to_le_bytes());
        let body_end = framed.len() - TRAILER_LEN;
        let crc = crc32fast::hash(&framed[..body_end]);
        framed[body_end..].copy_from_slice(&crc.to_le_bytes());
        let err = decode("f", BLOB_MAGIC, &framed, None).unwrap_err();
        assert!(matches!(err, CheckpointError::Version { found: 2, .. }), "{err}");
    }
}
