//! How event time maps onto timely dataflow's progress tracking.
//!
//! Every record travels at a timely time `(epoch, watermark)`, a [`Product`] of two
//! coordinates:
//! * `watermark` (inner) is the sender's event-time watermark when it sent the record:
//!   the minimum over a frontier's inner coordinates is therefore a true low watermark,
//!   accounting for every record still in flight between operators and workers;
//! * `epoch` (outer) counts consistent cuts of the stream. TestStream uses it to know
//!   when everything sent before a processing-time step has been processed; checkpoints
//!   use the same coordinate, so a cut completes without waiting for event time.
//!
//! Records carry their own event timestamps, which may be behind the time they travel at
//! (late data): the time only bounds what may still come.

use millstream_model::Timestamp;
use timely::order::Product;
use timely::progress::frontier::{AntichainRef, MutableAntichain};

/// The timely timestamp of every Millstream dataflow: `(epoch, event-time watermark)`.
pub type FrontierTime = Product<u64, i64>;

/// The frontier time for `epoch` and `watermark`.
pub fn frontier_time(epoch: u64, watermark: Timestamp) -> FrontierTime {
    Product::new(epoch, watermark.millis())
}

/// The event-time watermark of a frontier: the least inner coordinate, or
/// [`Timestamp::MAX`] when the frontier is empty (the input is complete).
pub fn watermark_of(frontier: AntichainRef<'_, FrontierTime>) -> Timestamp {
    frontier.iter().map(|t| Timestamp(t.inner)).min().unwrap_or(Timestamp::MAX).min(Timestamp::MAX)
}

/// The least epoch of a frontier, or `None` when it is empty.
pub fn epoch_of(frontier: AntichainRef<'_, FrontierTime>) -> Option<u64> {
    frontier.iter().map(|t| t.outer).min()
}

/// Watermark and least epoch of an operator input's frontier.
pub fn input_progress(frontier: &MutableAntichain<FrontierTime>) -> (Timestamp, Option<u64>) {
    let f = frontier.frontier();
    (watermark_of(f), epoch_of(f))
}

/// Whether every epoch up to and including `epoch` is complete in `frontier`.
pub fn epoch_complete(frontier: AntichainRef<'_, FrontierTime>, epoch: u64) -> bool {
    frontier.iter().all(|t| t.outer > epoch)
}
