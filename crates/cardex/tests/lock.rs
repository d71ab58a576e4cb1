//! One process per data dir, proven on the real binary: a second `serve`
//! or `extract --data-dir` on a dir in use exits at once with a message
//! naming the dir and the holder's pid; after `kill -9` of the holder the
//! dir is free again at once (the OS released the lock).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Kills the server when a test fails half-way.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cardex() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cardex"));
    c.env("RUST_LOG", "warn").stdin(Stdio::null());
    c
}

/// Starts `cardex serve` on `data` and waits until it prints its URL.
fn serve(data: &Path) -> Server {
    let mut child = cardex()
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the cardex binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("http://"), "unexpected first line {line:?}");
    Server(child)
}

/// Runs `cardex` with `args`, timed.
fn run(args: &[&str], data: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let out = cardex()
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    (out, started.elapsed())
}

fn assert_refused(out: &Output, took: Duration, data: &Path, holder: u32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second process ran: {stderr}");
    assert!(took < Duration::from_secs(1), "took {took:?} to refuse");
    let dir = data.canonicalize().unwrap();
    assert!(
        stderr.contains(&dir.display().to_string()),
        "the message names the dir: {stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {holder}")),
        "the message names the holder's pid {holder}: {stderr}"
    );
}

#[test]
fn a_second_process_on_a_data_dir_in_use_exits_at_once_and_kill_9_frees_it() {
    let data = tempfile::tempdir().unwrap();
    let cards = tempfile::tempdir().unwrap();
    std::fs::write(cards.path().join("card.png"), cardex_testkit::png(1)).unwrap();
    let cards_dir = cards.path().to_str().unwrap();

    let mut first = serve(data.path());
    let holder = first.0.id();

    let (out, took) = run(&["serve", "--bind", "127.0.0.1:0"], data.path());
    assert_refused(&out, took, data.path(), holder);
    let (out, took) = run(&["extract", cards_dir, "--field", "title"], data.path());
    assert_refused(&out, took, data.path(), holder);

    // SIGKILL: no chance to clean up, yet the lock goes with the process.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let started = Instant::now();
    let second = serve(data.path());
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(second);
}
