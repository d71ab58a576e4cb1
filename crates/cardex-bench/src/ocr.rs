//! The embedded OCR engine against the `tesseract` command run two at a
//! time, over the same sample cards (in English, and what a second
//! language costs), its field accuracy on the labeled ones, and its
//! per-field scores on the real catalog cards of the dev set.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use cardex_core::{Field, FieldType};
use cardex_engine::CompiledPrompt;
use cardex_engine::Engine;
use cardex_engine::labels::normalize;
use cardex_engine::ocr::OcrEngine;
use cardex_engine::score::{CATALOG_FIELDS, Tally};
use serde_json::Value;

use crate::Row;

/// Passes over the sample cards for the throughput figures.
const PASSES: usize = 2;

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sample-cards")
}

fn dev_set() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/real-cards/basel-catalog")
}

/// The language a batch of the dev set's catalogue is read in.
const DEV_LANG: &str = "deu+eng";

/// A card as the runner gives it to OCR: the original, grey.
fn prepare(path: &Path) -> anyhow::Result<cardex_engine::PreparedImage> {
    Ok(cardex_engine::prepare::prepare_for_ocr(
        path,
        cardex_engine::image::DEFAULT_MAX_PIXELS,
    )?)
}

/// Cards per second of the engine in `lang` over `n` of `files`.
async fn throughput(
    lang: &str,
    files: &[PathBuf],
    n: usize,
    workers: usize,
) -> anyhow::Result<f64> {
    let engine = Arc::new(OcrEngine::new(lang, workers).map_err(anyhow::Error::msg)?);
    let prompt = Arc::new(
        CompiledPrompt::new(&[Field::new("title", FieldType::Text)]).map_err(anyhow::Error::msg)?,
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for path in files.iter().cycle().take(n) {
        let path = path.clone();
        let (engine, prompt) = (engine.clone(), prompt.clone());
        tasks.push(tokio::spawn(async move {
            let image = tokio::task::spawn_blocking(move || prepare(&path)).await??;
            engine
                .extract(std::slice::from_ref(&image), &prompt)
                .await?;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Throughput of both, and accuracy, as table rows.
pub async fn compare() -> anyhow::Result<Vec<Row>> {
    let dir = samples();
    let truth = std::fs::read_to_string(dir.join("truth.jsonl"))
        .with_context(|| format!("the sample cards are expected at {}", dir.display()))?;
    let cards: Vec<Value> = truth
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let files: Vec<PathBuf> = cards
        .iter()
        .map(|c| dir.join(c["file"].as_str().unwrap_or_default()))
        .collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let n = files.len() * PASSES;

    let ours = throughput("eng", &files, n, workers).await?;
    let second = throughput(DEV_LANG, &files, n, workers).await?;
    let cli = tesseract_cli(&files, n, workers)?;
    let engine = OcrEngine::new("eng", workers).map_err(anyhow::Error::msg)?;
    let accuracy = accuracy(&engine, &cards, &dir).await?;
    let mut rows = vec![
        Row {
            what: format!("OCR: cardex engine, {n} sample cards, {workers} workers (cards/s)"),
            figure: format!("{ours:.2} cards/s"),
            target: format!("> `tesseract` CLI ({cli:.2})"),
            ok: Some(ours > cli),
        },
        Row {
            what: format!("OCR: the same in {DEV_LANG} (a second language)"),
            figure: format!("{second:.2} cards/s"),
            target: format!("{:.0}% of eng", second * 100.0 / ours),
            ok: None,
        },
        Row {
            what: format!(
                "OCR: `tesseract FILE -` run {workers} at a time, OMP_THREAD_LIMIT=1 (cards/s)"
            ),
            figure: format!("{cli:.2} cards/s"),
            target: "—".into(),
            ok: None,
        },
        Row {
            what: "OCR: field accuracy on the labeled sample cards".into(),
            figure: format!(
                "{:.1}% ({}/{})",
                accuracy.0 as f64 * 100.0 / accuracy.1 as f64,
                accuracy.0,
                accuracy.1
            ),
            target: "≥ 97%".into(),
            ok: Some(accuracy.0 * 100 >= accuracy.1 * 97),
        },
    ];
    rows.extend(dev_set_rows(workers).await?);
    Ok(rows)
}

/// Per-field scores on the real catalog cards of the dev set, read in
/// [`DEV_LANG`] ([`cardex_engine::score`] has the rules).
async fn dev_set_rows(workers: usize) -> anyhow::Result<Vec<Row>> {
    let dir = dev_set();
    let truth = std::fs::read_to_string(dir.join("truth.jsonl"))
        .with_context(|| format!("the dev set is expected at {}", dir.display()))?;
    let engine = OcrEngine::new(DEV_LANG, workers).map_err(anyhow::Error::msg)?;
    let fields: Vec<Field> = CATALOG_FIELDS
        .iter()
        .map(|n| Field::new(n, FieldType::Text))
        .collect();
    let prompt = CompiledPrompt::new(&fields).map_err(anyhow::Error::msg)?;
    let mut tally = Tally::default();
    let mut cards = 0;
    for line in truth.lines() {
        let card: Value = serde_json::from_str(line)?;
        let path = dir.join(card["file"].as_str().unwrap_or_default());
        let got = engine.extract(&[prepare(&path)?], &prompt).await?;
        let want = card["fields"].as_object().cloned().unwrap_or_default();
        tally.add(CATALOG_FIELDS, &want, &got.fields);
        cards += 1;
    }
    let mut rows: Vec<Row> = tally
        .fields
        .iter()
        .map(|(name, (right, scored))| Row {
            what: format!("OCR: catalog dev set ({cards} real cards, {DEV_LANG}), {name}"),
            figure: format!("{:.2} ({right}/{scored})", tally.rate(name)),
            target: if name == "year" {
                "≥ 0.90".into()
            } else {
                "—".into()
            },
            ok: (name == "year").then(|| tally.rate(name) >= 0.90),
        })
        .collect();
    rows.push(Row {
        what: format!(
            "OCR: catalog dev set, mean of {} fields",
            tally.fields.len()
        ),
        figure: format!("{:.2}", tally.mean()),
        target: "≥ 0.75".into(),
        ok: Some(tally.mean() >= 0.75),
    });
    Ok(rows)
}

/// Cards per second of the `tesseract` command over the same files.
fn tesseract_cli(files: &[PathBuf], n: usize, parallel: usize) -> anyhow::Result<f64> {
    let queue: Arc<Mutex<Vec<PathBuf>>> =
        Arc::new(Mutex::new(files.iter().cycle().take(n).cloned().collect()));
    let started = Instant::now();
    let threads: Vec<_> = (0..parallel)
        .map(|_| {
            let queue = queue.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                loop {
                    let Some(path) = queue.lock().expect("lock poisoned").pop() else {
                        return Ok(());
                    };
                    run_cli(&path)?;
                }
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a tesseract thread panicked"))??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn run_cli(path: &Path) -> anyhow::Result<()> {
    let out = std::process::Command::new("tesseract")
        .arg(path)
        .arg("-")
        .env("OMP_THREAD_LIMIT", "1")
        .output()
        .context("cannot run `tesseract` (install tesseract-ocr)")?;
    anyhow::ensure!(
        out.status.success(),
        "tesseract failed on {}",
        path.display()
    );
    Ok(())
}

/// (right, total) fields of the labeled cards.
async fn accuracy(
    engine: &OcrEngine,
    cards: &[Value],
    dir: &Path,
) -> anyhow::Result<(usize, usize)> {
    let (mut right, mut total) = (0, 0);
    for card in cards.iter().filter(|c| c["kind"] == "labeled") {
        let Some(expected) = card["fields"].as_object() else {
            continue;
        };
        let fields: Vec<Field> = expected
            .keys()
            .map(|k| Field::new(k, FieldType::Text))
            .collect();
        let prompt = CompiledPrompt::new(&fields).map_err(anyhow::Error::msg)?;
        let path = dir.join(card["file"].as_str().unwrap_or_default());
        let got = engine.extract(&[prepare(&path)?], &prompt).await?;
        for (name, want) in expected {
            total += 1;
            let have = got.fields[name].as_str().unwrap_or_default();
            right += usize::from(normalize(have) == normalize(want.as_str().unwrap_or_default()));
        }
    }
    Ok((right, total))
}
