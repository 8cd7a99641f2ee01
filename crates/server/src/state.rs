//! Shared application state handed to every handler and driver.

use crate::config::GoogleConfig;
use crate::error::AppError;
use crate::hub::HubRegistry;
use crate::metrics::Metrics;
use hearth_access::grant::GrantKey;
use hearth_access::switches::{BenchSwitch, DoorSwitch};
use hearth_access::{AccessView, Door};
use hearth_model::CameraId;
use hearth_store::Store;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub hubs: HubRegistry,
    /// The egress door (and the grant key that signs what it opens for) every media byte leaves through.
    pub door: Arc<Door>,
    pub metrics: Arc<Metrics>,
    /// The data directory (the operator token's hash lives there).
    pub data_dir: std::path::PathBuf,
    /// Base for absolute URLs handed to clients, without a trailing slash.
    pub public_url: String,
    /// Password verification, at most one per core at a time.
    pub hash_pool: hearth_access::limits::HashPool,
    /// Rate limits on everything that checks a secret.
    pub limits: hearth_access::limits::SecretLimits,
    /// Failed secret checks, aggregated into one audit row per burst.
    pub failures: hearth_access::limits::FailureLog,
    /// Players' reports: limited and deduplicated per viewer and camera.
    pub reports: hearth_access::limits::ReportGate,
    /// The operator token's hash, reread at most once a second.
    pub admin_token: hearth_access::operator::OperatorToken,
    /// Inert unless built with the `fault-injection` feature (tests only).
    pub faults: crate::fault::Faults,
    /// Inert unless built with the `bench-switches` feature (benchmarks only).
    pub bench: BenchSwitch,
    /// Live access decisions (revocation, suspension, epochs), in memory.
    pub access: Arc<AccessView>,
    /// The audit log's batched writer and the open view sessions.
    pub audit: Arc<hearth_access::audit::Audit>,
    /// Reporting to Google's HomeGraph (off unless configured).
    pub homegraph: HomeGraph,
    /// Base of RTSP stream URLs, once the RTSP egress is listening (off unless
    /// configured).
    pub rtsp_url: std::sync::OnceLock<String>,
    /// Base of the RTMP URLs push cameras publish to (`rtmp://host:port/live`),
    /// once the ingest listener is bound.
    pub ingest_url: std::sync::OnceLock<String>,
    /// The base of RTMPS ingest URLs (`rtmps://host:port/live`), handed to
    /// home agents; unset without an RTMPS listener.
    pub rtmps_url: std::sync::OnceLock<String>,
    /// This node's place among several (unset on a single node).
    pub cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// The master key's derivations (segment keys, viewer keys' secrets).
    pub keys: Arc<hearth_access::keys::MediaKeys>,
    /// The cameras Hearth pulls over RTSP: their tasks and statuses.
    pub pulls: crate::pulls::Pulls,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The state of a server with this data directory (operator token) and audit
    /// writer (see [`hearth_access::audit::Audit::open`]).
    pub fn with_data_dir(
        data_dir: std::path::PathBuf,
        store: Arc<dyn Store>,
        grant_key: GrantKey,
        media_keys: hearth_access::keys::MediaKeys,
        public_url: String,
        limits: &crate::config::LimitsConfig,
        audit: Arc<hearth_access::audit::Audit>,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        let bench = BenchSwitch::from_env();
        let access: Arc<AccessView> = Arc::default();
        let door = Door::new(
            grant_key,
            access.clone(),
            audit.clone(),
            metrics.door.clone(),
            bench,
            DoorSwitch::from_env(),
        );
        let pulls = crate::pulls::Pulls::new(&media_keys);
        let media_keys = Arc::new(media_keys);
        Self(Arc::new(Inner {
            store,
            hubs: HubRegistry::new(metrics.clone(), media_keys.clone()).with_bench_switch(bench),
            keys: media_keys,
            door,
            metrics,
            data_dir,
            public_url: public_url.trim_end_matches('/').to_string(),
            hash_pool: hearth_access::limits::HashPool::for_this_machine(),
            limits: hearth_access::limits::SecretLimits::with_logins_per_address(
                limits.logins_per_address_per_minute,
            ),
            failures: Default::default(),
            admin_token: Default::default(),
            reports: Default::default(),
            faults: crate::fault::Faults::from_env(),
            bench,
            access,
            audit,
            homegraph: Default::default(),
            rtsp_url: Default::default(),
            ingest_url: Default::default(),
            rtmps_url: Default::default(),
            cluster: Default::default(),
            pulls,
        }))
    }

    /// Whether `camera` is live: here, or (in a cluster) on the node that
    /// ingests it, as seen renewing its placement.
    pub fn camera_online(&self, camera: hearth_model::CameraId) -> bool {
        self.hubs.is_online(camera)
            || self.cluster.get().is_some_and(|c| {
                c.placement()
                    .holder(camera, hearth_model::Rendition::Main)
                    .is_some()
            })
    }

    /// Reloads the access view now (after a change made through this process), so
    /// the change is in force before the request that made it is answered; in a
    /// cluster, tells the other nodes. (Always: this node's own poll may have
    /// seen the change first, and the others must hear of it all the same.)
    pub async fn refresh_access(&self) -> Result<(), crate::error::AppError> {
        let (view, store) = (self.access.clone(), self.store.clone());
        tokio::task::spawn_blocking(move || view.refresh(store.as_ref())).await??;
        if let Some(cluster) = self.cluster.get() {
            cluster.announce();
        }
        Ok(())
    }

    /// Writes the failure bursts that have ended (all of them with `flush_all`)
    /// as one audit row each.
    pub fn audit_failures(&self, flush_all: bool) {
        for b in self
            .failures
            .take_ended(hearth_access::clock::now(), flush_all)
        {
            tracing::warn!(
                kind = b.kind.as_str(), address = %b.ip, count = b.count,
                "failed secret checks"
            );
            self.audit.record(hearth_access::audit::event(
                &format!("{}_failures", b.kind.as_str()),
                None,
                serde_json::json!({
                    "address": b.ip.to_string(), "count": b.count,
                    "accounts": b.accounts, "distinct_accounts": b.distinct_accounts,
                    "first_at": b.first_at.0, "last_at": b.last_at.0,
                }),
            ));
        }
    }

    /// Writes `event` into the database before returning: for what must survive
    /// even a power cut once the caller is answered (grants issued, logins).
    /// [`hearth_access::audit::Audit::record`] survives a crash of the process
    /// and never waits for the database; the media path uses that.
    pub async fn audit_now(&self, event: hearth_store::AuditEvent) -> Result<(), AppError> {
        self.db(move |s| s.append_audit(&[event])).await
    }

    /// Runs a store call off the async runtime.
    /// Refuses (409) a camera on trial ("test connection", not saved yet) as
    /// something to share, link or make a viewer key for.
    pub async fn refuse_drafts(
        &self,
        cameras: &[hearth_model::CameraId],
    ) -> Result<(), crate::error::AppError> {
        let drafts = self.db(|s| s.camera_drafts()).await?;
        match drafts.iter().find(|(c, _)| cameras.contains(c)) {
            Some((c, _)) => Err(crate::error::AppError::Conflict(format!(
                "camera {c} is on trial: save it first"
            ))),
            None => Ok(()),
        }
    }

    pub async fn db<T, F>(&self, f: F) -> Result<T, crate::error::AppError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, hearth_store::StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(store.as_ref())).await??)
    }
}

/// What the HomeGraph reporter (`integrations::homegraph`) is told: configured
/// once at start-up; renames are handed to it by the API.
#[derive(Default)]
pub struct HomeGraph {
    config: OnceLock<GoogleConfig>,
    renamed: Mutex<HashSet<CameraId>>,
}

impl HomeGraph {
    pub fn configure(&self, cfg: GoogleConfig) {
        let _ = self.config.set(cfg);
    }

    /// Whether Hearth reports state to Google (SYNC's `willReportState`).
    pub fn enabled(&self) -> bool {
        self.config.get().is_some()
    }

    pub fn camera_renamed(&self, camera: CameraId) {
        if self.enabled() {
            self.lock_renamed().insert(camera);
        }
    }

    /// The configuration, once the server configured reporting.
    pub fn config(&self) -> Option<GoogleConfig> {
        self.config.get().cloned()
    }

    /// The cameras renamed since the last call.
    pub fn take_renamed(&self) -> HashSet<CameraId> {
        std::mem::take(&mut *self.lock_renamed())
    }

    fn lock_renamed(&self) -> std::sync::MutexGuard<'_, HashSet<CameraId>> {
        self.renamed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
