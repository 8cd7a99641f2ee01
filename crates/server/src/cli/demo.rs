//! `hearth demo`: the server plus two households of demo data and simulated cameras
//! publishing to it over real RTMP, exactly like real cameras would.
//!
//! Demo accounts are created on first run and their passwords reset on every run;
//! demo cameras get a fresh stream key on every run (keys are stored only as hashes,
//! so an old one cannot be recovered).

use crate::config::Config;
use hearth_camera::SimCameraConfig;
use hearth_store::Store;
use std::sync::Arc;

pub struct DemoCamera {
    pub owner: &'static str,
    pub name: &'static str,
    pub timezone: &'static str,
}

pub const DEMO_CAMERAS: [DemoCamera; 3] = [
    DemoCamera {
        owner: "owner-a@example.com",
        name: "Living room",
        timezone: "Europe/Amsterdam",
    },
    DemoCamera {
        owner: "owner-a@example.com",
        name: "Nursery",
        timezone: "Europe/Amsterdam",
    },
    DemoCamera {
        owner: "owner-b@example.com",
        name: "Front door",
        timezone: "America/New_York",
    },
];
pub const DEMO_USERS: [&str; 2] = ["owner-a@example.com", "owner-b@example.com"];

/// Options of the demo's simulated cameras.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub password: Option<String>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub keyframe_interval_ms: u32,
    /// The cameras' sub stream (published beside the main one), if any.
    pub sub_size: Option<(u32, u32)>,
    /// Busy pictures (see `SimCameraConfig::busy`).
    pub busy: bool,
    /// Where a simulated IP camera (not in any household) serves RTSP, for
    /// trying "Add a camera"; another port if that one is taken.
    pub rtsp_camera: Option<std::net::SocketAddr>,
}

fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..14)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Ensures the demo data exists; returns `(email, password)` pairs and
/// `(camera, stream key)` pairs.
#[allow(clippy::type_complexity)]
fn ensure_data(
    store: &dyn Store,
    password: Option<&str>,
) -> anyhow::Result<(
    Vec<(String, String)>,
    Vec<(hearth_store::Camera, hearth_model::RawToken)>,
)> {
    let mut accounts = Vec::new();
    for email in DEMO_USERS {
        let pw = password.map(str::to_string).unwrap_or_else(random_password);
        match store.user_by_email(email)? {
            Some(u) => {
                let hash = hearth_access::password::hash_password(&pw)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                store.set_user_password_hash(u.id, &hash)?;
            }
            None => {
                crate::cli::admin::add_user(store, email, &pw)?;
            }
        }
        accounts.push((email.to_string(), pw));
    }
    let mut cameras = Vec::new();
    for d in &DEMO_CAMERAS {
        let user = store
            .user_by_email(d.owner)?
            .ok_or_else(|| anyhow::anyhow!("demo user vanished"))?;
        let existing = store
            .cameras_visible_to(user.id)?
            .into_iter()
            .find(|c| c.name == d.name);
        let pair = match existing {
            Some(c) => {
                let key = crate::cli::admin::rotate_stream_key(store, &c)?;
                (c, key)
            }
            None => crate::cli::admin::add_camera(store, d.owner, d.name, d.timezone, None)?,
        };
        cameras.push(pair);
    }
    Ok((accounts, cameras))
}

/// Starts the simulated IP camera "Garden" on `addr` (or any port, if that
/// one is taken); its URL and password.
async fn start_ip_camera(
    addr: std::net::SocketAddr,
    opts: &DemoOptions,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(String, String)> {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind((addr.ip(), 0)).await?,
    };
    let url = format!(
        "rtsp://{}/stream1",
        crate::config::reachable(listener.local_addr()?)
    );
    let password = random_password();
    let mut sim = SimCameraConfig::new(
        "Garden",
        "Europe/Amsterdam",
        hearth_camera::signature_for_name("Garden"),
    );
    (sim.width, sim.height, sim.fps, sim.busy) = (opts.width, opts.height, opts.fps, opts.busy);
    sim.keyframe_interval_ms = opts.keyframe_interval_ms;
    let login = hearth_camera::RtspLogin {
        user: "admin".into(),
        password: password.clone(),
    };
    tokio::spawn(async move {
        if let Err(e) = hearth_camera::serve_rtsp(listener, sim, login, stop).await {
            tracing::error!(error = %e, "simulated IP camera stopped");
        }
    });
    Ok((url, password))
}

/// Runs the demo until Ctrl-C.
pub async fn run(cfg: Config, opts: DemoOptions) -> anyhow::Result<()> {
    if opts
        .password
        .as_deref()
        .is_some_and(|p| !hearth_access::password::long_enough(p))
    {
        anyhow::bail!(
            "--demo-password must have at least {} characters",
            hearth_access::password::MIN_PASSWORD_CHARS
        );
    }
    if let Some((width, height)) = opts.sub_size {
        let mut sub = SimCameraConfig::new("sub", "UTC", 0);
        (sub.width, sub.height, sub.fps) = (width, height, opts.fps);
        sub.validate()
            .map_err(|e| anyhow::anyhow!("--sub-size {width}x{height}: {e}"))?;
    }
    let running = crate::serve::start(&cfg).await?;
    let store: Arc<dyn Store> = running.state.store.clone();
    let pw = opts.password.clone();
    let (accounts, cameras) =
        tokio::task::spawn_blocking(move || ensure_data(store.as_ref(), pw.as_deref())).await??;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for (cam, key) in &cameras {
        let url = Config::ingest_url(running.rtmp, key.expose());
        let mut sim = SimCameraConfig::new(
            cam.name.clone(),
            cam.timezone.clone(),
            hearth_camera::signature_for(&cam.id),
        );
        sim.width = opts.width;
        sim.height = opts.height;
        sim.fps = opts.fps;
        sim.keyframe_interval_ms = opts.keyframe_interval_ms;
        sim.busy = opts.busy;
        // The camera signs its GOPs at the source, naming itself.
        sim.camera_id = Some(cam.id);
        let rx = stop_rx.clone();
        let name = cam.name.clone();
        let sub_size = opts.sub_size;
        tokio::spawn(async move {
            if let Err(e) = hearth_camera::publish_renditions(&url, sim, sub_size, rx).await {
                tracing::error!(camera = %name, error = %e, "simulated camera stopped");
            }
        });
    }

    let ip_camera = match opts.rtsp_camera {
        Some(addr) => Some(start_ip_camera(addr, &opts, stop_rx.clone()).await?),
        None => None,
    };

    println!();
    println!("Hearth demo is running.");
    println!();
    println!("  Open:  {}/", running.public_url);
    println!();
    for (email, pw) in &accounts {
        println!("  Log in as {email:<22} password {pw}");
    }
    println!();
    for (cam, _) in &cameras {
        println!("  Camera {:<12} {}  ({})", cam.name, cam.id, cam.timezone);
    }
    if let Some((url, password)) = &ip_camera {
        println!();
        println!("  An IP camera to add (Add a camera, RTSP): {url}");
        println!("    user admin  password {password}");
    }
    println!("{}", running.addresses(&cfg));
    println!();
    println!("Press Ctrl-C to stop.");

    crate::serve::shutdown_signal().await;
    let _ = stop_tx.send(true);
    running.shutdown().await;
    Ok(())
}
