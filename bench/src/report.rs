//! What a run measured, and how it is printed: the table rows, the guard overhead
//! (`--compare`) and the Hearth/nginx ratios (`--peer nginx`).

use crate::Scenario;
use crate::viewer::Flavour;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Hearth,
    Nginx,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Hearth => "hearth",
            ServerKind::Nginx => "nginx",
        }
    }
}

/// What one run of a scenario measured.
pub struct Measured {
    pub scenario: Scenario,
    pub server: ServerKind,
    /// The playlist the viewers read (nginx-rtmp: always TS).
    pub flavour: Flavour,
    /// Run with `HEARTH_BENCH_UNGUARDED=1`.
    pub unguarded: bool,
    pub window_s: f64,
    pub segments: u64,
    pub bytes: u64,
    pub playlists: u64,
    pub keys: u64,
    /// Over the whole run (warm-up included), not just the window.
    pub errors: u64,
    pub viewers_started: usize,
    pub ttfs_p50_ms: Option<f64>,
    pub ttfs_p99_ms: Option<f64>,
    pub ttfs_max_ms: Option<f64>,
    /// TTFS from the first playlist request, leaving out Hearth's grant request.
    pub ttfs_after_grant_p50_ms: Option<f64>,
    /// Over all of the server's processes.
    pub server_cpu_s: f64,
    pub server_processes: usize,
    pub publishers_cpu_s: f64,
    pub bench_cpu_s: f64,
    /// Busy CPU time of the whole machine.
    pub machine_cpu_s: f64,
    /// Sum of VmHWM over the server's processes.
    pub server_peak_rss_mib: Option<f64>,
    /// The peer's HLS files (tmpfs, page cache: in no process's RSS) at the window's end.
    pub files_mib: Option<f64>,
    pub publishers_exited: usize,
}

impl Measured {
    pub fn segments_per_s(&self) -> f64 {
        self.segments as f64 / self.window_s
    }
    pub fn gbit_per_s(&self) -> f64 {
        self.bytes as f64 * 8.0 / 1e9 / self.window_s
    }
    pub fn pct(&self, cpu_s: f64) -> f64 {
        cpu_s / self.window_s * 100.0
    }
    /// Busy CPU not spent by the server, the publishers or the bench: other processes
    /// and kernel work not charged to any of them.
    pub fn other_cpu_s(&self) -> f64 {
        (self.machine_cpu_s - self.server_cpu_s - self.publishers_cpu_s - self.bench_cpu_s).max(0.0)
    }
    /// Server CPU-seconds per Gbit of media served.
    pub fn cpu_s_per_gbit(&self) -> Option<f64> {
        let gbit = self.bytes as f64 * 8.0 / 1e9;
        (gbit > 0.0).then(|| self.server_cpu_s / gbit)
    }
    /// Playlist requests served per server CPU-second.
    pub fn playlists_per_cpu_s(&self) -> Option<f64> {
        (self.server_cpu_s > 0.0).then(|| self.playlists as f64 / self.server_cpu_s)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "server": self.server.name(),
            "cameras": self.scenario.cameras,
            "viewers": self.scenario.viewers,
            "playlist": self.flavour.name(),
            "guard": if self.unguarded { "off" } else { "on" },
            "window_s": self.window_s,
            "segments": self.segments,
            "segments_per_s": self.segments_per_s(),
            "bytes": self.bytes,
            "playlists": self.playlists,
            "playlists_per_cpu_s": self.playlists_per_cpu_s(),
            "keys": self.keys,
            "gbit_per_s": self.gbit_per_s(),
            "ttfs_p50_ms": self.ttfs_p50_ms,
            "ttfs_p99_ms": self.ttfs_p99_ms,
            "ttfs_max_ms": self.ttfs_max_ms,
            "ttfs_after_grant_p50_ms": self.ttfs_after_grant_p50_ms,
            "viewers_started": self.viewers_started,
            "errors": self.errors,
            "server_processes": self.server_processes,
            "server_cpu_pct": self.pct(self.server_cpu_s),
            "server_cpu_s_per_gbit": self.cpu_s_per_gbit(),
            "server_peak_rss_mib": self.server_peak_rss_mib,
            "hls_files_mib": self.files_mib,
            "publishers_cpu_pct": self.pct(self.publishers_cpu_s),
            "bench_cpu_pct": self.pct(self.bench_cpu_s),
            "machine_busy_cpu_pct": self.pct(self.machine_cpu_s),
            "other_cpu_pct": self.pct(self.other_cpu_s()),
            "publishers_exited": self.publishers_exited,
        })
    }
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
pub fn percentile(sorted_us: &[u64], p: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    Some(sorted_us[rank.clamp(1, sorted_us.len()) - 1] as f64 / 1000.0)
}

/// The median (the mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

pub const TABLE_HEADER: &str = " cams  viewers   seg/s  Gbit/s  TTFS p50 ms  TTFS p99 ms  started  errors  \
                                srv CPU%  CPU-s/Gbit  pl/CPU-s  srv RSS MiB  pub CPU%  bench CPU%  other CPU%";

/// Extra column in `--peer` mode, at the end.
pub const FILES_HEADER: &str = "  files MiB";

pub fn table_row(m: &Measured, with_files: bool) -> String {
    let files = if with_files {
        format!("  {:>9}", opt(m.files_mib, 1))
    } else {
        String::new()
    };
    format!(
        "{:>5}  {:>7}  {:>6.1}  {:>6.3}  {:>11}  {:>11}  {:>7}  {:>6}  {:>8.1}  {:>10}  {:>8}  {:>11}  {:>8.1}  {:>10.1}  {:>10.1}{files}",
        m.scenario.cameras,
        m.scenario.viewers,
        m.segments_per_s(),
        m.gbit_per_s(),
        opt(m.ttfs_p50_ms, 0),
        opt(m.ttfs_p99_ms, 0),
        format!("{}/{}", m.viewers_started, m.scenario.viewers),
        m.errors,
        m.pct(m.server_cpu_s),
        opt(m.cpu_s_per_gbit(), 2),
        opt(m.playlists_per_cpu_s(), 0),
        opt(m.server_peak_rss_mib, 1),
        m.pct(m.publishers_cpu_s),
        m.pct(m.bench_cpu_s),
        m.pct(m.other_cpu_s()),
    )
}

/// The guard's overhead: `on` (guarded) relative to `off` (unguarded), in percent.
pub struct Overhead {
    cpu_s_per_gbit_pct: Option<f64>,
    segments_per_s_pct: Option<f64>,
}

impl Overhead {
    pub fn of(on: &Measured, off: &Measured) -> Self {
        let rel = |on: f64, off: f64| (off > 0.0).then(|| (on / off - 1.0) * 100.0);
        Self {
            cpu_s_per_gbit_pct: on
                .cpu_s_per_gbit()
                .zip(off.cpu_s_per_gbit())
                .and_then(|(a, b)| rel(a, b)),
            segments_per_s_pct: rel(on.segments_per_s(), off.segments_per_s()),
        }
    }

    pub fn line(&self, on: &Measured, off: &Measured) -> String {
        let pct = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:+.1}%"));
        format!(
            "overhead {}x{}: CPU-s/Gbit {} (on {} vs off {}); seg/s {} (on {:.1} vs off {:.1}); \
             srv CPU% on {:.1} vs off {:.1}",
            on.scenario.cameras,
            on.scenario.viewers,
            pct(self.cpu_s_per_gbit_pct),
            opt(on.cpu_s_per_gbit(), 3),
            opt(off.cpu_s_per_gbit(), 3),
            pct(self.segments_per_s_pct),
            on.segments_per_s(),
            off.segments_per_s(),
            on.pct(on.server_cpu_s),
            off.pct(off.server_cpu_s),
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "cpu_s_per_gbit_pct": self.cpu_s_per_gbit_pct,
            "segments_per_s_pct": self.segments_per_s_pct,
        })
    }
}

/// Hearth against nginx in one pair of runs. Every ratio is oriented so that **above 1
/// means Hearth did better**: costs (CPU per Gbit, TTFS, RSS) are nginx/Hearth,
/// yields (playlists per CPU-second) are Hearth/nginx.
#[derive(Clone, Copy, Default)]
pub struct PeerRatios {
    /// nginx CPU-s/Gbit ÷ Hearth CPU-s/Gbit.
    pub cpu_per_gbit: Option<f64>,
    /// Hearth playlists per CPU-s ÷ nginx playlists per CPU-s.
    pub playlists_per_cpu_s: Option<f64>,
    /// nginx TTFS p50 ÷ Hearth TTFS p50.
    pub ttfs_p50: Option<f64>,
    /// The same, with both counted from the first playlist request: without Hearth's
    /// grant `POST`, which nginx has no counterpart of.
    pub ttfs_p50_after_grant: Option<f64>,
    /// nginx peak RSS ÷ Hearth peak RSS.
    pub rss: Option<f64>,
    /// (nginx peak RSS + its HLS files) ÷ Hearth peak RSS.
    pub rss_with_files: Option<f64>,
}

/// Labels of [`PeerRatios`]' fields, in print order.
const RATIO_NAMES: [&str; 6] = [
    "CPU-s/Gbit n/h",
    "pl/CPU-s h/n",
    "TTFS p50 n/h",
    "(w/o grant",
    "RSS n/h",
    "RSS+files n/h",
];

impl PeerRatios {
    pub fn of(hearth: &Measured, nginx: &Measured) -> Self {
        let div = |a: Option<f64>, b: Option<f64>| {
            a.zip(b)
                .and_then(|(a, b)| (b > 0.0).then_some(a / b))
                .filter(|r| r.is_finite())
        };
        Self {
            cpu_per_gbit: div(nginx.cpu_s_per_gbit(), hearth.cpu_s_per_gbit()),
            playlists_per_cpu_s: div(hearth.playlists_per_cpu_s(), nginx.playlists_per_cpu_s()),
            ttfs_p50: div(nginx.ttfs_p50_ms, hearth.ttfs_p50_ms),
            ttfs_p50_after_grant: div(
                nginx.ttfs_after_grant_p50_ms,
                hearth.ttfs_after_grant_p50_ms,
            ),
            rss: div(nginx.server_peak_rss_mib, hearth.server_peak_rss_mib),
            rss_with_files: div(
                nginx
                    .server_peak_rss_mib
                    .map(|r| r + nginx.files_mib.unwrap_or(0.0)),
                hearth
                    .server_peak_rss_mib
                    .map(|r| r + hearth.files_mib.unwrap_or(0.0)),
            ),
        }
    }

    fn values(&self) -> [Option<f64>; 6] {
        [
            self.cpu_per_gbit,
            self.playlists_per_cpu_s,
            self.ttfs_p50,
            self.ttfs_p50_after_grant,
            self.rss,
            self.rss_with_files,
        ]
    }

    /// The median of each ratio over the pairs.
    pub fn median_of(pairs: &[PeerRatios]) -> Self {
        let m = |f: fn(&PeerRatios) -> Option<f64>| {
            median(&pairs.iter().filter_map(f).collect::<Vec<_>>())
        };
        Self {
            cpu_per_gbit: m(|r| r.cpu_per_gbit),
            playlists_per_cpu_s: m(|r| r.playlists_per_cpu_s),
            ttfs_p50: m(|r| r.ttfs_p50),
            ttfs_p50_after_grant: m(|r| r.ttfs_p50_after_grant),
            rss: m(|r| r.rss),
            rss_with_files: m(|r| r.rss_with_files),
        }
    }

    /// `CPU-s/Gbit n/h 1.23  pl/CPU-s h/n 0.98  …`
    pub fn line(&self) -> String {
        RATIO_NAMES
            .iter()
            .zip(self.values())
            .map(|(name, v)| {
                // The grant-less TTFS is a parenthesis to the TTFS before it.
                let close = if name.starts_with('(') { ")" } else { "" };
                format!("{name} {}{close}", opt(v, 2))
            })
            .collect::<Vec<_>>()
            .join("  ")
    }

    pub fn to_json(self) -> Value {
        json!({
            "cpu_s_per_gbit_nginx_over_hearth": self.cpu_per_gbit,
            "playlists_per_cpu_s_hearth_over_nginx": self.playlists_per_cpu_s,
            "ttfs_p50_nginx_over_hearth": self.ttfs_p50,
            "ttfs_p50_nginx_over_hearth_after_grant": self.ttfs_p50_after_grant,
            "peak_rss_nginx_over_hearth": self.rss,
            "peak_rss_with_hls_files_nginx_over_hearth": self.rss_with_files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn percentiles_are_nearest_rank_in_ms() {
        let us = [1000, 2000, 3000, 4000];
        assert_eq!(percentile(&us, 50.0), Some(2.0));
        assert_eq!(percentile(&us, 99.0), Some(4.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    fn run(server: ServerKind, cpu_s: f64, bytes: u64, playlists: u64, rss: f64) -> Measured {
        Measured {
            scenario: Scenario {
                cameras: 1,
                viewers: 1,
            },
            server,
            flavour: Flavour::Ts,
            unguarded: false,
            window_s: 10.0,
            segments: 0,
            bytes,
            playlists,
            keys: 0,
            errors: 0,
            viewers_started: 1,
            ttfs_p50_ms: Some(4.0),
            ttfs_p99_ms: None,
            ttfs_max_ms: None,
            ttfs_after_grant_p50_ms: None,
            server_cpu_s: cpu_s,
            server_processes: 1,
            publishers_cpu_s: 0.0,
            bench_cpu_s: 0.0,
            machine_cpu_s: 0.0,
            server_peak_rss_mib: Some(rss),
            files_mib: (server == ServerKind::Nginx).then_some(10.0),
            publishers_exited: 0,
        }
    }

    #[test]
    fn ratios_above_one_mean_hearth_did_better() {
        // Hearth: half the CPU for the same bytes and playlists, twice the memory.
        let h = run(ServerKind::Hearth, 1.0, 125_000_000, 100, 40.0);
        let n = run(ServerKind::Nginx, 2.0, 125_000_000, 100, 20.0);
        let r = PeerRatios::of(&h, &n);
        assert_eq!(r.cpu_per_gbit, Some(2.0));
        assert_eq!(r.playlists_per_cpu_s, Some(2.0));
        assert_eq!(r.ttfs_p50, Some(1.0));
        assert_eq!(r.ttfs_p50_after_grant, None);
        assert_eq!(r.rss, Some(0.5));
        assert_eq!(r.rss_with_files, Some(0.75));
        let m = PeerRatios::median_of(&[r, PeerRatios::default(), r]);
        assert_eq!(m.cpu_per_gbit, Some(2.0));
    }
}
