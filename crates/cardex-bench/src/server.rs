//! Starts the release `cardex serve` as a child process on a free port.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// A binary of this workspace's release build.
pub fn release_bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/release")
        .join(name)
}

/// Starts `command` and reads the `http://` URL it prints on its first
/// line (both `cardex serve` and `vlm-sim` do).
pub fn spawn_with_url(mut command: Command) -> anyhow::Result<(Child, String)> {
    let program = command.get_program().to_owned();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {program:?} (build it with `make bench`)"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .with_context(|| format!("unexpected first line from {program:?}: {line:?}"))?
        .to_owned();
    Ok((child, url))
}

/// A running server and its data dir; killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub base: String,
    _data: tempfile::TempDir,
}

impl Server {
    /// Starts `target/release/cardex serve` with extra flags.
    pub fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let mut command = Command::new(release_bin("cardex"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data.path())
            .args(["--bind", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn");
        let (child, base) = spawn_with_url(command)?;
        let base = base.trim_end_matches('/').to_owned();
        Ok(Self {
            child,
            base,
            _data: data,
        })
    }

    /// Creates a batch and returns its id.
    pub async fn create_batch(
        &self,
        client: &reqwest::Client,
        name: &str,
    ) -> anyhow::Result<String> {
        let batch: serde_json::Value = client
            .post(format!("{}/api/batches", self.base))
            .json(&serde_json::json!({"name": name}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        batch["id"]
            .as_str()
            .map(str::to_owned)
            .context("the created batch has no id")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds the server has used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        crate::runner::cpu_seconds_of(&self.child.id().to_string())
    }

    /// Peak resident memory of the server process so far, in MiB.
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc status")?;
        Ok(kib / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
