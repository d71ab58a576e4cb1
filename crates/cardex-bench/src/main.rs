//! `make bench`: measures cardex through the real release binary and prints
//! a table, also written to `bench/results.md`.
//!
//! Each row names what is measured, the figure, and the target where DESIGN
//! §10 sets one. The server runs as a child process so its peak memory
//! (VmHWM from /proc) is its own, not the load generator's.

mod ocr;
mod pages;
mod review;
mod runner;
mod server;
mod upload;
mod watchers;

use std::fmt::Write as _;
use std::time::Instant;

/// One line of the results table.
#[derive(Debug)]
pub struct Row {
    pub what: String,
    pub figure: String,
    pub target: String,
    pub ok: Option<bool>,
}

fn main() -> anyhow::Result<()> {
    cardex_engine::ocr::ensure_openmp_thread_limit()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // `cardex-bench runner ocr` runs only those groups and writes no file.
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |group: &str| only.is_empty() || only.iter().any(|g| g == group);
    let mut rows = Vec::new();
    if wanted("prepare") {
        rows.push(inspect_12mp()?);
        rows.extend(runner::prepare_12mp()?);
    }
    if wanted("capacity") {
        for (slots, latency_ms) in [(4, 100), (32, 250), (128, 500)] {
            rows.push(runtime.block_on(runner::capacity_share(slots, latency_ms))?);
        }
        rows.push(runtime.block_on(runner::whole_run_share(128, 1500, 900))?);
    }
    if wanted("servers") {
        rows.extend(runtime.block_on(runner::two_servers())?);
    }
    if wanted("orchestration") {
        rows.extend(runtime.block_on(runner::orchestration())?);
    }
    if wanted("cross-check") {
        rows.extend(runtime.block_on(runner::cross_check(32, 500))?);
    }
    if wanted("watchers") {
        // A paced server (128 cards/s, like a real one), then an instant
        // one, where every card is an event to send 100 times.
        rows.push(runtime.block_on(watchers::cost(32, 250, 2_000))?);
        rows.push(runtime.block_on(watchers::cost(256, 0, 5_000))?);
    }
    if wanted("upload") {
        rows.extend(runtime.block_on(upload::ingest_rate())?);
        rows.push(runtime.block_on(upload::large_upload_rss())?);
    }
    if wanted("pages") {
        rows.push(runtime.block_on(pages::split_rss())?);
    }
    if wanted("review") {
        rows.extend(runtime.block_on(review::answer_times())?);
    }
    if wanted("ocr") {
        rows.extend(runtime.block_on(ocr::compare())?);
    }
    let table = render(&rows);
    println!("\n{table}");
    if !only.is_empty() {
        return Ok(());
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results.md");
    std::fs::write(
        &path,
        format!("# cardex benchmark results\n\n{}\n{table}", machine()),
    )?;
    println!("written to bench/results.md");
    Ok(())
}

/// Upload check of a 12 MP JPEG scan: header, pixel limit, one full decode.
fn inspect_12mp() -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("scan.jpg");
    std::fs::write(&path, upload::scan_jpeg(4000, 3000, 1))?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        cardex_engine::image::inspect(&path, cardex_engine::image::DEFAULT_MAX_PIXELS)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(Row {
        what: "upload check of a 12 MP JPEG (header + full decode), median of 5".into(),
        figure: format!("{:.0} ms", times[2]),
        target: "—".into(),
        ok: None,
    })
}

fn render(rows: &[Row]) -> String {
    let mut out = String::from("| measurement | result | target | met |\n|---|---|---|---|\n");
    for r in rows {
        let met = match r.ok {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            r.what, r.figure, r.target, met
        );
    }
    out
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("Machine: {cores} cores, {cpu}. Command: `make bench`.\n")
}
