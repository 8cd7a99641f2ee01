//! An outside WHEP client plays `whep_url`: aiortc (PyPI; its own ICE, DTLS,
//! SRTP and H.264 decoder, nothing of it written here) offers, Hearth answers,
//! and the picture aiortc decodes carries the camera's signature.
//! `scripts/install-test-deps` puts aiortc in `target/test-venv`.

mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn venv_python() -> PathBuf {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: scripts/install-test-deps installs aiortc there",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread")]
async fn aiortc_plays_whep_url_and_decodes_the_owners_camera() {
    let python = venv_python();
    let s = Server::demo(320, 180);
    let a = s.login(OWNER_A, PASSWORD).await;
    s.wait_online(&a, "Living room").await;
    let living = s.camera_id(&a, "Living room").await;
    let g = s.grant(&a, &living).await;
    let whep = g["whep_url"].as_str().unwrap().to_string();
    let out = s.dir.path().join("aiortc.rgb");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/aiortc/whep_play.py");
    let (token, out2) = (a.clone(), out.clone());
    let run = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([whep.as_str(), token.as_str(), "30"])
            .arg(&out2)
            .output()
            .expect("python")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "aiortc failed: {stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    println!("aiortc: {v}");
    assert_eq!(v["status"], 201);
    assert!(v["location"].as_str().unwrap().contains("/whep/"), "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(180))
    );
    let rgb = std::fs::read(&out).unwrap();
    assert_eq!(
        hearth_camera::read_signature(&rgb, 320, 180),
        Some(signature_of(&living)),
        "the picture aiortc decoded is the owner's camera"
    );
}
