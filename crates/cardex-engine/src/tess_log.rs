//! Tesseract's own messages (`Image too small to scale!!`, `Line cannot be
//! recognized!!`) go into the log at debug level (target `tesseract`),
//! never onto the terminal between a progress bar's lines.
//!
//! Tesseract writes them with its `tprintf`: to stderr, or to the file its
//! global `debug_file` variable names. That file is a C stdio stream,
//! which buffers a regular file or a pipe until 4 KiB are full (the
//! messages would arrive late, or at exit), but writes a terminal line by
//! line. So `debug_file` names the far end of a pseudo-terminal, and a
//! thread reads the near end and logs each line as it comes. Where no
//! pseudo-terminal can be had, the messages go to `/dev/null`.

use std::io::BufRead;
use std::sync::OnceLock;

/// The file Tesseract's messages are to be written to.
pub(crate) fn sink() -> &'static str {
    static SINK: OnceLock<String> = OnceLock::new();
    SINK.get_or_init(|| {
        open().unwrap_or_else(|e| {
            tracing::debug!("Tesseract's messages are dropped: no pseudo-terminal for them ({e})");
            "/dev/null".into()
        })
    })
}

#[cfg(target_os = "linux")]
fn open() -> std::io::Result<String> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let near = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&near)?;
    unlockpt(&near)?;
    let far = ptsname(&near, Vec::new())?
        .into_string()
        .map_err(|_| std::io::Error::other("the pseudo-terminal's name is not UTF-8"))?;
    // Held open for good, so that reading the near end waits for lines
    // (instead of failing) while Tesseract has not opened the far end.
    let held = rustix::fs::open(
        &far,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut lines = std::io::BufReader::new(std::fs::File::from(near));
    std::thread::Builder::new()
        .name("tesseract-log".into())
        .spawn(move || {
            let mut line = Vec::new();
            loop {
                line.clear();
                match lines.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        // The terminal ends lines with \r\n; Tesseract's
                        // text need not be UTF-8.
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim();
                        if !text.is_empty() {
                            tracing::debug!(target: "tesseract", "{text}");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::debug!("Tesseract's messages are no longer read: {e}");
                        break;
                    }
                }
            }
            // Both ends stay open for the life of the process: Tesseract
            // opens the far end without O_NOCTTY, so for a session leader
            // with no terminal (a service) it becomes the controlling one,
            // and closing the near end would hang it up (SIGHUP).
            let _ends = (lines, held);
            loop {
                std::thread::park();
            }
        })?;
    Ok(far)
}

#[cfg(not(target_os = "linux"))]
fn open() -> std::io::Result<String> {
    Err(std::io::Error::other("only on Linux"))
}
