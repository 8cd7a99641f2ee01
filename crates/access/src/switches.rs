//! Switches that weaken the isolation machinery on purpose, compiled in only by
//! cargo features that no shipped build enables: [`BenchSwitch`] (benchmarks) and
//! [`DoorSwitch`] (fault-injection tests).
//!
//! # The bench switch
//!
//! With the `bench-switches` cargo feature (never a default, never in a release
//! build that ships) and `HEARTH_BENCH_UNGUARDED=1` in the environment, read once at
//! startup and logged at WARN, the server runs **unguarded**:
//!
//! - the server's hub stores segments as the muxer made them: no in-band
//!   provenance stamp (keyed BLAKE3) and no AES-128 encryption, and playlists carry
//!   no `EXT-X-KEY` lines. (Init segments, made once per publisher, are still
//!   stamped.) Access units are not stamped, the still cache does not check their
//!   stamps, and stills carry no in-band record.
//! - [`EgressGuard::write`](crate::door::EgressGuard::write) skips the presented-tag
//!   check, the provenance check and the audit accounting (`Audit::viewed`).
//! - [`Door::open`](crate::door::Door::open) skips the live access check.
//!
//! Only `hearth-bench --compare` uses it. Without the feature,
//! [`BenchSwitch::unguarded`] is a constant `false` and nothing can be turned off,
//! like [`DoorSwitch`].
//!
//! # The door switch
//!
//! With the `fault-injection` feature and `HEARTH_FAULT_DOOR_OPEN=1`, the door skips
//! its comparison of an object's provenance with the grant (and only that), so the
//! server's injected lookup faults deliver other cameras' media. It exists to prove
//! the *client's* check (the web player's). Without the feature it is a constant
//! `false`.

#[derive(Clone, Copy, Debug, Default)]
pub struct BenchSwitch {
    #[cfg(feature = "bench-switches")]
    unguarded: bool,
}

impl BenchSwitch {
    /// Reads `HEARTH_BENCH_UNGUARDED` when the feature is compiled in; inert otherwise.
    pub fn from_env() -> Self {
        #[cfg(feature = "bench-switches")]
        if std::env::var("HEARTH_BENCH_UNGUARDED").is_ok_and(|v| v == "1") {
            tracing::warn!(
                "BENCH SWITCH: HEARTH_BENCH_UNGUARDED=1: egress guard, access checks, audit \
                 accounting, segment provenance stamping and encryption are ALL OFF. \
                 Benchmarks only: this server does not keep cameras apart."
            );
            return Self { unguarded: true };
        }
        Self::default()
    }

    /// An unguarded switch, for the feature's own unit tests.
    #[cfg(feature = "bench-switches")]
    pub fn unguarded_for_tests() -> Self {
        Self { unguarded: true }
    }

    /// Whether the guard, stamping and encryption are switched off.
    #[inline]
    pub fn unguarded(self) -> bool {
        #[cfg(feature = "bench-switches")]
        {
            self.unguarded
        }
        #[cfg(not(feature = "bench-switches"))]
        {
            false
        }
    }
}

/// `HEARTH_FAULT_DOOR_OPEN=1` (tests only): the door does not compare provenance.
#[derive(Clone, Copy, Debug, Default)]
pub struct DoorSwitch {
    #[cfg(feature = "fault-injection")]
    open: bool,
}

impl DoorSwitch {
    /// Reads `HEARTH_FAULT_DOOR_OPEN` when the feature is compiled in; inert otherwise.
    pub fn from_env() -> Self {
        #[cfg(feature = "fault-injection")]
        if std::env::var("HEARTH_FAULT_DOOR_OPEN").is_ok_and(|v| v == "1") {
            tracing::warn!(
                "FAULT INJECTION: HEARTH_FAULT_DOOR_OPEN=1: THE EGRESS DOOR IS OPEN. It does \
                 not compare provenance with the grant: other cameras' media WILL reach \
                 viewers. Tests only."
            );
            return Self { open: true };
        }
        Self::default()
    }

    /// Whether the door skips its provenance comparison.
    #[inline]
    pub fn open(self) -> bool {
        #[cfg(feature = "fault-injection")]
        {
            self.open
        }
        #[cfg(not(feature = "fault-injection"))]
        {
            false
        }
    }
}
