//! Running one of poppler's command-line tools on a file we were sent,
//! within bounds: a wall-clock timeout after which the child is killed, an
//! address-space limit (through util-linux's `prlimit`, when it is on the
//! PATH) so a PDF bomb cannot take the machine's memory, a CPU-time limit
//! as a backstop, and capped output. No `unsafe` `pre_exec` is needed:
//! `prlimit` sets the limits on itself and then executes the tool, so the
//! child we kill is the tool itself.

use std::ffi::OsString;
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Most stdout a tool may write (`pdfimages -list` of a 5,000-page PDF is
/// well under a megabyte); more means the file is not what it claims.
const MAX_STDOUT: usize = 16 * 1024 * 1024;
/// Most stderr kept for the error message; the rest is read and dropped
/// (poppler can print a line per damaged object, millions of them).
const MAX_STDERR: usize = 16 * 1024;

/// The bounds a tool runs within.
#[derive(Debug, Clone, Copy)]
pub struct ToolLimits {
    /// Wall-clock time per run.
    pub timeout: Duration,
    /// Address space per run, in bytes (needs `prlimit`).
    pub memory_bytes: u64,
}

/// What a finished run left.
#[derive(Debug)]
pub(crate) struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// The start of what the tool wrote to stderr, lossily.
    pub stderr: String,
}

/// Why a run gave no output.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ToolError {
    /// The program is not installed.
    #[error("{0} is not installed on the server (Debian package poppler-utils)")]
    Missing(&'static str),
    /// It ran out of time (and was killed).
    #[error("it took longer than {} seconds and was stopped", .0.as_secs())]
    TimedOut(Duration),
    /// It wrote far more than any honest file makes it write.
    #[error("it wrote more output than any page needs")]
    TooMuchOutput,
    /// Starting or talking to it failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Whether `prlimit` can be used to bound a tool's memory.
fn prlimit_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| on_path("prlimit"))
}

/// Whether an executable file named `name` is in one of the PATH's folders.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Runs `program args…` within `limits`.
pub(crate) async fn run(
    program: &'static str,
    args: &[OsString],
    limits: ToolLimits,
) -> Result<Output, ToolError> {
    let mut command = if prlimit_available() {
        let mut c = tokio::process::Command::new("prlimit");
        // The CPU limit is a backstop for the wall clock; --as is the
        // memory bound. Both are inherited by nothing: the tool forks none.
        c.arg(format!("--as={}", limits.memory_bytes))
            .arg(format!("--cpu={}", limits.timeout.as_secs().max(1) + 1))
            .arg("--")
            .arg(program);
        c
    } else {
        tokio::process::Command::new(program)
    };
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ToolError::Missing(program),
        _ => ToolError::Io(e),
    })?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let finished = tokio::time::timeout(limits.timeout, async {
        tokio::join!(
            read_capped(stdout, MAX_STDOUT),
            read_capped(stderr, MAX_STDERR),
            child.wait()
        )
    })
    .await;
    let Ok((stdout, stderr, status)) = finished else {
        let _ = child.kill().await;
        return Err(ToolError::TimedOut(limits.timeout));
    };
    let (stdout, cut) = stdout?;
    let status = status?;
    if cut {
        return Err(ToolError::TooMuchOutput);
    }
    // `prlimit` itself reports a missing program as exit status 127
    // ("failed to execute"); it cannot be told apart otherwise.
    if prlimit_available() && status.code() == Some(127) && !on_path(program) {
        return Err(ToolError::Missing(program));
    }
    Ok(Output {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr?.0).into_owned(),
    })
}

/// Reads a pipe to its end, keeping at most `cap` bytes; also says
/// whether there was more.
async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    cap: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let (mut kept, mut cut) = (Vec::new(), false);
    let Some(mut pipe) = pipe else {
        return Ok((kept, cut));
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            return Ok((kept, cut));
        }
        let room = cap.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
        cut |= n > room;
    }
}
