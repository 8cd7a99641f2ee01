//! Shared application state handed to every handler and driver.

use crate::grant::GrantKey;
use crate::hub::HubRegistry;
use crate::metrics::Metrics;
use hearth_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub hubs: HubRegistry,
    pub grant_key: GrantKey,
    pub metrics: Arc<Metrics>,
    /// The data directory (the operator token's hash lives there).
    pub data_dir: std::path::PathBuf,
    /// Base for absolute URLs handed to clients, without a trailing slash.
    pub public_url: String,
    pub auth: crate::auth::PasswordHasher,
    /// Inert unless built with the `fault-injection` feature (tests only).
    pub faults: crate::fault::Faults,
    /// Inert unless built with the `bench-switches` feature (benchmarks only).
    pub bench: crate::bench_switch::BenchSwitch,
    /// Live access decisions (revocation, suspension, epochs), in memory.
    pub access: Arc<crate::access::AccessView>,
    /// The audit log's batched writer and the open view sessions.
    pub audit: Arc<crate::audit::Audit>,
    /// Reporting to Google's HomeGraph (off unless configured).
    pub homegraph: crate::homegraph::HomeGraph,
    /// Base of RTSP stream URLs, once the RTSP egress is listening (off unless
    /// configured).
    pub rtsp_url: std::sync::OnceLock<String>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        grant_key: GrantKey,
        media_keys: crate::keys::MediaKeys,
        public_url: String,
    ) -> Self {
        Self::with_data_dir(
            std::path::PathBuf::new(),
            store,
            grant_key,
            media_keys,
            public_url,
        )
    }

    /// As [`AppState::new`], for a server with a data directory (admin token).
    pub fn with_data_dir(
        data_dir: std::path::PathBuf,
        store: Arc<dyn Store>,
        grant_key: GrantKey,
        media_keys: crate::keys::MediaKeys,
        public_url: String,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        let audit = crate::audit::Audit::start(store.clone());
        let bench = crate::bench_switch::BenchSwitch::from_env();
        Self(Arc::new(Inner {
            store,
            hubs: HubRegistry::new(metrics.clone(), Arc::new(media_keys)).with_bench_switch(bench),
            grant_key,
            metrics,
            data_dir,
            public_url: public_url.trim_end_matches('/').to_string(),
            auth: crate::auth::PasswordHasher::default(),
            faults: crate::fault::Faults::from_env(),
            bench,
            access: Arc::default(),
            audit,
            homegraph: Default::default(),
            rtsp_url: Default::default(),
        }))
    }

    /// Reloads the access view now (after a change made through this process), so
    /// the change is in force before the request that made it is answered.
    pub async fn refresh_access(&self) -> Result<(), crate::error::AppError> {
        let (view, store) = (self.access.clone(), self.store.clone());
        tokio::task::spawn_blocking(move || view.refresh(store.as_ref())).await??;
        Ok(())
    }

    /// Runs a store call off the async runtime.
    pub async fn db<T, F>(&self, f: F) -> Result<T, crate::error::AppError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, hearth_store::StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(store.as_ref())).await??)
    }
}
