//! What [`KafkaSource`](super::KafkaSource) does with records that carry the epoch tag of
//! the exactly-once [`KafkaSink`](super::KafkaSink): per partition, it holds an epoch's
//! records back until it has all of them (the tag says how many went to the partition),
//! emits one complete copy of each epoch, and drops other copies and incomplete ones.
//!
//! On Apache Kafka, `read_committed` already shows only committed transactions, each a
//! complete copy, and at most one copy of an epoch is committed; this makes no
//! difference there. On brokers that show aborted transactions to `read_committed`
//! readers (tansu), an aborted copy can be incomplete (the writer died while sending) or
//! complete (it died before committing), and the restarted sink publishes the epoch again:
//! this is what keeps such copies out.
//!
//! The rules, for the records of one sink and slot in one partition, which are written by
//! one producer at a time and in epoch order:
//! * a record of an epoch already emitted (same epoch and origin, so the same content) is
//!   dropped;
//! * a record of another copy than the one being gathered means the gathered one will never
//!   complete (its writer was fenced before the new copy began): it is dropped;
//! * a record of the *same* copy but a later epoch while the earlier epoch is incomplete
//!   means records are missing from the partition: an error, never silent loss.

use super::epoch::EpochTag;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// How many emitted epochs each slot remembers to recognize a later copy. A copy of an
/// epoch comes only from the restart right after its first copy, so a few suffice.
const REMEMBERED_EPOCHS: usize = 16;

/// A record as read, kept until its epoch is complete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HeldRecord {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// The copy of an epoch being gathered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Gathering {
    epoch: u64,
    origin: u64,
    attempt: u64,
    count: u32,
    records: Vec<HeldRecord>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SlotState {
    /// The newest emitted epochs, as (epoch, origin).
    emitted: VecDeque<(u64, u64)>,
    gathering: Option<Gathering>,
}

/// The epoch bookkeeping of one partition; part of the partition's checkpoint position.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct EpochDeduplicator {
    slots: BTreeMap<(String, u32), SlotState>,
}

/// What to do with a tagged record.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Held until its epoch is complete.
    Held,
    /// A copy of an epoch already emitted: dropped.
    Duplicate,
    /// The epoch is complete: emit these records, in partition order.
    Complete(Vec<HeldRecord>),
}

impl EpochDeduplicator {
    /// Whether nothing is held or remembered (the position is then just an offset).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The offset of the oldest record held, if any.
    pub fn oldest_held(&self) -> Option<i64> {
        self.slots
            .values()
            .filter_map(|s| s.gathering.as_ref())
            .filter_map(|g| g.records.first())
            .map(|r| r.offset)
            .min()
    }

    /// Takes one tagged record.
    pub fn offer(&mut self, tag: EpochTag, record: HeldRecord) -> Result<Verdict, String> {
        let slot = self.slots.entry((tag.sink.clone(), tag.slot)).or_default();
        if slot.emitted.contains(&(tag.epoch, tag.origin)) {
            return Ok(Verdict::Duplicate);
        }
        match &mut slot.gathering {
            Some(g) if g.attempt == tag.attempt && g.epoch == tag.epoch && g.origin == tag.origin => {
                g.records.push(record);
            }
            Some(g) if g.attempt == tag.attempt => {
                return Err(format!(
                    "epoch {} of sink \"{}\" worker {} has {} of its {} records in this partition, and the same \
                     writer's epoch {} follows at offset {}: records are missing from the partition",
                    g.epoch,
                    tag.sink,
                    tag.slot,
                    g.records.len(),
                    g.count,
                    tag.epoch,
                    record.offset
                ));
            }
            gathering => {
                if let Some(g) = gathering.as_ref() {
                    tracing::debug!(
                        sink = %tag.sink, slot = tag.slot, epoch = g.epoch, held = g.records.len(), count = g.count,
                        "dropping an incomplete copy of an epoch (its writer was replaced)"
                    );
                }
                *gathering = Some(Gathering {
                    epoch: tag.epoch,
                    origin: tag.origin,
                    attempt: tag.attempt,
                    count: tag.count,
                    records: vec![record],
                });
            }
        }
        let complete = slot.gathering.as_ref().is_some_and(|g| g.records.len() >= g.count as usize);
        if !complete {
            return Ok(Verdict::Held);
        }
        let Some(g) = slot.gathering.take() else { return Ok(Verdict::Held) };
        slot.emitted.push_back((g.epoch, g.origin));
        if slot.emitted.len() > REMEMBERED_EPOCHS {
            slot.emitted.pop_front();
        }
        Ok(Verdict::Complete(g.records))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(epoch: u64, origin: u64, attempt: u64, count: u32) -> EpochTag {
        EpochTag { sink: "s".into(), slot: 0, epoch, origin, attempt, count }
    }

    fn rec(offset: i64) -> HeldRecord {
        HeldRecord {
            offset,
            key: None,
            payload: Some(offset.to_string().into_bytes()),
            timestamp: None,
            headers: vec![],
        }
    }

    fn offsets(v: Verdict) -> Vec<i64> {
        match v {
            Verdict::Complete(r) => r.into_iter().map(|r| r.offset).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_complete_epoch_is_emitted_once_and_its_later_copies_are_dropped() {
        let mut d = EpochDeduplicator::default();
        assert_eq!(d.offer(tag(1, 7, 7, 2), rec(0)).unwrap(), Verdict::Held);
        assert_eq!(d.oldest_held(), Some(0));
        assert_eq!(offsets(d.offer(tag(1, 7, 7, 2), rec(1)).unwrap()), vec![0, 1]);
        assert_eq!(d.oldest_held(), None);
        // The restarted sink published the same epoch again (its first copy had been
        // committed, but the marker was not read in time, say): same origin, new attempt.
        assert_eq!(d.offer(tag(1, 7, 9, 2), rec(2)).unwrap(), Verdict::Duplicate);
        assert_eq!(d.offer(tag(1, 7, 9, 2), rec(3)).unwrap(), Verdict::Duplicate);
    }

    #[test]
    fn an_incomplete_copy_gives_way_to_the_next_copy() {
        let mut d = EpochDeduplicator::default();
        // Attempt 7 died after one of three records (an aborted transaction that the broker
        // shows anyway); attempt 9 publishes the whole epoch.
        assert_eq!(d.offer(tag(4, 7, 7, 3), rec(10)).unwrap(), Verdict::Held);
        assert_eq!(d.offer(tag(4, 7, 9, 3), rec(11)).unwrap(), Verdict::Held);
        assert_eq!(d.offer(tag(4, 7, 9, 3), rec(12)).unwrap(), Verdict::Held);
        assert_eq!(offsets(d.offer(tag(4, 7, 9, 3), rec(13)).unwrap()), vec![11, 12, 13]);
        // A new run's epochs (new origin) go on.
        assert_eq!(offsets(d.offer(tag(5, 9, 9, 1), rec(14)).unwrap()), vec![14]);
    }

    #[test]
    fn a_gap_inside_one_writers_epochs_is_an_error() {
        let mut d = EpochDeduplicator::default();
        assert_eq!(d.offer(tag(4, 7, 7, 3), rec(10)).unwrap(), Verdict::Held);
        let err = d.offer(tag(5, 7, 7, 1), rec(11)).unwrap_err();
        assert!(err.contains("epoch 4") && err.contains("1 of its 3") && err.contains("offset 11"), "{err}");
    }

    #[test]
    fn slots_and_sinks_are_independent_and_the_state_survives_a_checkpoint() {
        let mut d = EpochDeduplicator::default();
        let mut other = tag(1, 7, 7, 1);
        other.slot = 1;
        assert_eq!(d.offer(tag(1, 7, 7, 2), rec(0)).unwrap(), Verdict::Held);
        assert_eq!(offsets(d.offer(other, rec(1)).unwrap()), vec![1]);
        let restored: EpochDeduplicator = bincode::deserialize(&bincode::serialize(&d).unwrap()).unwrap();
        assert_eq!(restored, d);
        let mut d = restored;
        assert_eq!(offsets(d.offer(tag(1, 7, 7, 2), rec(2)).unwrap()), vec![0, 2]);
    }
}
