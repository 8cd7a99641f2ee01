//! When to try a camera again. Sans-IO: the caller says what happened and gets
//! how long to wait.
//!
//! A camera that answers but fails (wrong password, a codec Hearth cannot
//! carry, a session that broke or stalled) is retried with exponential backoff
//! from 1 s to 30 s: a wrong password tried every second can lock the camera's
//! account, and a broken camera should not be hammered. A camera that does not
//! answer at all (rebooting, unplugged) costs nothing to probe, and the
//! owner expects the picture back as soon as it boots: it is retried at most
//! [`UNREACHABLE_MAX`] apart, so a reboot resumes within 5 s of the camera
//! answering again. Every wait is jittered (±20%) so that cameras that failed
//! together (a switch rebooted) do not all come back in the same instant.

use std::time::Duration;

pub const INITIAL: Duration = Duration::from_secs(1);
pub const MAX: Duration = Duration::from_secs(30);
/// The longest wait between probes of a camera that does not answer.
pub const UNREACHABLE_MAX: Duration = Duration::from_secs(2);
/// A session that ran this long was healthy: the next failure starts over at
/// [`INITIAL`].
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// What the last attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing answered at the camera's address.
    Unreachable,
    /// The camera answered, then the attempt or the session failed.
    Failed,
    /// The session ran for this long, then ended.
    Ran(Duration),
}

#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The wait before the next attempt after `outcome`; `jitter` is uniform in
    /// `[0, 1)`.
    pub fn next(&mut self, outcome: Outcome, jitter: f64) -> Duration {
        if let Outcome::Ran(d) = outcome
            && d >= HEALTHY_AFTER
        {
            self.failures = 0;
        }
        let base = INITIAL.saturating_mul(1 << self.failures.min(5)).min(MAX);
        self.failures = self.failures.saturating_add(1);
        let cap = match outcome {
            Outcome::Unreachable => UNREACHABLE_MAX,
            Outcome::Failed | Outcome::Ran(_) => MAX,
        };
        base.min(cap).mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_to_thirty_seconds_and_unreachable_cameras_stay_probed() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8)
            .map(|_| b.next(Outcome::Failed, 0.5).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        // Unplugged for minutes: still probed every few seconds.
        for _ in 0..20 {
            assert!(b.next(Outcome::Unreachable, 1.0) <= Duration::from_secs_f64(2.0 * 1.2));
        }
        // A healthy session resets the count.
        assert_eq!(b.next(Outcome::Ran(HEALTHY_AFTER), 0.5), INITIAL);
        assert_eq!(
            b.next(Outcome::Ran(Duration::from_secs(1)), 0.5),
            2 * INITIAL
        );
    }

    #[test]
    fn waits_are_jittered_within_a_fifth() {
        let mut lo = Backoff::default();
        let mut hi = Backoff::default();
        assert_eq!(lo.next(Outcome::Failed, 0.0), Duration::from_millis(800));
        assert_eq!(hi.next(Outcome::Failed, 0.999_999).as_millis(), 1199);
    }
}
