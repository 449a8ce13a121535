//! Processing time, behind a [`Clock`] so that tests drive it deterministically.

use millstream_model::{Duration, Timestamp};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of processing time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current processing time.
    fn now(&self) -> Timestamp;
    /// Whether time moves by itself (a wall clock) rather than only when a test moves it.
    fn is_real(&self) -> bool;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp::from_millis(since.as_millis() as i64)
    }
    fn is_real(&self) -> bool {
        true
    }
}

/// A clock that only moves when told to: TestStream advances it.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn starting_at(start: Timestamp) -> Self {
        ManualClock { now: Arc::new(AtomicI64::new(start.millis())) }
    }
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.millis().max(0), Ordering::SeqCst);
    }
    /// Sets the clock to `to` (never backwards).
    pub fn set(&self, to: Timestamp) {
        self.now.fetch_max(to.millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.now.load(Ordering::SeqCst))
    }
    fn is_real(&self) -> bool {
        false
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;
