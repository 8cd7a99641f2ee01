//! A benchmark-only switch that turns the isolation machinery off, to measure its cost.
//!
//! With the `bench-switches` cargo feature (never a default, never in a release
//! build that ships) and `HEARTH_BENCH_UNGUARDED=1` in the environment, read once at
//! startup and logged at WARN, the server runs **unguarded**:
//!
//! - [`Hub`](crate::hub::Hub) stores segments as the muxer made them: no in-band
//!   provenance stamp (keyed BLAKE3) and no AES-128 encryption, and playlists carry
//!   no `EXT-X-KEY` lines. (Init segments, made once per publisher, are still
//!   stamped.) Access units are not stamped, the still cache does not check their
//!   stamps, and stills carry no in-band record.
//! - [`EgressGuard::write`](crate::egress::EgressGuard::write) skips the presented-tag
//!   check, the provenance check and the audit accounting (`Audit::viewed`).
//! - The [`Egress`](crate::egress::Egress) extractor skips the live access check.
//!
//! Only `hearth-bench --compare` uses it. Without the feature,
//! [`BenchSwitch::unguarded`] is a constant `false` and nothing can be turned off,
//! like [`crate::fault::Faults`].

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
    #[cfg(all(test, feature = "bench-switches"))]
    pub(crate) fn unguarded_for_tests() -> Self {
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
