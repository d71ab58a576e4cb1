//! A full disk, for real: the data dir on a small tmpfs (mounted here, as
//! root). An upload that does not fit gets 507 and keeps nothing; a batch
//! whose commits hit the full disk is paused with reason `disk_full`, loses
//! no card and fails none, and goes on by itself once there is room.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    /// Mounts `size` bytes of tmpfs, or says why it cannot (not root).
    fn mount(size: u64) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Fills the disk at `dir` up to the last byte; returns the filler file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // Whatever is left, byte by byte.
    while f.write_all(&[7]).is_ok() && f.flush().is_ok() {}
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_uploads_pauses_the_batch_and_resumes_with_room() {
    let disk = match Tmpfs::mount(8 * 1024 * 1024) {
        Ok(d) => d,
        Err(why) if unsafe_to_mount() => {
            eprintln!("skipped: a tmpfs cannot be mounted here ({why}); run as root");
            return;
        }
        Err(why) => panic!("cannot mount a tmpfs as root: {why}"),
    };
    // One card at a time, 80 ms each: the batch runs for seconds.
    let sim = start_sim(vlm_sim::SimConfig {
        slots: 1,
        latency: Duration::from_millis(80),
        ..Default::default()
    })
    .await;
    let mut config = sim_config(&sim);
    config.vlm.as_mut().unwrap().concurrency = Some(1);
    let data = tempfile::tempdir_in(disk.path()).unwrap();
    let srv = TestServer::launch(data, config).await;

    // An upload larger than the free space: 507, nothing half-written kept.
    let id = srv.open_batch().await;
    let before = srv.files();
    let mut big = cardex_testkit::jpeg(1);
    big.resize(12 * 1024 * 1024, 0);
    let (s, body) = srv.upload(&id, &[("big.jpg", big)]).await;
    assert_error(s, &body, 507, "insufficient_storage");
    assert_eq!(srv.files(), before, "nothing of the upload was kept");
    let (_, listed) = srv.get(&format!("/api/batches/{id}/images")).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // A batch running when the disk fills up.
    let run = srv.started_batch(&fields_json(), &cards(40)).await;
    srv.wait_for(&run, "the first cards", |b| {
        b["counts"]["done"].as_u64() >= Some(2)
    })
    .await;
    let filler = fill(disk.path());
    let paused = srv
        .wait_for(&run, "the batch to pause for the full disk", |b| {
            b["state"] == "paused"
        })
        .await;
    assert_eq!(paused["pause_code"], "disk_full", "{paused}");
    assert!(paused["pause_reason"].as_str().unwrap().contains("disk"));
    assert_eq!(paused["counts"]["failed"], 0, "{paused}");

    // Room again: it resumes by itself and every card is read once.
    std::fs::remove_file(filler).unwrap();
    let done = srv.wait_finished(&run).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["counts"]["done"], 40);
    assert_eq!(done["counts"]["failed"], 0);
    let rows = srv.results(&run).await;
    assert_eq!(rows.len(), 40);
    assert!(rows.iter().all(|r| r["state"] == "done"));
    srv.stop().await;
}

/// Mounting needs root; anyone else runs this test as a no-op.
fn unsafe_to_mount() -> bool {
    !std::env::var("USER").is_ok_and(|u| u == "root")
        && Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() != "0")
}
