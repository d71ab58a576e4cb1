//! Runner benchmarks against the release `vlm-sim` in its own process:
//! share of the simulator's capacity held at several slot counts with
//! default settings, orchestration throughput and CPU per card with an
//! instant simulator, memory through a 10,000-card batch; and the time to
//! prepare a 12 MP scan for a model.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::Context;
use cardex_testkit::{Part, multipart_body};
use serde_json::{Value, json};

use crate::Row;
use crate::server::{Server, release_bin, spawn_with_url};
use crate::upload::scan_jpeg;

/// The release `vlm-sim` as a child process; killed on drop.
pub(crate) struct Sim {
    child: Child,
    pub base: String,
}

impl Sim {
    pub fn start(slots: usize, latency_ms: u64) -> anyhow::Result<Self> {
        Self::start_at("127.0.0.1:0", slots, latency_ms)
    }

    /// A simulator listening on `bind` (`host:port`).
    pub fn start_at(bind: &str, slots: usize, latency_ms: u64) -> anyhow::Result<Self> {
        let mut command = Command::new(release_bin("vlm-sim"));
        command
            .args(["--bind", bind])
            .args(["--slots", &slots.to_string()])
            .args(["--latency-ms", &latency_ms.to_string()]);
        let (child, base) = spawn_with_url(command)?;
        Ok(Self { child, base })
    }

    async fn stats(&self, client: &reqwest::Client) -> anyhow::Result<Value> {
        let root = self.base.trim_end_matches("/v1");
        Ok(client
            .get(format!("{root}/sim/stats"))
            .send()
            .await?
            .json()
            .await?)
    }

    /// A `cardex serve` using this simulator with default settings, but
    /// for the cross-check, off: these rows measure the model's path
    /// alone ([`cross_check`] measures what the cross-check costs it).
    pub(crate) fn server(&self) -> anyhow::Result<Server> {
        self.server_with(&["--cross-check", "off"])
    }

    /// A `cardex serve` using this simulator, with `extra` flags.
    fn server_with(&self, extra: &[&str]) -> anyhow::Result<Server> {
        let mut args = vec!["--vlm-url", &self.base, "--vlm-model", "sim-vlm"];
        args.extend_from_slice(extra);
        Server::start(&args)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A batch of `cards` small distinct cards with two fields, not started.
pub(crate) async fn loaded_batch(
    server: &Server,
    client: &reqwest::Client,
    cards: usize,
) -> anyhow::Result<String> {
    let files: Vec<(String, Vec<u8>)> = (0..cards)
        .map(|i| (format!("{i}.jpg"), scan_jpeg(96, 64, i as u32)))
        .collect();
    let fields = json!([
        {"name": "title", "description": "the title on the card", "type": "text", "active": true},
        {"name": "year", "description": "year of publication", "type": "integer", "active": true},
    ]);
    load(server, client, &files, &fields).await
}

/// A batch of `files` (name, bytes) with `fields`, not started.
async fn load(
    server: &Server,
    client: &reqwest::Client,
    files: &[(String, Vec<u8>)],
    fields: &Value,
) -> anyhow::Result<String> {
    let id = server.create_batch(client, "runner bench").await?;
    let api = format!("{}/api/batches/{id}", server.base);
    for chunk in files.chunks(250) {
        let parts: Vec<Part> = chunk
            .iter()
            .map(|(name, b)| Part::file("files", name, b.clone()))
            .collect();
        let (ct, body) = multipart_body(&parts);
        let res = client
            .post(format!("{api}/images"))
            .header("content-type", ct)
            .body(body)
            .send()
            .await?;
        let report: Value = res.json().await?;
        let rejected = report["rejected"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(rejected == 0, "cards refused: {report}");
    }
    client
        .put(format!("{api}/fields"))
        .json(fields)
        .send()
        .await?
        .error_for_status()?;
    Ok(id)
}

async fn start(server: &Server, client: &reqwest::Client, id: &str) -> anyhow::Result<()> {
    client
        .post(format!("{}/api/batches/{id}/start", server.base))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// Starts batch `id` and waits until it has completed; returns the seconds
/// from the start call to the last commit.
pub(crate) async fn run_batch(
    server: &Server,
    client: &reqwest::Client,
    id: &str,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    start(server, client, id).await?;
    loop {
        let b = batch(server, client, id).await?;
        match b["state"].as_str() {
            Some("completed") => return Ok(started.elapsed().as_secs_f64()),
            Some("running") => tokio::time::sleep(Duration::from_millis(20)).await,
            other => anyhow::bail!("the batch ended {other:?}: {b}"),
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the batch took over 5 minutes"
        );
    }
}

async fn batch(server: &Server, client: &reqwest::Client, id: &str) -> anyhow::Result<Value> {
    Ok(client
        .get(format!("{}/api/batches/{id}", server.base))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Share of a `slots`-slot simulator's capacity the runner holds once
/// settled, with no concurrency configured.
pub async fn capacity_share(slots: usize, latency_ms: u64) -> anyhow::Result<Row> {
    const WARM_UP: Duration = Duration::from_secs(25);
    const MEASURE: Duration = Duration::from_secs(20);
    let capacity = slots as f64 * 1000.0 / latency_ms as f64;
    let cards = (capacity * (WARM_UP + MEASURE).as_secs_f64() * 1.15) as usize + 200;
    let sim = Sim::start(slots, latency_ms)?;
    let server = sim.server()?;
    let client = reqwest::Client::new();
    let id = loaded_batch(&server, &client, cards).await?;
    start(&server, &client, &id).await?;
    tokio::time::sleep(WARM_UP).await;
    let busy = |v: &Value| v["busy_micros_now"].as_f64().unwrap_or(0.0) / 1e6;
    let (t0, s0) = (Instant::now(), sim.stats(&client).await?);
    tokio::time::sleep(MEASURE).await;
    let (t1, s1) = (Instant::now(), sim.stats(&client).await?);
    let b = batch(&server, &client, &id).await?;
    anyhow::ensure!(
        b["state"] == "running",
        "the batch ran out of cards before the measurement ended: {}",
        b["state"]
    );
    let share = (busy(&s1) - busy(&s0)) / (slots as f64 * (t1 - t0).as_secs_f64());
    let limit = progress_concurrency(&server, &id).await.unwrap_or_default();
    Ok(Row {
        what: format!(
            "share of simulator capacity held, {slots} slots × {latency_ms} ms ({capacity:.0} cards/s), default settings, after {}s warm-up, over {}s (limit settled at {limit})",
            WARM_UP.as_secs(),
            MEASURE.as_secs()
        ),
        figure: format!("{:.1}%", share * 100.0),
        target: "≥ 97%".into(),
        ok: Some(share >= 0.97),
    })
}

/// Share of a `slots`-slot simulator's capacity over a whole batch of
/// `cards`, start to end: what the ramp-up costs.
pub async fn whole_run_share(slots: usize, latency_ms: u64, cards: usize) -> anyhow::Result<Row> {
    let capacity = slots as f64 * 1000.0 / latency_ms as f64;
    let sim = Sim::start(slots, latency_ms)?;
    let server = sim.server()?;
    let client = reqwest::Client::new();
    let id = loaded_batch(&server, &client, cards).await?;
    let seconds = run_batch(&server, &client, &id).await?;
    let share = cards as f64 / (capacity * seconds);
    Ok(Row {
        what: format!(
            "share of simulator capacity over a whole {cards}-card batch, {slots} slots × {latency_ms} ms ({capacity:.0} cards/s), default settings"
        ),
        figure: format!(
            "{:.1}% ({:.1} cards/s, {seconds:.1} s)",
            share * 100.0,
            cards as f64 / seconds
        ),
        target: "≥ 85%".into(),
        ok: Some(share >= 0.85),
    })
}

/// Two simulators of different capacity behind one engine (DESIGN §15):
/// the share of their summed capacity held once settled; then the larger
/// one killed (SIGKILL) mid-batch: how long until throughput settles at
/// the survivor's capacity, and how many cards failed; then restarted on
/// its port: how long until it serves again.
pub async fn two_servers() -> anyhow::Result<Vec<Row>> {
    const A: (usize, u64) = (8, 200);
    const B: (usize, u64) = (32, 400);
    const WARM_UP: Duration = Duration::from_secs(20);
    const MEASURE: Duration = Duration::from_secs(15);
    /// How long after the kill throughput is followed.
    const AFTER_KILL: Duration = Duration::from_secs(15);
    let rate = |(slots, ms): (usize, u64)| slots as f64 * 1000.0 / ms as f64;
    let capacity = rate(A) + rate(B);
    let a = Sim::start(A.0, A.1)?;
    let b = Sim::start(B.0, B.1)?;
    let server = Server::start(&[
        "--vlm-url",
        &a.base,
        "--vlm-url",
        &b.base,
        "--vlm-model",
        "sim-vlm",
        "--cross-check",
        "off",
    ])?;
    let client = reqwest::Client::new();
    let seconds = (WARM_UP + MEASURE).as_secs_f64();
    let cards = ((capacity * (seconds + 30.0) + rate(A) * AFTER_KILL.as_secs_f64()) * 1.2) as usize;
    let id = loaded_batch(&server, &client, cards).await?;
    start(&server, &client, &id).await?;
    tokio::time::sleep(WARM_UP).await;

    let busy = |v: &Value| v["busy_micros_now"].as_f64().unwrap_or(0.0) / 1e6;
    let (t0, a0, b0) = (
        Instant::now(),
        a.stats(&client).await?,
        b.stats(&client).await?,
    );
    tokio::time::sleep(MEASURE).await;
    let (a1, b1) = (a.stats(&client).await?, b.stats(&client).await?);
    let t = t0.elapsed().as_secs_f64();
    let served = (busy(&a1) - busy(&a0)) * 1000.0 / A.1 as f64
        + (busy(&b1) - busy(&b0)) * 1000.0 / B.1 as f64;
    let share = served / (capacity * t);

    // Killed mid-answer, as a crashed server would be.
    let b_bind = b
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    drop(b);
    let killed = Instant::now();
    let mut samples = Vec::new();
    while killed.elapsed() < AFTER_KILL {
        let counts = batch(&server, &client, &id).await?["counts"].clone();
        samples.push((
            killed.elapsed().as_secs_f64(),
            counts["done"].as_f64().unwrap_or(0.0),
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Settled: from then on, every 2 s holds at least 90% of the
    // survivor's capacity (cards finish in waves of its 8 slots, so
    // shorter windows measure the waves).
    const WINDOW: usize = 9; // 2 s of 250 ms samples
    let holds = |from: usize| {
        samples[from..].windows(WINDOW).all(|w| {
            let (first, last) = (w[0], w[WINDOW - 1]);
            (last.1 - first.1) / (last.0 - first.0) >= 0.9 * rate(A)
        })
    };
    let settled = (0..samples.len().saturating_sub(WINDOW))
        .find(|&i| holds(i))
        .map(|i| samples[i + WINDOW - 1].0);
    let restarted = Instant::now();
    let b = Sim::start_at(&b_bind, B.0, B.1)?;
    let recovered = loop {
        if b.stats(&client).await?["requests"].as_u64().unwrap_or(0) > 0 {
            break Some(restarted.elapsed().as_secs_f64());
        }
        if restarted.elapsed() > Duration::from_secs(45) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let end = batch(&server, &client, &id).await?;
    anyhow::ensure!(
        end["state"] == "running",
        "the batch ran out of cards before the measurement ended: {}",
        end["state"]
    );
    let failed = end["counts"]["failed"].as_u64().unwrap_or(u64::MAX);
    client
        .post(format!("{}/api/batches/{id}/cancel", server.base))
        .send()
        .await?
        .error_for_status()?;
    let what = format!(
        "two model servers, {} slots × {} ms and {} slots × {} ms ({capacity:.0} cards/s summed), default settings",
        A.0, A.1, B.0, B.1
    );
    let seconds_or_never = |s: Option<f64>| s.map_or("never".into(), |s| format!("{s:.1} s"));
    Ok(vec![
        Row {
            what: format!(
                "{what}: share of summed capacity held after {}s warm-up, over {}s",
                WARM_UP.as_secs(),
                MEASURE.as_secs()
            ),
            figure: format!("{:.1}% ({:.1} cards/s)", share * 100.0, served / t),
            target: "≥ 95%".into(),
            ok: Some(share >= 0.95),
        },
        Row {
            what: format!(
                "{what}: the {}-slot one killed (SIGKILL) mid-batch; time until throughput holds ≥ 90% of the survivor's {:.0} cards/s (2 s windows), and cards failed",
                B.0,
                rate(A)
            ),
            figure: format!("{}, {failed} failed", seconds_or_never(settled)),
            target: "≤ 10 s, 0 failed".into(),
            ok: Some(settled.is_some_and(|s| s <= 10.0) && failed == 0),
        },
        Row {
            what: format!(
                "{what}: the killed one restarted on its port; time until it serves cards again"
            ),
            figure: seconds_or_never(recovered),
            target: "≤ 30 s".into(),
            ok: Some(recovered.is_some_and(|s| s <= 30.0)),
        },
    ])
}

/// The runner's present request limit, from the first `progress` event.
async fn progress_concurrency(server: &Server, id: &str) -> Option<String> {
    use futures_util::StreamExt;
    let url = format!("{}/api/batches/{id}/events", server.base).replace("http://", "ws://");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .ok()??
            .ok()?;
        let Ok(text) = msg.into_text() else { continue };
        let event: Value = serde_json::from_str(&text).ok()?;
        if event["type"] == "progress" {
            return Some(event["concurrency"].to_string());
        }
    }
    None
}

/// Cards per second and CPU per card through the whole path with an
/// instant simulator; peak server memory through the same batch.
pub async fn orchestration() -> anyhow::Result<Vec<Row>> {
    const CARDS: usize = 10_000;
    let sim = Sim::start(256, 0)?;
    let server = sim.server()?;
    let client = reqwest::Client::new();
    let id = loaded_batch(&server, &client, CARDS).await?;
    let cpu_started = server.cpu_seconds()?;
    let secs = run_batch(&server, &client, &id).await?;
    let cpu = server.cpu_seconds()? - cpu_started;
    let rate = CARDS as f64 / secs;
    let peak = server.peak_rss_mib()?;
    Ok(vec![
        Row {
            what: format!(
                "orchestration: {CARDS} small cards through claim, prepare, request, validate, commit, event; instant simulator on the same 2 cores"
            ),
            figure: format!("{rate:.0} cards/s"),
            target: "≥ 1,500 cards/s".into(),
            ok: Some(rate >= 1500.0),
        },
        Row {
            what: "orchestration: server CPU time per card (user + system)".into(),
            figure: format!("{:.0} µs", cpu / CARDS as f64 * 1e6),
            target: "—".into(),
            ok: None,
        },
        Row {
            what: format!("peak server RSS through a {CARDS}-card batch (upload and run)"),
            figure: format!("{peak:.0} MiB"),
            target: "< 150 MB".into(),
            ok: Some(peak < 150.0),
        },
    ])
}

/// What the cross-check costs the model: the same batch of synthetic
/// catalog cards through a simulator of `slots` slots, with the
/// cross-check off and on (default workers); and how fast the checks, left
/// behind, catch up afterwards.
pub async fn cross_check(slots: usize, latency_ms: u64) -> anyhow::Result<Vec<Row>> {
    const CARDS: usize = 960;
    let files: Vec<(String, Vec<u8>)> = cardex_testkit::cards::synthetic_cards(CARDS, 11)
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .map(|c| (c.name, c.png))
        .collect();
    let fields = json!([
        {"name": "call_number", "type": "text"}, {"name": "author", "type": "text"},
        {"name": "title", "type": "text"}, {"name": "place", "type": "text"},
        {"name": "year", "type": "text"},
    ]);
    let capacity = slots as f64 * 1000.0 / latency_ms as f64;
    let sim = Sim::start(slots, latency_ms)?;
    let client = reqwest::Client::new();
    let mut rates = Vec::new();
    let mut rows = Vec::new();
    for mode in ["off", "on"] {
        let limit = slots.to_string();
        let server = sim.server_with(&["--cross-check", mode, "--vlm-concurrency", &limit])?;
        let id = load(&server, &client, &files, &fields).await?;
        let secs = run_batch(&server, &client, &id).await?;
        let rate = CARDS as f64 / secs;
        rates.push(rate);
        if mode == "on" {
            let pending = batch(&server, &client, &id).await?["quality"]["checks_pending"]
                .as_u64()
                .unwrap_or(0);
            let started = Instant::now();
            loop {
                let b = batch(&server, &client, &id).await?;
                if b["quality"]["checks_pending"] == 0 {
                    break;
                }
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(900),
                    "the cross-check did not catch up in 15 minutes: {}",
                    b["quality"]
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let catch_up = started.elapsed().as_secs_f64();
            let checks = (CARDS as u64 - pending) as f64 / secs.max(1e-9);
            rows.push(Row {
                what: format!(
                    "cross-check beside that run (default workers, nice 10): checks/s while the batch ran · backlog at its end · time to catch up after it ({:.1} checks/s alone)",
                    pending as f64 / catch_up.max(1e-9)
                ),
                figure: format!("{checks:.1} checks/s · {pending} left · {catch_up:.0} s"),
                target: "—".into(),
                ok: None,
            });
        }
    }
    let (off, on) = (rates[0], rates[1]);
    rows.insert(
        0,
        Row {
            what: format!(
                "model throughput with the cross-check off → on: {CARDS} synthetic catalog cards, {slots} slots × {latency_ms} ms ({capacity:.0} cards/s), limit fixed at {slots}"
            ),
            figure: format!("{off:.1} → {on:.1} cards/s ({:.1}%)", on * 100.0 / off),
            target: "on ≥ 97% of off".into(),
            ok: Some(on >= 0.97 * off),
        },
    );
    Ok(rows)
}

/// Preparing a 12 MP JPEG scan for the model (decode, SIMD resize to
/// 1536 px, orient, encode) on one thread: decoded in full by the `image`
/// crate, then reduced in the DCT domain by libjpeg-turbo; and how alike
/// the two results are, on that scan and on a sample card at 12 MP.
pub fn prepare_12mp() -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("scan.jpg");
    std::fs::write(&path, scan_jpeg(4000, 3000, 3))?;
    let scaled = cardex_engine::PrepareOptions::default();
    let full = cardex_engine::PrepareOptions {
        scaled_jpeg_decode: false,
        ..scaled
    };
    let (full_ms, full_cpu, full_image) = time_prepare(&path, &full)?;
    let (scaled_ms, scaled_cpu, scaled_image) = time_prepare(&path, &scaled)?;
    let scan_ssim = ssim(&scaled_image, &full_image)?;
    // A card scanned at 12 MP: sample card 2 scaled up to 12 MP, with the
    // grain a scanner's sensor and the paper add (about ±4 levels, the same
    // in the three channels), which a scaled-up image lacks and which makes
    // up much of a real scan's bytes.
    let card = image::open(cardex_testkit::sample_cards_dir().join("card-01-0002.jpg"))?;
    let up = (12e6 / f64::from(card.width() * card.height())).sqrt();
    let mut card = card
        .resize_exact(
            (f64::from(card.width()) * up).round() as u32,
            (f64::from(card.height()) * up).round() as u32,
            image::imageops::FilterType::CatmullRom,
        )
        .into_rgb8();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for pixel in card.pixels_mut() {
        // xorshift64; the sum of two uniform draws, -4..=4, peaked at 0.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let grain = (seed & 7) as i16 + ((seed >> 8) & 3) as i16 - 5;
        for c in &mut pixel.0 {
            *c = (i16::from(*c) + grain).clamp(0, 255) as u8;
        }
    }
    let card = image::DynamicImage::ImageRgb8(card);
    // Stored as libjpeg's defaults write it, and so most scanners and
    // cameras (chroma halved both ways, 4:2:0), and with full chroma
    // (4:4:4), as some scanners' best setting does: three times the chroma
    // to decode.
    let card_rgb = card.to_rgb8();
    let mut cards = Vec::new();
    let mut stages = Vec::new();
    for (sampling, factor) in [
        ("4:2:0", jpeg_encoder::SamplingFactor::F_2_2),
        ("4:4:4", jpeg_encoder::SamplingFactor::F_1_1),
    ] {
        let mut jpeg = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
        encoder.set_sampling_factor(factor);
        encoder.encode(
            card_rgb.as_raw(),
            u16::try_from(card.width())?,
            u16::try_from(card.height())?,
            jpeg_encoder::ColorType::Rgb,
        )?;
        let path = dir.path().join(format!("card-{}.jpg", cards.len()));
        std::fs::write(&path, &jpeg)?;
        let (full_ms, _, full) = time_prepare(&path, &full)?;
        let (planar_ms, planar_cpu, planar) = time_prepare(&path, &scaled)?;
        // To 250 px it is decoded at 1/8, where little but reading the
        // entropy-coded data is left: the floor for any decoder.
        let tiny = cardex_engine::PrepareOptions {
            max_side: 250,
            ..scaled
        };
        let (floor_ms, _, _) = time_prepare(&path, &tiny)?;
        stages.push((sampling, planar_stages(&jpeg, &scaled)?));
        cards.push((
            sampling,
            jpeg.len(),
            full_ms,
            planar_ms,
            planar_cpu,
            floor_ms,
            ssim(&planar, &full)?,
        ));
    }
    let mut rows = vec![
        Row {
            what: format!(
                "prepare a 12 MP JPEG scan (noise in every pixel) to 1536 px, full decode (image crate), SIMD resize, orient, SIMD encode (libjpeg-turbo); median of 7; CPU {full_cpu:.0} ms per image (one core)"
            ),
            figure: format!("{full_ms:.0} ms"),
            target: "—".into(),
            ok: None,
        },
        Row {
            what: format!(
                "the same the planar way (libjpeg-turbo: decoded to Y, Cb, Cr at 1/2 in the DCT domain, the planes resized and encoded as they are, no RGB); median of 7; CPU {scaled_cpu:.0} ms per image (one core)"
            ),
            figure: format!("{scaled_ms:.0} ms ({:.1}× faster)", full_ms / scaled_ms),
            target: "— (the worst case)".into(),
            ok: None,
        },
    ];
    for (sampling, bytes, full_ms, planar_ms, planar_cpu, floor_ms, _) in &cards {
        rows.push(Row {
            what: format!(
                "the same for a scanned card (sample card 2 scaled up to {} × {}, {:.1} MP, with scanner grain, {sampling}, {} KB at quality 90), full decode → the planar way (→ the same to 250 px, decoded at 1/8: the entropy decoding's floor); CPU {planar_cpu:.0} ms per image (one core)",
                card.width(),
                card.height(),
                f64::from(card.width() * card.height()) / 1e6,
                bytes / 1024
            ),
            figure: format!("{full_ms:.0} → {planar_ms:.1} ms (→ {floor_ms:.1} ms)"),
            target: "≤ 30 ms".into(),
            ok: Some(*planar_ms <= 30.0),
        });
    }
    let [(_, s420), (_, s444)] = stages.as_slice() else {
        anyhow::bail!("stages of two cards expected");
    };
    rows.push(Row {
        what: "the planar way's stages for the card, 4:2:0 / 4:4:4: libjpeg-turbo's decode to Y, Cb, Cr at 1/2 (entropy decoding, inverse DCT, rows out of its block buffer), into buffers kept between runs; its encode of the 1536 px planes (medians of 7)".into(),
        figure: format!(
            "decode {:.1} / {:.1} ms, encode {:.1} / {:.1} ms",
            s420.0, s444.0, s420.1, s444.1
        ),
        target: "—".into(),
        ok: None,
    });
    let card_ssim = cards.iter().map(|c| c.6).fold(f64::INFINITY, f64::min);
    rows.push(Row {
        what: "the planar way against the full decode, SSIM (grey, 8 × 8 windows): the card at 12 MP (the lower of 4:2:0 and 4:4:4); the scan above (noise in every pixel)".into(),
        figure: format!("{card_ssim:.4}; {scan_ssim:.4}"),
        target: "≥ 0.98 (the card)".into(),
        ok: Some(card_ssim >= 0.98),
    });
    Ok(rows)
}

/// Median ms of libjpeg-turbo's two stages in the planar way for `jpeg`
/// prepared as `options` say: its decode to planes (at the scale the
/// preparation picks, into reused buffers) and its encode of planes of the
/// target size (the decoded planes' top-left corner, so real content).
fn planar_stages(
    jpeg: &[u8],
    options: &cardex_engine::PrepareOptions,
) -> anyhow::Result<(f64, f64)> {
    use cardex_engine::turbo::{Decompressor, Plane, Scale, encode_planes_420};
    const RUNS: usize = 7;
    let mut turbo = Decompressor::new()?;
    let header = turbo.header(jpeg)?;
    let size = (header.width, header.height);
    // As the preparation sizes it: the longest side to `max_side`.
    let fit = f64::from(options.max_side) / f64::from(size.0.max(size.1));
    let side = |v: u32| (f64::from(v) * fit).round() as u32;
    let target = (side(size.0), side(size.1));
    let scale = Scale::for_target(size, target);
    let mut planes = turbo.decode_planes(jpeg, &header, scale, u64::MAX)?;
    let mut decode = Vec::new();
    for _ in 0..RUNS {
        let [cb, cr] = planes.chroma.context("a colour JPEG")?;
        // Handed back Y first, as the decoder asks for them.
        let mut buffers = vec![cr.samples, cb.samples, planes.y.samples];
        let t = Instant::now();
        planes = turbo.decode_planes_into(jpeg, &header, scale, u64::MAX, |_| {
            buffers.pop().unwrap_or_default()
        })?;
        decode.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let corner = |p: &Plane, (w, h): (u32, u32)| Plane {
        width: w,
        height: h,
        samples: (0..h as usize)
            .flat_map(|row| {
                let start = row * p.width as usize;
                p.samples[start..start + w as usize].iter().copied()
            })
            .collect(),
    };
    let chroma_size = (target.0.div_ceil(2), target.1.div_ceil(2));
    let chroma = planes.chroma.context("a colour JPEG")?;
    let (y, cb, cr) = (
        corner(&planes.y, target),
        corner(&chroma[0], chroma_size),
        corner(&chroma[1], chroma_size),
    );
    let mut encode = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        std::hint::black_box(encode_planes_420(&y, &cb, &cr, options.jpeg_quality)?);
        encode.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(decode), median(encode)))
}

/// Median wall ms and mean CPU ms of 7 preparations of `path`, and the
/// last result.
fn time_prepare(
    path: &std::path::Path,
    options: &cardex_engine::PrepareOptions,
) -> anyhow::Result<(f64, f64, cardex_engine::PreparedImage)> {
    const RUNS: u32 = 7;
    let mut times = Vec::new();
    let mut last = None;
    let cpu0 = process_cpu_seconds()?;
    for _ in 0..RUNS {
        let t = Instant::now();
        let prepared = cardex_engine::prepare::prepare_file(path, options)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(prepared.width.max(prepared.height) == options.max_side);
        last = Some(prepared);
    }
    let cpu_ms = (process_cpu_seconds()? - cpu0) * 1000.0 / f64::from(RUNS);
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], cpu_ms, last.context("no run")?))
}

/// SSIM of two prepared images.
fn ssim(a: &cardex_engine::PreparedImage, b: &cardex_engine::PreparedImage) -> anyhow::Result<f64> {
    anyhow::ensure!((a.width, a.height) == (b.width, b.height), "sizes differ");
    Ok(cardex_testkit::ssim(
        &image::load_from_memory(&a.bytes)?,
        &image::load_from_memory(&b.bytes)?,
    ))
}

/// User + system CPU seconds of process `pid` (or this one).
pub fn cpu_seconds_of(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // The kernel's USER_HZ is 100 on every Linux platform we run on.
    Ok(ticks / 100.0)
}

fn process_cpu_seconds() -> anyhow::Result<f64> {
    cpu_seconds_of("self")
}
