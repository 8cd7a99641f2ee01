//! hls.js (npm, installed by `scripts/install-test-deps`) in Chromium, on a
//! page served from the same origin as the media, as a vendor's app embeds it:
//! a small proxy serves the page and hls.js and passes everything else on to
//! Hearth. The page's `startHls(url, session, lowLatency)` plays a playlist,
//! sending the grant holder's session with every request, and records the
//! first presented frame (`window.firstFrameAt`), level switches
//! (`window.levels`, with `window.hls.levels`), fatal errors and what it
//! loaded when (`window.trace`).
#![allow(dead_code)]

use super::client;

fn hls_js() -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-npm/node_modules/hls.js/dist/hls.min.js");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/install-test-deps installs hls.js)",
            path.display()
        )
    })
}

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>hls.js</title>
<video id="v" muted autoplay playsinline width="320" height="180"></video>
<script src="/hls.min.js"></script>
<script>
window.startHls = (url, session, lowLatency) => {
  const v = document.getElementById('v');
  window.levels = [];
  window.errors = [];
  window.t0 = performance.timeOrigin + performance.now();
  v.requestVideoFrameCallback((now, meta) => {
    window.firstFrameAt = performance.timeOrigin + meta.presentationTime;
  });
  const hls = new Hls({
    lowLatencyMode: lowLatency,
    xhrSetup: (xhr) => xhr.setRequestHeader('Authorization', 'Bearer ' + session),
  });
  // What hls.js did, ms from the start: for failure messages.
  window.trace = [];
  const T = (what) => window.trace.push(Math.round(performance.timeOrigin + performance.now() - window.t0) + ' ' + what);
  for (const ev of ['MANIFEST_LOADED', 'LEVEL_LOADED', 'FRAG_LOADED', 'FRAG_BUFFERED']) {
    hls.on(Hls.Events[ev], (e, d) => T(ev + (d.frag ? ' ' + d.frag.sn + (d.part ? '.' + d.part.index : '') : '')));
  }
  v.addEventListener('playing', () => T('playing at ' + v.currentTime.toFixed(2)));
  hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) => window.levels.push(d.level));
  hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.errors.push(d.details); });
  hls.loadSource(url);
  hls.attachMedia(v);
  v.play().catch(() => {});
  window.hls = hls;
};
</script>"#;

/// Serves the hls.js page and hls.js, and passes everything else on to Hearth,
/// so the page and the media share one origin. Returns the proxy's base URL.
pub async fn same_origin_proxy(hearth: String) -> String {
    use axum::body::Body;
    use axum::http::{Request, Response, StatusCode, header};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let js = hls_js();
    let http = client();
    let app = axum::Router::new()
        .route(
            "/hls.html",
            axum::routing::get(|| async { axum::response::Html(PAGE) }),
        )
        .route(
            "/hls.min.js",
            axum::routing::get(move || {
                let js = js.clone();
                async move { ([(header::CONTENT_TYPE, "text/javascript")], js) }
            }),
        )
        .fallback(move |req: Request<Body>| {
            let (http, hearth) = (http.clone(), hearth.clone());
            async move {
                let path = req
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                let mut fwd = http.get(format!("{hearth}{path}"));
                if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
                    fwd = fwd.header(header::AUTHORIZATION, auth.clone());
                }
                match fwd.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let ctype = r.headers().get(header::CONTENT_TYPE).cloned().unwrap_or(
                            header::HeaderValue::from_static("application/octet-stream"),
                        );
                        // Passed on as it arrives, so the player times the
                        // transfer as it really goes (its bandwidth estimate
                        // leaves out the wait for the first byte).
                        Response::builder()
                            .status(status)
                            .header(header::CONTENT_TYPE, ctype)
                            .header(header::CACHE_CONTROL, "no-store")
                            .body(Body::new(Chunks::of(r)))
                            .unwrap()
                    }
                    Err(_) => Response::builder()
                        .status(StatusCode::BAD_GATEWAY)
                        .body(Body::empty())
                        .unwrap(),
                }
            }
        });
    // TCP_NODELAY as Hearth sets it: without it, a response whose body follows
    // its head in a second write waits out the browser's delayed ACK (40 ms a
    // part), which the latency table would charge to Hearth.
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|sock| {
        let _ = sock.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A response body passed on chunk by chunk as it arrives.
struct Chunks(tokio::sync::mpsc::Receiver<bytes::Bytes>);

impl Chunks {
    fn of(mut r: reqwest::Response) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok(Some(chunk)) = r.chunk().await {
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
        });
        Chunks(rx)
    }
}

impl hyper::body::Body for Chunks {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}
