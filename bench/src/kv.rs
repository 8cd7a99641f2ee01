//! `--kv-leases N,…`: what placement costs NATS, alone. A Hearth cluster holds
//! one lease per ingested camera rendition: a key in a JetStream KV bucket,
//! made with `create` and renewed every quarter lease with `update` on its
//! last revision (`crates/server/src/cluster/placement.rs`). This holds N such
//! leases against a nats-server started here (bucket and values as Hearth
//! makes them; the renewals of all N spread evenly over the period) and
//! reports the renewals per second done against those due, their latency
//! (p50/p99) and the CPU of nats-server and of this process. Per-key work is
//! what a fleet of N camera renditions puts on NATS, whichever node renews.

use crate::report::percentile;
use anyhow::Context;
use async_nats::jetstream::{self, kv};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bucket (not Hearth's: a bench never shares a server with a cluster).
const BUCKET: &str = "hearth_bench_placement";

/// One size's numbers.
pub struct KvRun {
    pub leases: usize,
    pub due_per_s: f64,
    pub done_per_s: f64,
    pub failed: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub nats_cpu_pct: f64,
    pub bench_cpu_pct: f64,
}

impl KvRun {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "leases": self.leases,
            "renewals_due_per_s": self.due_per_s,
            "renewals_done_per_s": self.done_per_s,
            "failed": self.failed,
            "renewal_p50_ms": self.p50_ms,
            "renewal_p99_ms": self.p99_ms,
            "nats_cpu_pct": self.nats_cpu_pct,
            "bench_cpu_pct": self.bench_cpu_pct,
        })
    }
}

pub const TABLE_HEADER: &str =
    "  leases  due/s  done/s  failed  p50 ms  p99 ms  nats CPU%  bench CPU%";

pub fn table_row(r: &KvRun) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    format!(
        "{:>8} {:>6.0} {:>7.0} {:>7} {:>7} {:>7} {:>10.1} {:>11.1}",
        r.leases,
        r.due_per_s,
        r.done_per_s,
        r.failed,
        ms(r.p50_ms),
        ms(r.p99_ms),
        r.nats_cpu_pct,
        r.bench_cpu_pct
    )
}

/// Holds `leases` leases of `lease` for `warmup` + `duration` on a fresh
/// nats-server; measures the last `duration`.
pub async fn run(
    leases: usize,
    lease: Duration,
    warmup: Duration,
    duration: Duration,
    clk_tck: f64,
) -> anyhow::Result<KvRun> {
    let dir = tempfile::Builder::new()
        .prefix("hearth-bench-kv-")
        .tempdir()?;
    let (nats, url) = crate::cluster::start_nats(dir.path())?;
    let (user, password, address) = split(&url).context("nats url")?;
    let client = async_nats::ConnectOptions::with_user_and_password(user, password)
        .connect(address)
        .await?;
    let js = jetstream::new(client);
    let bucket = js
        .create_key_value(kv::Config {
            bucket: BUCKET.into(),
            history: 1,
            max_age: lease,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    // What a node writes: its name and where the others reach it.
    let value = bytes_of(r#"{"node":"node-17","internal_url":"http://10.0.0.17:8080"}"#);
    let period = lease / 4;
    let start = Instant::now() + Duration::from_millis(200);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..leases {
        let (bucket, value) = (bucket.clone(), value.clone());
        let (measuring, stop, done, failed, latencies) = (
            measuring.clone(),
            stop.clone(),
            done.clone(),
            failed.clone(),
            latencies.clone(),
        );
        // Spread evenly over one period, as cameras connecting at random would.
        let first = start + period.mul_f64(i as f64 / leases as f64);
        tasks.spawn(async move {
            let key = format!("{:032x}.main", i as u128 * 0x9e37_79b9_7f4a_7c15);
            tokio::time::sleep_until(first.into()).await;
            let Ok(mut revision) = bucket.create(&key, value.clone()).await else {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let mut tick = tokio::time::interval_at((first + period).into(), period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let sent = Instant::now();
                match bucket.update(&key, value.clone(), revision).await {
                    Ok(next) => {
                        revision = next;
                        if measuring.load(Ordering::Relaxed) {
                            done.fetch_add(1, Ordering::Relaxed);
                            let us = sent.elapsed().as_micros() as u64;
                            latencies.lock().unwrap().push(us);
                        }
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        // As a node does: the lease is lost; take it again.
                        match bucket.create(&key, value.clone()).await {
                            Ok(r) => revision = r,
                            Err(_) => return,
                        }
                    }
                }
            }
        });
    }
    tokio::time::sleep_until((start + warmup).into()).await;
    let cpu = |pid: &str| crate::procs::cpu_ticks(pid).unwrap_or(0);
    let nats_pid = nats.pid().to_string();
    let (t0, n0, b0) = (Instant::now(), cpu(&nats_pid), cpu("self"));
    failed.store(0, Ordering::Relaxed);
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let (t1, n1, b1) = (Instant::now(), cpu(&nats_pid), cpu("self"));
    stop.store(true, Ordering::Relaxed);
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let wall = (t1 - t0).as_secs_f64();
    let pct = |ticks: u64| 100.0 * ticks as f64 / clk_tck / wall;
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap());
    lat.sort_unstable();
    Ok(KvRun {
        leases,
        due_per_s: leases as f64 / period.as_secs_f64(),
        done_per_s: done.load(Ordering::Relaxed) as f64 / wall,
        failed: failed.load(Ordering::Relaxed),
        p50_ms: percentile(&lat, 50.0),
        p99_ms: percentile(&lat, 99.0),
        nats_cpu_pct: pct(n1 - n0),
        bench_cpu_pct: pct(b1 - b0),
    })
}

fn bytes_of(s: &'static str) -> bytes::Bytes {
    bytes::Bytes::from_static(s.as_bytes())
}

/// `nats://user:password@host:port` → (user, password, `host:port`).
fn split(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("nats://")?;
    let (credentials, address) = rest.split_once('@')?;
    let (user, password) = credentials.split_once(':')?;
    Some((user.into(), password.into(), address.into()))
}
