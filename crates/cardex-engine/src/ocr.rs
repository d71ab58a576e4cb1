//! The embedded OCR engine: Tesseract through libtesseract, one instance
//! per worker thread (created once, reused for every card), fed grayscale,
//! upscaled and straightened images. `Label: value` lines of the text are
//! mapped to fields ([`crate::labels`]); the full text is kept as `_text`
//! and each field's confidence (mean Tesseract word confidence, 0–1) as
//! `_confidence`.
//!
//! Tesseract uses OpenMP; with several workers on few cores its threads
//! fight, so the binaries make sure `OMP_THREAD_LIMIT` is set
//! ([`ensure_openmp_thread_limit`]).

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};
use tesseract::Tesseract;

use crate::answer::CompiledPrompt;
use crate::engine::{Engine, EngineError, Extraction};
use crate::labels::{OcrLine, assign, labeled_lines};
use crate::prepare::{PreparedImage, for_ocr};

/// Makes sure this process runs with `OMP_THREAD_LIMIT` set (to 1 unless
/// the user chose a value): Tesseract's OpenMP threads fighting over a few
/// cores make it several times slower.
///
/// OpenMP reads the variable when its library loads, before `main` runs, so
/// setting it later has no effect: when it is missing, the program is
/// started again with it set, and this call does not return. Call it first
/// thing in `main`. Returns an error only if the restart failed.
#[cfg(unix)]
pub fn ensure_openmp_thread_limit() -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_THREAD_LIMIT").is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    Err(std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("OMP_THREAD_LIMIT", "1")
        .exec())
}

/// Elsewhere the limit is left to the user.
#[cfg(not(unix))]
pub fn ensure_openmp_thread_limit() -> std::io::Result<()> {
    Ok(())
}

/// Resolution Tesseract is told the prepared images have.
const PPI: i32 = 300;

struct Job {
    image: Vec<u8>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<OcrLine>, EngineError>>,
}

/// The OCR engine: a pool of worker threads, each with its own Tesseract.
#[derive(Debug)]
pub struct OcrEngine {
    /// `None` once the engine is shutting down.
    jobs: Mutex<Option<Sender<Job>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for OcrEngine {
    /// Closes the queue and waits for the workers, so each Tesseract is
    /// torn down properly (it complains about leaks otherwise).
    fn drop(&mut self) {
        self.jobs.lock().expect("lock poisoned").take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("bytes", &self.image.len())
            .finish()
    }
}

impl OcrEngine {
    /// Starts `workers` threads for language `lang` (e.g. `eng`, `deu+eng`).
    /// Fails when Tesseract cannot load the language data.
    pub fn new(lang: &str, workers: usize) -> Result<Self, String> {
        Tesseract::new(None, Some(lang)).map_err(|e| {
            format!("Tesseract cannot load language {lang:?} ({e}); install its data, e.g. tesseract-ocr-{lang}")
        })?;
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let lang = lang.to_owned();
            let thread = std::thread::Builder::new()
                .name(format!("ocr-{i}"))
                .spawn(move || worker(&rx, &lang))
                .map_err(|e| format!("cannot start an OCR worker: {e}"))?;
            threads.push(thread);
        }
        Ok(Self {
            jobs: Mutex::new(Some(tx)),
            threads,
        })
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.threads.len()
    }

    /// Reads the text lines of an encoded image.
    pub async fn read_lines(&self, image: Vec<u8>) -> Result<Vec<OcrLine>, EngineError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .lock()
            .expect("lock poisoned")
            .as_ref()
            .ok_or_else(stopped)?
            .send(Job { image, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> EngineError {
    EngineError::Config {
        message: "the OCR workers have stopped".into(),
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, lang: &str) {
    let mut tess: Option<Tesseract> = None;
    loop {
        let job = match jobs.lock().expect("lock poisoned").recv() {
            Ok(job) => job,
            Err(_) => return, // the engine was dropped
        };
        let _ = job.reply.send(recognize(&mut tess, lang, &job.image));
    }
}

fn recognize(
    slot: &mut Option<Tesseract>,
    lang: &str,
    bytes: &[u8],
) -> Result<Vec<OcrLine>, EngineError> {
    let permanent = |message: String| EngineError::Permanent {
        code: "ocr_failed",
        message,
    };
    let img = image::load_from_memory(bytes)
        .map_err(|e| permanent(format!("cannot decode the image: {e}")))?;
    let gray = for_ocr(img).map_err(|e| permanent(e.to_string()))?;
    let (w, h) = gray.dimensions();
    let tess = match slot.take() {
        Some(t) => t,
        None => Tesseract::new(None, Some(lang)).map_err(|e| EngineError::Config {
            message: format!("Tesseract cannot load language {lang:?}: {e}"),
        })?,
    };
    // A failed step consumes the instance; the next card makes a new one.
    let mut tess = tess
        .set_frame(gray.as_raw(), w as i32, h as i32, 1, w as i32)
        .map_err(|e| permanent(format!("Tesseract refused the image: {e}")))?
        .set_source_resolution(PPI)
        .recognize()
        .map_err(|e| permanent(format!("Tesseract failed: {e}")))?;
    let tsv = tess
        .get_tsv_text(0)
        .map_err(|e| permanent(format!("Tesseract gave no text: {e}")))?;
    *slot = Some(tess);
    Ok(parse_tsv(&tsv))
}

/// Lines of words with confidences from Tesseract's TSV output.
pub fn parse_tsv(tsv: &str) -> Vec<OcrLine> {
    let mut lines: BTreeMap<(u32, u32, u32, u32), OcrLine> = BTreeMap::new();
    for row in tsv.lines() {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let text = cols[11].trim();
        if text.is_empty() {
            continue;
        }
        let num = |i: usize| cols[i].parse::<u32>().unwrap_or(0);
        let conf = cols[10].parse::<f32>().unwrap_or(0.0);
        lines
            .entry((num(1), num(2), num(3), num(4)))
            .or_default()
            .words
            .push((text.to_owned(), conf));
    }
    lines.into_values().collect()
}

impl Engine for OcrEngine {
    fn name(&self) -> &str {
        "ocr"
    }

    fn extract<'a>(
        &'a self,
        image: &'a PreparedImage,
        prompt: &'a CompiledPrompt,
    ) -> BoxFuture<'a, Result<Extraction, EngineError>> {
        Box::pin(async move {
            let started = Instant::now();
            let lines = self.read_lines(image.bytes.clone()).await?;
            let text = lines
                .iter()
                .map(OcrLine::text)
                .collect::<Vec<_>>()
                .join("\n");
            let labeled = labeled_lines(&lines);
            let mut values = Map::new();
            let mut confidence = Map::new();
            for (field, slot) in prompt.fields.iter().zip(assign(&labeled, &prompt.fields)) {
                let (value, conf) = match slot {
                    Some(i) => (
                        Value::String(labeled[i].value.clone()),
                        Value::from((f64::from(labeled[i].confidence) * 100.0).round() / 100.0),
                    ),
                    None => (Value::Null, Value::Null),
                };
                values.insert(field.name.clone(), value);
                confidence.insert(field.name.clone(), conf);
            }
            let mut fields = coerce_each(prompt, values, &mut confidence);
            fields.insert("_text".into(), Value::String(text.clone()));
            fields.insert("_confidence".into(), Value::Object(confidence));
            Ok(Extraction {
                fields,
                raw: text,
                usage: None,
                elapsed: started.elapsed(),
                flags: Vec::new(),
                confidence: Map::new(),
            })
        })
    }
}

/// Coerces the read values to their types. A value that does not fit its
/// type (`I875` for a whole number) becomes null rather than failing the
/// card: OCR gives the same text every time, so retrying cannot help.
fn coerce_each(
    prompt: &CompiledPrompt,
    values: Map<String, Value>,
    confidence: &mut Map<String, Value>,
) -> Map<String, Value> {
    if let Ok(all) = prompt.read_object(values.clone()) {
        return all;
    }
    let mut out = Map::new();
    for (name, value) in values {
        let single = Map::from_iter([(name.clone(), value)]);
        let kept = prompt
            .read_object(single)
            .ok()
            .and_then(|mut m| m.remove(&name))
            .unwrap_or(Value::Null);
        if kept.is_null() {
            confidence.insert(name.clone(), Value::Null);
        }
        out.insert(name, kept);
    }
    prompt.read_object(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_rows_become_lines_of_words() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   5\t1\t1\t1\t1\t1\t0\t0\t1\t1\t96.5\tTaxon:\n\
                   5\t1\t1\t1\t1\t2\t0\t0\t1\t1\t91\tAcer\n\
                   4\t1\t1\t1\t2\t0\t0\t0\t1\t1\t-1\t\n\
                   5\t1\t1\t1\t2\t1\t0\t0\t1\t1\t88\tLoc.:\n\
                   5\t1\t1\t1\t2\t2\t0\t0\t1\t1\t80\tPrague\n";
        let lines = parse_tsv(tsv);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text(), "Taxon: Acer");
        assert_eq!(lines[1].words[1], ("Prague".to_owned(), 80.0));
    }
}
