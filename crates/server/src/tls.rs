//! TLS, with rustls on AWS-LC (the crypto library WebRTC already builds):
//!
//! - the server side of the `[tls]` listeners, HTTPS and RTMPS ([`acceptor`]),
//!   for a box that faces the internet without a proxy in front of it, and for
//!   home agents, whose camera traffic crosses the internet;
//! - the client side of Hearth's own outbound calls ([`client_config`],
//!   [`post_json`]): HomeGraph, and a home agent's link to its server. Hyper's
//!   client connection over tokio-rustls is a dozen lines; reqwest would add a
//!   second HTTP stack for two JSON POSTs.

use anyhow::{Context as _, bail};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// A TLS handshake must finish within this time.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server side of TLS from a PEM certificate chain and private key.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("TLS certificate {}", cert.display()))?;
    if chain.is_empty() {
        bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading TLS key {}", key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("TLS certificate and key do not fit together")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Client TLS trusting the webpki roots, and `extra_ca` (PEM) if given: a
/// home box with a self-made certificate.
pub fn client_config(extra_ca: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading CA certificate {}", path.display()))?
        {
            let cert = cert.with_context(|| format!("CA certificate {}", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("CA certificate {}", path.display()))?;
        }
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// A TLS connection to `host:port`, the certificate checked against `host`.
pub async fn connect(
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_owned()).context("server name")?;
    let tcp = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect((host, port)))
        .await
        .with_context(|| format!("{host}:{port}: no answer within {HANDSHAKE_TIMEOUT:?}"))?
        .with_context(|| format!("connecting to {host}:{port}"))?;
    let _ = tcp.set_nodelay(true);
    tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp),
    )
    .await
    .with_context(|| format!("{host}:{port}: TLS handshake timed out"))?
    .with_context(|| format!("{host}:{port}: TLS handshake"))
}

/// The answer to a [`post_json`]: status and body.
pub struct Answer {
    pub status: u16,
    pub body: bytes::Bytes,
}

/// The longest answer body read.
const MAX_ANSWER: usize = 4 << 20;

/// One POST of a JSON body to an `https://` URL (or `http://`, when
/// `plain_http` allows it), with a bearer token if given.
pub async fn post_json(
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
    tls: &Arc<rustls::ClientConfig>,
    plain_http: bool,
) -> anyhow::Result<Answer> {
    use axum::http::header;
    use http_body_util::BodyExt as _;
    let uri: hyper::Uri = url.parse().with_context(|| format!("URL {url:?}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if plain_http => false,
        Some("http") => bail!("{url}: refusing plain http (use https)"),
        _ => bail!("{url}: not an http(s) URL"),
    };
    let host = uri.host().context("URL has no host")?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri.authority().context("no authority")?.to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = hyper::Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req.body(http_body_util::Full::new(bytes::Bytes::from(
        serde_json::to_vec(body)?,
    )))?;
    let res = if https {
        send(TokioIo::new(connect(tls, &host, port).await?), req).await?
    } else {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .with_context(|| format!("connecting to {host}:{port}"))?;
        send(TokioIo::new(tcp), req).await?
    };
    let status = res.status().as_u16();
    let body = http_body_util::Limited::new(res.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
        .to_bytes();
    Ok(Answer { status, body })
}

async fn send<I>(
    io: I,
    req: hyper::Request<http_body_util::Full<bytes::Bytes>>,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender.send_request(req).await?)
}
