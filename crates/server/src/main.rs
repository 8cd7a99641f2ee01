//! The `hearth` command.

/// mimalloc, not glibc malloc: with glibc, segment buffers of ~0.5 MB freed on
/// other threads than they were made on fragmented the per-thread arenas (RSS
/// about twice the live bytes, `MALLOC_ARENA_MAX=1` halved it), and a login flood
/// grew the process to 8 GB that it never returned. mimalloc's sharded free lists
/// and its return of idle pages to the OS keep RSS near the live bytes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Args, Parser, Subcommand};
use hearth_server::config::{Config, FileConfig, Flags};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "hearth", version, about = "Hearth: a camera streaming server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command; flags override the config file.
#[derive(Args, Clone)]
struct Common {
    /// TOML config file (keys: http, rtmp, data_dir, keys_dir, database_url, public_url, rtsp, rtsp_public_url, admin, webrtc, webrtc_candidates, [[ice_servers]], [limits], [tls], [google]).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// HTTP API and web app address [default: 127.0.0.1:8080].
    #[arg(long, global = true)]
    http: Option<SocketAddr>,
    /// RTMP ingest address [default: 127.0.0.1:1935].
    #[arg(long, global = true)]
    rtmp: Option<SocketAddr>,
    /// Data directory (database, keys) [default: ./hearth-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Where grant.key and media.key are: the same for every node of a
    /// cluster [default: the data directory].
    #[arg(long, global = true, env = "HEARTH_KEYS_DIR")]
    keys_dir: Option<PathBuf>,
    /// PostgreSQL instead of the embedded SQLite file
    /// (`postgres://user:password@host:port/db`); from the environment, so the
    /// password stays out of the process list.
    #[arg(
        long,
        global = true,
        env = "HEARTH_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// The cluster's control plane (`nats://user:password@host:port`), with
    /// --database-url: this process is one of several nodes.
    #[arg(long, global = true, env = "HEARTH_NATS_URL", hide_env_values = true)]
    nats_url: Option<String>,
    /// This node's name in a cluster [default: its HTTP address].
    #[arg(long, global = true)]
    node: Option<String>,
    /// Base of absolute URLs handed to clients [default: derived from --http].
    #[arg(long, global = true)]
    public_url: Option<String>,
    /// RTSP egress address for smart displays (Alexa) [default: off].
    #[arg(long, global = true)]
    rtsp: Option<SocketAddr>,
    /// The operator's admin API address [default: 127.0.0.1:8081]; keep it off
    /// the public network.
    #[arg(long, global = true)]
    admin: Option<SocketAddr>,
    /// WebRTC (WHEP) media address, UDP, one port for every viewer
    /// [default: 127.0.0.1:8189].
    #[arg(long, global = true)]
    webrtc: Option<SocketAddr>,
    /// TLS certificate chain (PEM) for --https and --rtmps.
    #[arg(long, global = true)]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --https and --rtmps.
    #[arg(long, global = true)]
    tls_key: Option<PathBuf>,
    /// The HTTP API and web app over TLS [default: off].
    #[arg(long, global = true)]
    https: Option<SocketAddr>,
    /// RTMP ingest over TLS (RTMPS), for home agents [default: off].
    #[arg(long, global = true)]
    rtmps: Option<SocketAddr>,
}

impl Common {
    fn resolve(&self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let cfg = Config::resolve(
            file,
            Flags {
                http: self.http,
                rtmp: self.rtmp,
                data_dir: self.data_dir.clone(),
                keys_dir: self.keys_dir.clone(),
                database_url: self.database_url.clone(),
                nats_url: self.nats_url.clone(),
                node: self.node.clone(),
                public_url: self.public_url.clone(),
                rtsp: self.rtsp,
                admin: self.admin,
                webrtc: self.webrtc,
                tls: hearth_server::config::TlsConfig {
                    cert: self.tls_cert.clone(),
                    key: self.tls_key.clone(),
                    https: self.https,
                    rtmps: self.rtmps,
                },
            },
        );
        cfg.tls.validate()?;
        if cfg.cluster.is_some() && cfg.database_url.is_none() {
            anyhow::bail!(
                "a cluster node (--nats-url, [cluster]) needs the shared database: --database-url"
            );
        }
        if cfg.cluster.is_some() && cfg.keys_dir == cfg.data_dir {
            anyhow::bail!(
                "a cluster node (--nats-url, [cluster]) needs the keys every node shares: --keys-dir (or keys_dir)"
            );
        }
        Ok(cfg)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: HTTP API + web app and RTMP ingest.
    Serve {
        #[command(flatten)]
        common: Common,
    },
    /// Run the server with demo accounts and simulated cameras.
    #[command(args_override_self = true)]
    Demo {
        #[command(flatten)]
        common: Common,
        /// Password for both demo accounts [default: random, printed].
        #[arg(long)]
        demo_password: Option<String>,
        /// Size of the simulated cameras' picture.
        #[arg(long, default_value = "1280x720", value_parser = parse_size)]
        size: (u32, u32),
        #[arg(long, default_value_t = 15)]
        fps: u32,
        /// Milliseconds between the simulated cameras' keyframes (IDR frames).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(200..=20_000))]
        keyframe_ms: u32,
        /// Size of the cameras' sub stream (published beside the main one under
        /// `<key>/sub`), or `none`.
        #[arg(long, default_value = "640x360", value_parser = parse_sub_size)]
        sub_size: SubSize,
        /// Busy pictures (detail that changes every frame), for a real camera's
        /// bitrate rather than a static scene's.
        #[arg(long)]
        busy: bool,
        /// Where a simulated IP camera serves RTSP, for trying "Add a camera"
        /// (another port if it is taken), or `none`.
        #[arg(long, default_value = "127.0.0.1:8554")]
        rtsp_camera: String,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Manage and simulate cameras.
    Camera {
        #[command(subcommand)]
        cmd: CameraCmd,
    },
    /// A home agent: pulls cameras on this LAN and pushes them to a remote
    /// Hearth over TLS (for cameras behind NAT).
    Agent {
        #[command(subcommand)]
        cmd: AgentCmd,
    },
    /// Kill switch: suspend an integration, household, camera or user. Live views
    /// under it are refused within a second; the state survives restarts.
    Suspend {
        #[command(flatten)]
        common: Common,
        /// integration | household | camera | user
        kind: String,
        /// Integration name, household id, camera id or user email.
        target: String,
        #[arg(long, default_value = "suspended by operator")]
        reason: String,
    },
    /// Create (or replace) the operator token for the admin API; shown once.
    AdminToken {
        #[command(flatten)]
        common: Common,
    },
    /// Read the audit log.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Smart-display integrations (Google Home, Alexa): their OAuth clients.
    Integration {
        #[command(subcommand)]
        cmd: IntegrationCmd,
    },
    /// Lift a kill switch.
    Resume {
        #[command(flatten)]
        common: Common,
        kind: String,
        target: String,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Every grant, view and snapshot of one camera.
    Views {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        camera: String,
        /// Unix milliseconds or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
    /// For each camera: who was sent its bytes, and the isolation violations blocked.
    Exposure {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Subcommand)]
enum IntegrationCmd {
    /// Register (or replace) the OAuth client that google or alexa uses for account
    /// linking. Existing links stay.
    Add {
        #[command(flatten)]
        common: Common,
        /// google | alexa
        integration: String,
        /// The client id you enter in the platform's console.
        #[arg(long)]
        client_id: String,
        /// Read the client secret (at least 32 characters) from the first line of stdin.
        #[arg(long, required = true)]
        client_secret_stdin: bool,
        /// A redirect URI the platform uses, matched exactly; repeat for several.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
    },
    /// List the registered clients (never their secrets).
    List {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user (with a household of their own); the password is read from stdin.
    Add {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum AgentCmd {
    /// Pair with a server, using the one-time code its web app shows
    /// (Account → Home agents); the credential goes to --file (mode 0600).
    Pair {
        /// The server's URL (https://...).
        #[arg(long)]
        server: String,
        /// The claim code (XXXX-XXXX-XXXX).
        #[arg(long)]
        code: String,
        /// What the owner sees this agent as.
        #[arg(long, default_value = "Home agent")]
        name: String,
        /// A CA certificate (PEM) to trust besides the public roots.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Allow an http:// server URL (a server on this machine only).
        #[arg(long)]
        allow_plain_http: bool,
        #[arg(long, default_value = "hearth-agent.json")]
        file: PathBuf,
    },
    /// Run: pull the cameras the server assigns and push them to it.
    Run {
        #[arg(long, default_value = "hearth-agent.json")]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum CameraCmd {
    /// Add a camera to a user's household. A camera Hearth pulls: give
    /// `--rtsp-url` (and the camera's user name and password); otherwise it is
    /// a push camera and its RTMP ingest URL is printed.
    Add {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        owner: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// The camera's main stream, `rtsp://host[:port]/path`.
        #[arg(long)]
        rtsp_url: Option<String>,
        /// The camera's sub stream (its smaller picture), if it has one.
        #[arg(long, requires = "rtsp_url")]
        rtsp_sub_url: Option<String>,
        #[arg(long, requires = "rtsp_url", default_value = "")]
        rtsp_username: String,
        /// Read the camera's password from the first line of stdin.
        #[arg(long, requires = "rtsp_url")]
        rtsp_password_stdin: bool,
        /// RTP over the RTSP connection (`tcp`) or over `udp`.
        #[arg(long, requires = "rtsp_url", default_value = "tcp", value_parser = ["tcp", "udp"])]
        rtsp_transport: String,
    },
    /// Move a camera to another user's household (new binding epoch, new stream key).
    Transfer {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        camera: String,
        #[arg(long)]
        to: String,
    },
    /// Factory-reset a camera: new stream key, new binding epoch, shares dropped.
    Reset {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        camera: String,
    },
    /// List all cameras.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Run one simulated camera publishing to an RTMP URL (or writing its
    /// pictures to a pipe, for a test RTSP camera to serve).
    Simulate {
        #[arg(long = "rtmp", required_unless_present_any = ["h264_out", "rtsp_listen"])]
        url: Option<String>,
        /// Be an IP camera instead: serve RTSP (Digest auth) on this address,
        /// the main stream only, at any path.
        #[arg(long, conflicts_with_all = ["url", "h264_out"])]
        rtsp_listen: Option<SocketAddr>,
        /// The RTSP camera's user name.
        #[arg(long, default_value = "admin", requires = "rtsp_listen")]
        rtsp_user: String,
        /// Read the RTSP camera's password from the first line of stdin.
        #[arg(long, requires = "rtsp_listen")]
        rtsp_password_stdin: bool,
        /// Write length-prefixed Annex B access units here (`-`: stdout)
        /// instead of publishing; the main stream only.
        #[arg(long, conflicts_with = "url")]
        h264_out: Option<String>,
        #[arg(long, default_value = "Simulated camera")]
        name: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[arg(long, default_value = "1280x720", value_parser = parse_size)]
        size: (u32, u32),
        #[arg(long, default_value_t = 15)]
        fps: u32,
        /// Milliseconds between keyframes (IDR frames).
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(200..=20_000))]
        keyframe_ms: u32,
        /// Size of the sub stream, published to the URL + `/sub` beside the main
        /// stream, or `none`.
        #[arg(long, default_value = "640x360", value_parser = parse_sub_size)]
        sub_size: SubSize,
        /// A busy picture (detail that changes every frame).
        #[arg(long)]
        busy: bool,
        /// Visual signature drawn on the picture [default: derived from the name].
        #[arg(long)]
        signature: Option<u32>,
    },
}

/// Runs an admin operation against the data dir's store, off the runtime.
async fn on_store<T: Send + 'static>(
    common: &Common,
    f: impl FnOnce(&dyn hearth_store::Store, &Config) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let cfg = common.resolve()?;
    let cluster = cfg.cluster.clone();
    let (out, changed) = tokio::task::spawn_blocking(move || {
        let store = hearth_server::serve::open_store(&cfg)?;
        let before = store.generation()?;
        let out = f(store.as_ref(), &cfg)?;
        anyhow::Ok((out, store.generation()? != before))
    })
    .await??;
    // The nodes of a cluster hear of it at once (else at their next poll).
    if let (Some(cluster), true) = (cluster, changed)
        && let Err(e) = hearth_server::cluster::announce_once(&cluster).await
    {
        eprintln!("the change is stored; the nodes will see it at their next poll ({e:#})");
    }
    Ok(out)
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once('x').ok_or("expected WIDTHxHEIGHT")?;
    let w: u32 = w.parse().map_err(|_| "bad width")?;
    let h: u32 = h.parse().map_err(|_| "bad height")?;
    if !(16..=3840).contains(&w)
        || !(16..=2160).contains(&h)
        || !w.is_multiple_of(2)
        || !h.is_multiple_of(2)
    {
        return Err("size must be even and between 16x16 and 3840x2160".into());
    }
    Ok((w, h))
}

/// A simulated camera's sub-stream size, if it has one.
#[derive(Clone, Copy, Debug)]
struct SubSize(Option<(u32, u32)>);

fn parse_sub_size(s: &str) -> Result<SubSize, String> {
    if s == "none" {
        return Ok(SubSize(None));
    }
    parse_size(s).map(|size| SubSize(Some(size)))
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Agent {
            cmd:
                AgentCmd::Pair {
                    server,
                    code,
                    name,
                    ca,
                    allow_plain_http,
                    file,
                },
        } => {
            let link = hearth_server::agent::Link {
                server,
                ca,
                allow_plain_http,
            };
            let agent = hearth_server::agent::pair(link, &code, &name, &file).await?;
            println!("paired: agent {agent}; credential in {}", file.display());
            Ok(())
        }
        Command::Agent {
            cmd: AgentCmd::Run { file },
        } => {
            let f = hearth_server::agent::AgentFile::load(&file)?;
            hearth_server::agent::run(f, hearth_server::serve::shutdown_signal()).await
        }
        Command::Serve { common } => {
            let cfg = common.resolve()?;
            let running = hearth_server::serve::start(&cfg).await?;
            println!("Hearth is serving {}/", running.public_url);
            println!("{}", running.addresses(&cfg));
            hearth_server::serve::shutdown_signal().await;
            running.shutdown().await;
            Ok(())
        }
        Command::Demo {
            common,
            demo_password,
            size,
            fps,
            keyframe_ms,
            sub_size,
            busy,
            rtsp_camera,
        } => {
            let cfg = common.resolve()?;
            let rtsp_camera = match rtsp_camera.as_str() {
                "none" => None,
                a => Some(
                    a.parse::<SocketAddr>()
                        .map_err(|e| anyhow::anyhow!("--rtsp-camera {a}: {e}"))?,
                ),
            };
            let opts = hearth_server::cli::demo::DemoOptions {
                rtsp_camera,
                password: demo_password,
                width: size.0,
                height: size.1,
                fps,
                keyframe_interval_ms: keyframe_ms,
                sub_size: sub_size.0,
                busy,
            };
            hearth_server::cli::demo::run(cfg, opts).await
        }
        Command::Integration {
            cmd:
                IntegrationCmd::Add {
                    common,
                    integration,
                    client_id,
                    client_secret_stdin: _,
                    redirect_uris,
                },
        } => {
            let mut secret = String::new();
            std::io::stdin().lock().read_line(&mut secret)?;
            let secret = secret.trim_end_matches(['\r', '\n']).to_string();
            let client = hearth_server::cli::admin::oauth_client(
                &integration,
                &client_id,
                &secret,
                redirect_uris,
            )?;
            let shown = format!("{} {}", client.integration.as_str(), client.client_id);
            on_store(&common, move |s, _| {
                s.put_oauth_client(&client)?;
                hearth_server::api::admin::record_admin(
                    s,
                    "integration_client_registered",
                    None,
                    serde_json::json!({"integration": client.integration.as_str(), "client_id": client.client_id, "redirect_uris": client.redirect_uris}),
                )?;
                Ok(())
            })
            .await?;
            println!("integration {shown}");
            Ok(())
        }
        Command::Integration {
            cmd: IntegrationCmd::List { common },
        } => {
            let clients = on_store(&common, |s, _| Ok(s.oauth_clients()?)).await?;
            for c in clients {
                println!(
                    "{} client_id={} redirect_uris={}",
                    c.integration.as_str(),
                    c.client_id,
                    c.redirect_uris.join(",")
                );
            }
            Ok(())
        }
        Command::User {
            cmd: UserCmd::Add { common, email },
        } => {
            let cfg = common.resolve()?;
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            let user = tokio::task::spawn_blocking(move || {
                let store = hearth_server::serve::open_store(&cfg)?;
                hearth_server::cli::admin::add_user(store.as_ref(), &email, &password)
            })
            .await??;
            println!("user {} {}", user.id, user.email);
            Ok(())
        }
        Command::Camera {
            cmd:
                CameraCmd::Add {
                    common,
                    owner,
                    name,
                    timezone,
                    rtsp_url,
                    rtsp_sub_url,
                    rtsp_username,
                    rtsp_password_stdin,
                    rtsp_transport,
                },
        } => {
            use hearth_server::ingest::rtsp::source::{RtpTransport, RtspSource};
            let cfg = common.resolve()?;
            let mut password = String::new();
            if rtsp_password_stdin {
                std::io::stdin().lock().read_line(&mut password)?;
            }
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            let transport = if rtsp_transport == "udp" {
                RtpTransport::Udp
            } else {
                RtpTransport::Tcp
            };
            let source = rtsp_url
                .map(|url| {
                    RtspSource::new(
                        &url,
                        rtsp_sub_url.as_deref(),
                        &rtsp_username,
                        &password,
                        transport,
                    )
                })
                .transpose()?;
            let cfg2 = cfg.clone();
            let (cam, key) = tokio::task::spawn_blocking(move || {
                let store = hearth_server::serve::open_store(&cfg2)?;
                let keys = hearth_server::serve::media_keys(&cfg2.keys_dir)?;
                let sealer = hearth_access::sealed::SecretBox::camera_sources(&keys);
                let source = source.as_ref().map(|s| (s, &sealer));
                hearth_server::cli::admin::add_camera(
                    store.as_ref(),
                    &owner,
                    &name,
                    &timezone,
                    source,
                )
                .map(|(cam, key)| (cam, source.is_none().then_some(key)))
            })
            .await??;
            println!("camera {}", cam.id);
            match key {
                Some(key) => {
                    println!("ingest {}", Config::ingest_url(cfg.rtmp, key.expose()));
                    println!("(the stream key is shown only now; it is stored as a hash)");
                }
                None => println!(
                    "pulled over RTSP: the web app and GET /api/v1/cameras show its status"
                ),
            }
            Ok(())
        }
        Command::Camera {
            cmd: CameraCmd::Transfer { common, camera, to },
        } => {
            let (epoch, key) = on_store(&common, move |s, _| {
                hearth_server::cli::admin::transfer_camera(s, &camera, &to)
            })
            .await?;
            let cfg = common.resolve()?;
            println!("transferred; binding epoch is now {epoch}");
            println!("ingest {}", Config::ingest_url(cfg.rtmp, key.expose()));
            println!(
                "(a new stream key for the new owner, shown only now: point the camera at this \
                 URL; the old key no longer works)"
            );
            Ok(())
        }
        Command::Camera {
            cmd: CameraCmd::Reset { common, camera },
        } => {
            let (cam, epoch, key) = on_store(&common, move |s, _| {
                hearth_server::cli::admin::reset_camera(s, &camera)
            })
            .await?;
            let cfg = common.resolve()?;
            println!("camera {} reset; binding epoch is now {epoch}", cam.id);
            println!("ingest {}", Config::ingest_url(cfg.rtmp, key.expose()));
            println!("(the new stream key is shown only now; the old one no longer works)");
            Ok(())
        }
        Command::AdminToken { common } => {
            let cfg = common.resolve()?;
            std::fs::create_dir_all(&cfg.data_dir)?;
            let token = hearth_access::operator::create_token(&cfg.data_dir)?;
            println!("admin token {}", token.expose());
            println!("(shown only now; send it as 'Authorization: Bearer ...' to /api/v1/admin/*)");
            Ok(())
        }
        Command::Audit {
            cmd:
                AuditCmd::Views {
                    common,
                    camera,
                    since,
                },
        } => {
            let out = on_store(&common, move |s, _| {
                let since = hearth_server::cli::admin::parse_since(since.as_deref())?;
                hearth_server::cli::admin::audit_views(s, &camera, since)
            })
            .await?;
            print!("{out}");
            Ok(())
        }
        Command::Audit {
            cmd: AuditCmd::Exposure { common, since },
        } => {
            let out = on_store(&common, move |s, _| {
                let since = hearth_server::cli::admin::parse_since(since.as_deref())?;
                hearth_server::cli::admin::audit_exposure(s, since)
            })
            .await?;
            print!("{out}");
            Ok(())
        }
        Command::Suspend {
            common,
            kind,
            target,
            reason,
        } => {
            let now = hearth_access::clock::now();
            let new = on_store(&common, move |s, _| {
                let (kind, target) =
                    hearth_server::api::admin::suspension_target(s, &kind, &target)?;
                let new = s.suspend(kind, &target, &reason, now)?;
                hearth_server::api::admin::record_admin(
                    s,
                    "suspend",
                    target.parse().ok(),
                    serde_json::json!({"kind": kind.as_str(), "target": target, "reason": reason}),
                )?;
                Ok(new)
            })
            .await?;
            println!(
                "{}",
                if new {
                    "suspended"
                } else {
                    "was already suspended"
                }
            );
            Ok(())
        }
        Command::Resume {
            common,
            kind,
            target,
        } => {
            let was = on_store(&common, move |s, _| {
                let (kind, target) =
                    hearth_server::api::admin::suspension_target(s, &kind, &target)?;
                let was = s.resume(kind, &target)?;
                hearth_server::api::admin::record_admin(
                    s,
                    "resume",
                    target.parse().ok(),
                    serde_json::json!({"kind": kind.as_str(), "target": target}),
                )?;
                Ok(was)
            })
            .await?;
            println!("{}", if was { "resumed" } else { "was not suspended" });
            Ok(())
        }
        Command::Camera {
            cmd: CameraCmd::List { common },
        } => {
            let cfg = common.resolve()?;
            let table = tokio::task::spawn_blocking(move || {
                let store = hearth_server::serve::open_store(&cfg)?;
                hearth_server::cli::admin::camera_table(store.as_ref())
            })
            .await??;
            print!("{table}");
            Ok(())
        }
        Command::Camera {
            cmd:
                CameraCmd::Simulate {
                    url,
                    rtsp_listen,
                    rtsp_user,
                    rtsp_password_stdin,
                    h264_out,
                    name,
                    timezone,
                    size,
                    fps,
                    keyframe_ms,
                    sub_size,
                    busy,
                    signature,
                },
        } => {
            hearth_camera::validate_timezone(&timezone).map_err(|e| anyhow::anyhow!("{e}"))?;
            let sig = signature.unwrap_or_else(|| hearth_camera::signature_for_name(&name));
            let mut cfg = hearth_camera::SimCameraConfig::new(name, timezone, sig);
            cfg.width = size.0;
            cfg.height = size.1;
            cfg.fps = fps;
            cfg.keyframe_interval_ms = keyframe_ms;
            cfg.busy = busy;
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                let _ = tx.send(true);
            });
            if let Some(addr) = rtsp_listen {
                anyhow::ensure!(
                    rtsp_password_stdin,
                    "an RTSP camera needs a password: --rtsp-password-stdin"
                );
                let mut password = String::new();
                std::io::stdin().lock().read_line(&mut password)?;
                let password = password.trim_end_matches(['\r', '\n']).to_owned();
                anyhow::ensure!(!password.is_empty(), "an empty password");
                let listener = tokio::net::TcpListener::bind(addr).await?;
                println!("rtsp rtsp://{}/stream1", listener.local_addr()?);
                let login = hearth_camera::RtspLogin {
                    user: rtsp_user,
                    password,
                };
                return hearth_camera::serve_rtsp(listener, cfg, login, rx)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"));
            }
            match (url, h264_out) {
                (_, Some(path)) => {
                    let out = if path == "-" {
                        use std::os::fd::AsFd;
                        let fd = std::io::stdout().as_fd().try_clone_to_owned()?;
                        tokio::fs::File::from_std(std::fs::File::from(fd))
                    } else {
                        tokio::fs::File::create(&path).await?
                    };
                    hearth_camera::write_frames(out, cfg, rx).await
                }
                (Some(url), None) => {
                    hearth_camera::publish_renditions(&url, cfg, sub_size.0, rx).await
                }
                (None, None) => Err(hearth_camera::CameraError::InvalidConfig(
                    "give --rtmp or --h264-out".into(),
                )),
            }
            .map_err(|e| anyhow::anyhow!("{e}"))
        }
    }
}
