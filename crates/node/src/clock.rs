//! Time that passes while the machine sleeps.
//!
//! `Instant` (the monotonic clock) stands still while Linux or macOS
//! sleeps: an auto-lock of five minutes measured on it alone lets a laptop
//! closed overnight wake unlocked, and a session token idle all night still
//! work. A [`Moment`] is read on both clocks, and the time since it is the
//! larger of the two; a wall clock set back counts as no time on it.

use std::time::{Duration, Instant, SystemTime};

/// A point in time, on the monotonic clock and the wall clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Moment {
    instant: Instant,
    wall: SystemTime,
}

impl Moment {
    pub(crate) fn now() -> Self {
        Self {
            instant: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The time since this moment, sleep included.
    pub(crate) fn elapsed(&self) -> Duration {
        let awake = self.instant.elapsed();
        let wall = SystemTime::now()
            .duration_since(self.wall)
            .unwrap_or_default();
        awake.max(wall)
    }

    /// This moment as if the machine had slept `time` since: the wall
    /// clock moved, the monotonic one did not (tests).
    pub(crate) fn slept(&mut self, time: Duration) {
        if let Some(earlier) = self.wall.checked_sub(time) {
            self.wall = earlier;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_asleep_counts() {
        let mut moment = Moment::now();
        assert!(moment.elapsed() < Duration::from_secs(60));
        moment.slept(Duration::from_secs(3600));
        assert!(moment.elapsed() >= Duration::from_secs(3600));
    }

    #[test]
    fn a_wall_clock_set_back_counts_as_no_time() {
        let mut moment = Moment::now();
        moment.wall += Duration::from_secs(3600);
        assert!(moment.elapsed() < Duration::from_secs(60));
    }
}
