//! Event time and processing time: [`Timestamp`] and [`Duration`], both in milliseconds.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};

/// A point in time (event time or processing time), in milliseconds since the Unix epoch.
///
/// `Timestamp::MIN` is "before any data" and `Timestamp::MAX` is "the end of time": a
/// watermark at `MAX` means the input is complete.
///
/// ```
/// use millstream_model::{Duration, Timestamp};
/// let t = Timestamp::from_millis(1_000) + Duration::from_secs(2);
/// assert_eq!(t.millis(), 3_000);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Before every timestamp a record can carry.
    pub const MIN: Timestamp = Timestamp(i64::MIN / 2);
    /// The end of time: a watermark here means no more data will come.
    pub const MAX: Timestamp = Timestamp(i64::MAX / 2);

    /// A timestamp `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// `self + d`, saturating at [`Timestamp::MAX`] / [`Timestamp::MIN`].
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0).clamp(Self::MIN.0, Self::MAX.0))
    }

    /// `self - d`, saturating at [`Timestamp::MIN`].
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.0).clamp(Self::MIN.0, Self::MAX.0))
    }

    /// A timestamp given as `HH:MM:SS` on day zero, handy in examples and tests.
    ///
    /// ```
    /// use millstream_model::Timestamp;
    /// assert_eq!(Timestamp::hms(12, 0, 26).millis(), (12 * 3600 + 26) * 1000);
    /// ```
    pub const fn hms(h: i64, m: i64, s: i64) -> Timestamp {
        Timestamp(((h * 60 + m) * 60 + s) * 1000)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self <= Timestamp::MIN {
            return write!(f, "-inf");
        }
        if *self >= Timestamp::MAX {
            return write!(f, "+inf");
        }
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let day_secs = secs.rem_euclid(86_400);
        let days = secs.div_euclid(86_400);
        let (h, m, s) = (day_secs / 3600, (day_secs / 60) % 60, day_secs % 60);
        if days != 0 {
            write!(f, "d{days}+")?;
        }
        if ms == 0 {
            write!(f, "{h:02}:{m:02}:{s:02}")
        } else {
            write!(f, "{h:02}:{m:02}:{s:02}.{ms:03}")
        }
    }
}

/// A span of time in milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize)]
pub struct Duration(pub i64);

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);
    /// `ms` milliseconds.
    pub const fn from_millis(ms: i64) -> Self {
        Duration(ms)
    }
    /// `s` seconds.
    pub const fn from_secs(s: i64) -> Self {
        Duration(s * 1000)
    }
    /// `m` minutes.
    pub const fn from_mins(m: i64) -> Self {
        Duration(m * 60_000)
    }
    /// `h` hours.
    pub const fn from_hours(h: i64) -> Self {
        Duration(h * 3_600_000)
    }
    /// The length in milliseconds.
    pub const fn millis(self) -> i64 {
        self.0
    }
    /// As a standard library duration (negative spans become zero).
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.max(0) as u64)
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        self.saturating_add(rhs)
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        self.saturating_sub(rhs)
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    fn sub(self, rhs: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(rhs.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_at_the_ends_of_time() {
        assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(Timestamp::MIN - Duration::from_secs(1), Timestamp::MIN);
        assert_eq!(Timestamp::hms(0, 1, 0) - Timestamp::hms(0, 0, 30), Duration::from_secs(30));
    }

    #[test]
    fn displays_as_clock_time() {
        assert_eq!(Timestamp::hms(12, 5, 9).to_string(), "12:05:09");
        assert_eq!(Timestamp::from_millis(1500).to_string(), "00:00:01.500");
        assert_eq!(Timestamp::MAX.to_string(), "+inf");
    }
}
