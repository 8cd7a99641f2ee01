//! The data directory holds password and token hashes, keys and the audit log:
//! the database and its WAL files are owner-only even when the directory
//! already existed with an open mode (which is warned about).

mod common;
use common::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_database_is_owner_only_in_an_open_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = hearth()
        .args(["user", "add", "--email", "a@example.com", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("data directory is open to other users"),
        "{stderr}"
    );
    for f in ["hearth.db", "hearth.db-wal", "hearth.db-shm"] {
        let p = data.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
    assert!(data.join("hearth.db").exists());

    // A database an older run left world-readable is tightened.
    std::fs::set_permissions(
        data.join("hearth.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = hearth()
        .args(["camera", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(mode(&data.join("hearth.db")), 0o600);
}
