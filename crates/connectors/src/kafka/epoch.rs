//! The epoch tag: the header the exactly-once [`KafkaSink`](super::KafkaSink) puts on every
//! record it publishes, and that [`KafkaSource`](super::KafkaSource) reads to see each
//! published epoch exactly once, also on brokers that show aborted transactions to
//! `read_committed` readers (see `docs/connectors.md`, "Exactly-once output").
//!
//! The value is text: `1/<slot>/<epoch>/<origin>/<attempt>/<count>/<sink id>`, with
//! `origin` and `attempt` as 16 hex digits.
//! * `sink id` and `slot` (the worker that pre-committed the epoch) name a sequence of
//!   epochs published in order;
//! * `epoch` and `origin` (a random number of the sink instance that pre-committed the
//!   epoch, kept when another instance publishes it after a restart) name the epoch's
//!   content: two copies with the same slot, epoch and origin hold the same records;
//! * `attempt` (a random number of the sink instance that publishes) tells copies apart;
//! * `count` is how many records of this copy went to this record's partition, so a reader
//!   of one partition knows when it has seen all of them.

use serde::{Deserialize, Serialize};

/// The header's name.
pub const EPOCH_HEADER: &str = "millstream.epoch";

/// What the epoch header of one record says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct EpochTag {
    pub sink: String,
    pub slot: u32,
    pub epoch: u64,
    pub origin: u64,
    pub attempt: u64,
    pub count: u32,
}

impl EpochTag {
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "1/{}/{}/{:016x}/{:016x}/{}/{}",
            self.slot, self.epoch, self.origin, self.attempt, self.count, self.sink
        )
        .into_bytes()
    }

    pub fn parse(value: &[u8]) -> Result<EpochTag, String> {
        let bad =
            |why: &str| format!("bad {EPOCH_HEADER} header {:?}: {why}", String::from_utf8_lossy(value));
        let text = std::str::from_utf8(value).map_err(|_| bad("not UTF-8"))?;
        let mut parts = text.splitn(7, '/');
        let mut next = |name: &str| parts.next().ok_or_else(|| bad(&format!("no {name}")));
        if next("version")? != "1" {
            return Err(bad("unknown version"));
        }
        let number = |s: &str, name: &str| s.parse::<u64>().map_err(|_| bad(&format!("bad {name}")));
        let hex = |s: &str, name: &str| u64::from_str_radix(s, 16).map_err(|_| bad(&format!("bad {name}")));
        let slot = number(next("slot")?, "slot")?;
        let epoch = number(next("epoch")?, "epoch")?;
        let origin = hex(next("origin")?, "origin")?;
        let attempt = hex(next("attempt")?, "attempt")?;
        let count = number(next("count")?, "count")?;
        let sink = next("sink id")?.to_owned();
        Ok(EpochTag {
            sink,
            slot: u32::try_from(slot).map_err(|_| bad("slot out of range"))?,
            epoch,
            origin,
            attempt,
            count: u32::try_from(count).ok().filter(|c| *c > 0).ok_or_else(|| bad("bad count"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_with_any_sink_id() {
        let tag = EpochTag {
            sink: "orders/v2 sink".into(),
            slot: 3,
            epoch: 41,
            origin: u64::MAX,
            attempt: 7,
            count: 12,
        };
        assert_eq!(EpochTag::parse(&tag.encode()).unwrap(), tag);
    }

    #[test]
    fn malformed_tags_are_errors_naming_the_header() {
        for bad in [&b"2/1/1/0/0/1/s"[..], b"1/x/1/0/0/1/s", b"1/1/1/0/0/0/s", b"1/1/1", b"\xff"] {
            let err = EpochTag::parse(bad).unwrap_err();
            assert!(err.starts_with("bad millstream.epoch header"), "{err}");
        }
    }
}
