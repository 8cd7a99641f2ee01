//! Rate limits on everything that checks a secret, and the bounded pool that
//! password hashing runs in.
//!
//! - [`SecretLimits`]: per-address and per-(account, address) limits on login,
//!   the OAuth token endpoint and the operator token (GCRA, `governor`). An
//!   attacker hammering one account from one address is refused with a
//!   `Retry-After`; the same account's owner elsewhere is not locked out, and
//!   one address trying many accounts runs into its own limit.
//! - [`HashPool`]: argon2id verification (and hashing a new password) takes
//!   ~20 MiB and tens of milliseconds of one core. At most one per core runs at a
//!   time, a short queue
//!   waits, and the rest is refused at once (429) instead of growing memory and
//!   starving other work. It runs apart from the database's blocking calls, which
//!   never wait behind it.
//! - [`FailureLog`]: one aggregated audit row per burst of failures instead of
//!   one per attempt, so a flood cannot bury the audit log.

use crate::password::PasswordHasher;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hearth_model::UnixMillis;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What checks a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecretKind {
    Login,
    OAuthToken,
    AdminToken,
    /// A viewer key (RTSP Digest or the HLS restream URL); failures only.
    ViewerKey,
    /// A home agent's claim code (every try) or credential (failures only).
    Agent,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Login => "login",
            SecretKind::OAuthToken => "oauth_token",
            SecretKind::AdminToken => "admin_token",
            SecretKind::ViewerKey => "viewer_key",
            SecretKind::Agent => "agent",
        }
    }
}

/// Refused for now; try again after this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

/// The address a limit counts: IPv6 by its /64 (what one host usually holds).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

/// Per-address and per-(account, address) limits for each [`SecretKind`].
pub struct SecretLimits {
    per_address: HashMap<SecretKind, DefaultKeyedRateLimiter<IpAddr>>,
    per_account: HashMap<SecretKind, DefaultKeyedRateLimiter<(String, IpAddr)>>,
    /// Attempts refused by a limit, per kind.
    hits: HashMap<SecretKind, crate::metrics::Counter>,
}

impl Default for SecretLimits {
    /// Login: 10 attempts at once, then 5 a minute per account and address, and
    /// 30 at once then 30 a minute per address over all accounts. The OAuth
    /// token endpoint (platforms refreshing for many users from few addresses)
    /// and the operator token get their own.
    fn default() -> Self {
        Self::with_logins_per_address(30)
    }
}

impl SecretLimits {
    /// The default limits, with `per_minute` login attempts per address (at
    /// once, and per minute after that).
    pub fn with_logins_per_address(per_minute: u32) -> Self {
        Self::new(&[
            (
                SecretKind::Login,
                quota(per_minute, per_minute),
                quota(5, 10),
            ),
            (SecretKind::OAuthToken, quota(600, 300), quota(60, 60)),
            (SecretKind::AdminToken, quota(30, 20), quota(30, 20)),
            (SecretKind::ViewerKey, quota(60, 30), quota(30, 20)),
            (SecretKind::Agent, quota(20, 10), quota(20, 10)),
        ])
    }

    /// Limits with the given per-address and per-account quotas.
    pub fn new(quotas: &[(SecretKind, Quota, Quota)]) -> Self {
        let mut per_address = HashMap::new();
        let mut per_account = HashMap::new();
        let mut hits = HashMap::new();
        for &(kind, address, account) in quotas {
            per_address.insert(kind, RateLimiter::keyed(address));
            per_account.insert(kind, RateLimiter::keyed(account));
            hits.insert(kind, crate::metrics::Counter::default());
        }
        Self {
            per_address,
            per_account,
            hits,
        }
    }

    /// Counts one attempt of `kind` from `ip` on `account` (an email, a client
    /// id; empty when there is none); refused if either limit is spent.
    pub fn attempt(&self, kind: SecretKind, ip: IpAddr, account: &str) -> Result<(), RetryAfter> {
        let r = self.check(kind, limit_key(ip), account);
        if r.is_err()
            && let Some(c) = self.hits.get(&kind)
        {
            c.inc();
        }
        r
    }

    /// Attempts of `kind` refused by a limit so far.
    pub fn hits(&self, kind: SecretKind) -> u64 {
        self.hits.get(&kind).map_or(0, |c| c.get())
    }

    fn check(&self, kind: SecretKind, ip: IpAddr, account: &str) -> Result<(), RetryAfter> {
        let clock = governor::clock::DefaultClock::default();
        let wait = |nu: governor::NotUntil<_>| {
            use governor::clock::Clock as _;
            RetryAfter(nu.wait_time_from(clock.now()).max(Duration::from_secs(1)))
        };
        if let Some(l) = self.per_address.get(&kind) {
            l.check_key(&ip).map_err(wait)?;
        }
        if let Some(l) = self.per_account.get(&kind) {
            let account = account.to_ascii_lowercase();
            l.check_key(&(account, ip)).map_err(wait)?;
        }
        Ok(())
    }

    /// Forgets keys whose limits have fully recovered (memory stays bounded
    /// after a flood). Call now and then.
    pub fn sweep(&self) {
        for l in self.per_address.values() {
            l.retain_recent();
        }
        for l in self.per_account.values() {
            l.retain_recent();
        }
    }

    /// Keys held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.per_address.values().map(|l| l.len()).sum::<usize>()
            + self.per_account.values().map(|l| l.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The password hashing pool is full: refuse rather than queue without bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy;

/// Runs argon2id verifications and hashes on `workers` threads of its own, with at most
/// `queue` more waiting. Its own threads, not the runtime's blocking pool: the
/// ~20 MiB each verification allocates is then reused by the same few threads
/// (the allocator's per-thread arenas would otherwise keep it in every thread of
/// the blocking pool that ever ran one), and database calls never queue behind it.
pub struct HashPool {
    jobs: std::sync::mpsc::SyncSender<Job>,
}

enum Job {
    Verify {
        stored: Option<String>,
        password: String,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    Hash {
        password: String,
        reply: tokio::sync::oneshot::Sender<Result<String, crate::password::HashError>>,
    },
}

impl HashPool {
    /// One worker per core, and a queue of four per worker.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores, 4 * cores)
    }

    pub fn new(workers: usize, queue: usize) -> Self {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let hasher = Arc::new(PasswordHasher::default());
        for i in 0..workers.max(1) {
            let (rx, hasher) = (rx.clone(), hasher.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                            Ok(job) => job,
                            Err(_) => return, // the pool is gone
                        };
                        match job {
                            Job::Verify {
                                stored,
                                password,
                                reply,
                            } => {
                                let _ = reply.send(hasher.verify(stored.as_deref(), &password));
                            }
                            Job::Hash { password, reply } => {
                                let _ = reply.send(crate::password::hash_password(&password));
                            }
                        }
                    }
                })
                .expect("spawning a password hashing thread");
        }
        Self { jobs }
    }

    /// Verifies `password` against `stored` (or a dummy hash: same work for an
    /// unknown account), in the pool; [`Busy`] at once if the queue is full.
    pub async fn verify(&self, stored: Option<String>, password: String) -> Result<bool, Busy> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Job::Verify {
                stored,
                password,
                reply,
            })
            .map_err(|_| Busy)?;
        answer.await.map_err(|_| Busy)
    }

    /// The PHC string of a new `password` under a fresh salt
    /// ([`crate::password::hash_password`]), in the pool: the same bound as
    /// verifying. [`Busy`] at once if the queue is full.
    pub async fn hash(
        &self,
        password: String,
    ) -> Result<Result<String, crate::password::HashError>, Busy> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Job::Hash { password, reply })
            .map_err(|_| Busy)?;
        answer.await.map_err(|_| Busy)
    }
}

/// One burst of failures of one kind from one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureBurst {
    pub kind: SecretKind,
    pub ip: IpAddr,
    pub count: u64,
    /// The accounts tried (emails, client ids), at most [`FailureLog::ACCOUNTS`].
    pub accounts: Vec<String>,
    /// How many distinct accounts were tried, counting those not listed.
    pub distinct_accounts: u64,
    pub first_at: UnixMillis,
    pub last_at: UnixMillis,
}

/// Collects failures into bursts per kind and address; a burst ends after
/// [`FailureLog::IDLE`] without failures, or after [`FailureLog::LONGEST`], and
/// is then written as one audit row (a guessing run on one account and a
/// credential-stuffing run over thousands are one row each).
#[derive(Default)]
pub struct FailureLog {
    open: Mutex<HashMap<(SecretKind, IpAddr), FailureBurst>>,
    /// Failures recorded so far, per kind (login, oauth token, admin token).
    counts: [crate::metrics::Counter; 5],
}

impl FailureLog {
    pub const IDLE: Duration = Duration::from_secs(30);
    pub const LONGEST: Duration = Duration::from_secs(5 * 60);
    /// Accounts named in one row.
    pub const ACCOUNTS: usize = 16;
    /// Bursts held at once; past this the oldest are closed early.
    const MAX_OPEN: usize = 10_000;

    /// Failures of `kind` recorded so far.
    pub fn count(&self, kind: SecretKind) -> u64 {
        self.counts[kind as usize].get()
    }

    pub fn record(&self, kind: SecretKind, account: &str, ip: IpAddr, now: UnixMillis) {
        self.counts[kind as usize].inc();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let b = open.entry((kind, ip)).or_insert_with(|| FailureBurst {
            kind,
            ip,
            count: 0,
            accounts: Vec::new(),
            distinct_accounts: 0,
            first_at: now,
            last_at: now,
        });
        b.count += 1;
        b.last_at = now;
        let account = account.to_ascii_lowercase();
        if !b.accounts.contains(&account) {
            b.distinct_accounts += 1;
            if b.accounts.len() < Self::ACCOUNTS {
                b.accounts.push(account);
            }
        }
    }

    /// The bursts that have ended by `now` (all of them with `flush_all`).
    pub fn take_ended(&self, now: UnixMillis, flush_all: bool) -> Vec<FailureBurst> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let idle = Self::IDLE.as_millis() as i64;
        let longest = Self::LONGEST.as_millis() as i64;
        let over = open.len().saturating_sub(Self::MAX_OPEN);
        let cutoff = (over > 0).then(|| {
            let mut by_age: Vec<_> = open.values().map(|b| b.last_at).collect();
            by_age.sort_unstable();
            by_age[over - 1]
        });
        let ended: Vec<_> = open
            .iter()
            .filter(|(_, b)| {
                flush_all
                    || now.0 - b.last_at.0 >= idle
                    || now.0 - b.first_at.0 >= longest
                    || cutoff.is_some_and(|c| b.last_at <= c)
            })
            .map(|(k, _)| *k)
            .collect();
        ended.into_iter().filter_map(|k| open.remove(&k)).collect()
    }
}

/// Players' reports of media they refused: at most a few per viewer and camera
/// per minute, and the same report again within [`ReportGate::REPEAT`] is
/// counted but not stored again, so no viewer can bury an owner's access log.
pub struct ReportGate {
    limit: DefaultKeyedRateLimiter<(hearth_model::UserId, hearth_model::CameraId)>,
    /// When each (viewer, camera, body digest) was last stored.
    seen: Mutex<HashMap<ReportKey, UnixMillis>>,
}

type ReportKey = (hearth_model::UserId, hearth_model::CameraId, [u8; 32]);

/// What to do with one report.
#[derive(Debug, PartialEq, Eq)]
pub enum ReportVerdict {
    /// Store it.
    Record,
    /// The same report was stored a moment ago.
    Repeat,
}

impl Default for ReportGate {
    /// 5 at once, then 6 a minute, per viewer and camera.
    fn default() -> Self {
        Self::new(quota(6, 5))
    }
}

impl ReportGate {
    pub const REPEAT: Duration = Duration::from_secs(60);

    pub fn new(q: Quota) -> Self {
        Self {
            limit: RateLimiter::keyed(q),
            seen: Mutex::default(),
        }
    }

    /// Whether to store the report `body` from `user` on `camera` now.
    pub fn check(
        &self,
        user: hearth_model::UserId,
        camera: hearth_model::CameraId,
        body: &[u8],
        now: UnixMillis,
    ) -> Result<ReportVerdict, RetryAfter> {
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(body).into();
        let repeat = Self::REPEAT.as_millis() as i64;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.len() > 10_000 {
                seen.retain(|_, at| now.0 - at.0 < repeat);
            }
            if seen
                .get(&(user, camera, digest))
                .is_some_and(|at| now.0 - at.0 < repeat)
            {
                return Ok(ReportVerdict::Repeat);
            }
        }
        let clock = governor::clock::DefaultClock::default();
        self.limit.check_key(&(user, camera)).map_err(|nu| {
            use governor::clock::Clock as _;
            RetryAfter(nu.wait_time_from(clock.now()).max(Duration::from_secs(1)))
        })?;
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((user, camera, digest), now);
        Ok(ReportVerdict::Record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_on_one_account_is_limited_but_not_the_owner_elsewhere() {
        let l = SecretLimits::new(&[(SecretKind::Login, quota(100, 100), quota(1, 3))]);
        let attacker: IpAddr = "192.0.2.1".parse().unwrap();
        let owner: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..3 {
            l.attempt(SecretKind::Login, attacker, "a@x.y").unwrap();
        }
        let RetryAfter(wait) = l
            .attempt(SecretKind::Login, attacker, "A@x.y")
            .expect_err("the fourth is refused (emails case-insensitive)");
        assert!(wait >= Duration::from_secs(1));
        assert_eq!(l.attempt(SecretKind::Login, owner, "a@x.y"), Ok(()));
        assert_eq!(l.attempt(SecretKind::Login, attacker, "b@x.y"), Ok(()));
    }

    #[test]
    fn one_address_on_many_accounts_is_limited() {
        let l = SecretLimits::new(&[(SecretKind::Login, quota(1, 5), quota(100, 100))]);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8::2".parse().unwrap();
        for i in 0..5 {
            l.attempt(SecretKind::Login, ip, &format!("{i}@x.y"))
                .unwrap();
        }
        assert!(l.attempt(SecretKind::Login, same_net, "9@x.y").is_err());
        // Other kinds keep their own limits.
        assert_eq!(l.attempt(SecretKind::AdminToken, ip, ""), Ok(()));
    }

    #[test]
    fn failures_become_one_row_per_burst() {
        let log = FailureLog::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..1000 {
            log.record(SecretKind::Login, "a@x.y", ip, UnixMillis(i * 10));
        }
        assert!(log.take_ended(UnixMillis(10_000), false).is_empty());
        for i in 0..5000 {
            log.record(SecretKind::Login, &format!("{i}@x.y"), ip, UnixMillis(9990));
        }
        let ended = log.take_ended(UnixMillis(10_000 + 30_000), false);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].count, 6000);
        assert_eq!(ended[0].distinct_accounts, 5001);
        assert_eq!(ended[0].accounts.len(), FailureLog::ACCOUNTS);
        assert_eq!(ended[0].accounts[0], "a@x.y");
        assert_eq!(
            (ended[0].first_at, ended[0].last_at),
            (UnixMillis(0), UnixMillis(9990))
        );
        log.record(SecretKind::Login, "a@x.y", ip, UnixMillis(0));
        assert_eq!(log.take_ended(UnixMillis(1), true).len(), 1);
    }

    #[test]
    fn reports_are_limited_and_repeats_stored_once() {
        let g = ReportGate::new(quota(1, 3));
        let (u, c) = (
            hearth_model::UserId::random(),
            hearth_model::CameraId::random(),
        );
        let now = UnixMillis(0);
        assert_eq!(g.check(u, c, b"a", now), Ok(ReportVerdict::Record));
        assert_eq!(g.check(u, c, b"a", now), Ok(ReportVerdict::Repeat));
        assert_eq!(g.check(u, c, b"b", now), Ok(ReportVerdict::Record));
        assert_eq!(g.check(u, c, b"c", now), Ok(ReportVerdict::Record));
        assert!(g.check(u, c, b"d", now).is_err(), "past the limit");
        let other = hearth_model::CameraId::random();
        assert_eq!(g.check(u, other, b"d", now), Ok(ReportVerdict::Record));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_hash_pool_refuses_past_its_queue() {
        let pool = Arc::new(HashPool::new(1, 1));
        let stored = crate::password::hash_password("pw").unwrap();
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (pool, stored) = (pool.clone(), stored.clone());
            tasks.push(tokio::spawn(async move {
                pool.verify(Some(stored), "pw".into()).await
            }));
        }
        let mut ok = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(true) => ok += 1,
                Err(Busy) => busy += 1,
                Ok(false) => panic!("wrong verdict"),
            }
        }
        assert!(ok >= 1 && busy >= 1, "ok {ok}, busy {busy}");
        assert_eq!(ok + busy, 32);
    }

    #[tokio::test]
    async fn the_hash_pool_hashes_new_passwords_that_then_verify() {
        let pool = HashPool::new(1, 2);
        let phc = pool.hash("a new password".into()).await.unwrap().unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(
            pool.verify(Some(phc.clone()), "a new password".into())
                .await
                .unwrap()
        );
        assert!(!pool.verify(Some(phc), "another".into()).await.unwrap());
    }
}
