//! The embedded OCR engine: Tesseract through libtesseract, one instance
//! per worker thread and language (created when first asked for, reused
//! for every card), fed the original image grey, scaled to about 300 dpi
//! and straightened ([`crate::prepare::prepare_for_ocr`]; a JPEG made for
//! a model is read too). `Label: value` pairs are mapped to fields
//! ([`crate::labels`]), and on unlabeled catalog cards the parts of the
//! entry ([`crate::catalog`]); the full text is kept as the card's
//! `text`, and each field's confidence (mean Tesseract word confidence of the words that
//! make the value, 0–1) goes into the result's `confidence`.
//!
//! Tesseract uses OpenMP; with several workers on few cores its threads
//! fight, so the binaries make sure `OMP_THREAD_LIMIT` is set
//! ([`ensure_openmp_thread_limit`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};
use tesseract::Tesseract;

use crate::answer::{Answer, CompiledPrompt};
use crate::catalog;
use crate::engine::{Engine, EngineError, Extraction, Reading};
use crate::labels::{OcrLine, Word, assign, labeled_lines};
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

/// What a worker is given to read.
enum Input {
    /// An encoded image, prepared for OCR by the worker ([`for_ocr`]).
    Encoded(Vec<u8>),
    /// A grey image already prepared ([`crate::prepare::prepare_for_ocr`]).
    Gray(image::GrayImage),
    /// An original image file's bytes, prepared by the worker as
    /// [`crate::prepare::prepare_for_ocr`] does, within `max_pixels`.
    Original { bytes: Vec<u8>, max_pixels: u64 },
}

struct Job {
    input: Input,
    /// Tesseract language; `None` = the engine's default.
    lang: Option<String>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<OcrLine>, EngineError>>,
}

/// The OCR engine: a pool of worker threads, each with one Tesseract per
/// language it has been asked for (made the first time, then reused).
#[derive(Debug)]
pub struct OcrEngine {
    /// `None` once the engine is shutting down.
    jobs: Mutex<Option<Sender<Job>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The language read when a call names none.
    lang: String,
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
        let size = match &self.input {
            Input::Encoded(b) | Input::Original { bytes: b, .. } => b.len(),
            Input::Gray(g) => g.as_raw().len(),
        };
        f.debug_struct("Job")
            .field("bytes", &size)
            .field("lang", &self.lang)
            .finish()
    }
}

/// Checks a language setting (`eng`, `deu+eng`, `chi_sim`): it names
/// Tesseract data files, so only plain codes joined by `+` pass.
fn valid_lang(lang: &str) -> Result<(), EngineError> {
    let ok = !lang.is_empty()
        && lang.len() <= 64
        && lang.split('+').all(|code| {
            (2..=16).contains(&code.len())
                && code
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(EngineError::Config {
            message: format!(
                "{lang:?} is not an OCR language; use Tesseract's codes joined by +, e.g. deu+eng"
            ),
        })
    }
}

/// Loads Tesseract for `lang`, or says which language package is missing.
fn load(lang: &str) -> Result<Tesseract, EngineError> {
    valid_lang(lang)?;
    let missing_package = |e: String, codes: Vec<&str>| EngineError::Config {
        message: format!(
            "Tesseract cannot load language {lang:?} ({e}); install {}",
            codes
                .iter()
                .map(|c| format!("tesseract-ocr-{}", c.replace('_', "-")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    // Tesseract starts without a secondary language whose data is
    // missing, so each part of a combination is tried on its own.
    if lang.contains('+') {
        let missing: Vec<&str> = lang
            .split('+')
            .filter(|code| Tesseract::new(None, Some(code)).is_err())
            .collect();
        if !missing.is_empty() {
            return Err(missing_package("no data".into(), missing));
        }
    }
    Tesseract::new(None, Some(lang))
        .map_err(|e| missing_package(e.to_string(), vec![lang]))?
        // Its messages go to the log, not the terminal.
        .set_variable("debug_file", crate::tess_log::sink())
        .map_err(|e| EngineError::Config {
            message: format!("Tesseract refused a setting: {e}"),
        })
}

impl OcrEngine {
    /// Starts `workers` threads whose default language is `lang` (e.g.
    /// `eng`, `deu+eng`). Fails when Tesseract cannot load it.
    pub fn new(lang: &str, workers: usize) -> Result<Self, String> {
        Self::start(lang, workers, false)
    }

    /// Like [`OcrEngine::new`], with workers that run at a lower CPU
    /// priority (nice 10, on Linux): work that must not slow anything
    /// else down, such as the cross-check beside a model's requests.
    pub fn in_background(lang: &str, workers: usize) -> Result<Self, String> {
        Self::start(lang, workers, true)
    }

    fn start(lang: &str, workers: usize, background: bool) -> Result<Self, String> {
        load(lang).map_err(|e| e.to_string())?;
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let lang = lang.to_owned();
            let thread = std::thread::Builder::new()
                .name(format!("ocr-{i}"))
                .spawn(move || {
                    if background {
                        lower_priority();
                    }
                    worker(&rx, &lang);
                })
                .map_err(|e| format!("cannot start an OCR worker: {e}"))?;
            threads.push(thread);
        }
        Ok(Self {
            jobs: Mutex::new(Some(tx)),
            threads,
            lang: lang.to_owned(),
        })
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.threads.len()
    }

    /// The language read when a call names none.
    pub fn default_lang(&self) -> &str {
        &self.lang
    }

    /// Reads the text lines of an encoded image in the default language.
    pub async fn read_lines(&self, image: Vec<u8>) -> Result<Vec<OcrLine>, EngineError> {
        self.read_lines_in(image, None).await
    }

    /// Reads the text lines of an encoded image in `lang` (`None` = the
    /// default). A language whose data is missing is a configuration
    /// error naming the package to install.
    pub async fn read_lines_in(
        &self,
        image: Vec<u8>,
        lang: Option<&str>,
    ) -> Result<Vec<OcrLine>, EngineError> {
        self.run(Input::Encoded(image), lang).await
    }

    /// Reads the text lines of a grey image already prepared for OCR
    /// ([`crate::prepare::prepare_for_ocr`]), in `lang` (`None` = the
    /// default).
    pub async fn read_gray(
        &self,
        image: image::GrayImage,
        lang: Option<&str>,
    ) -> Result<Vec<OcrLine>, EngineError> {
        self.run(Input::Gray(image), lang).await
    }

    async fn run(&self, input: Input, lang: Option<&str>) -> Result<Vec<OcrLine>, EngineError> {
        if let Some(l) = lang {
            valid_lang(l)?;
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            input,
            lang: lang.filter(|l| *l != self.lang).map(str::to_owned),
            reply,
        };
        self.jobs
            .lock()
            .expect("lock poisoned")
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Reads the whole text of an original image file's bytes in `lang`
    /// (`None` = the default), line by line, prepared as
    /// [`crate::prepare::prepare_for_ocr`] does within `max_pixels`. The
    /// preparation runs on the worker too, at its priority.
    pub async fn read_original_text(
        &self,
        bytes: Vec<u8>,
        max_pixels: u64,
        lang: Option<&str>,
    ) -> Result<Reading, EngineError> {
        let lines = self
            .run(Input::Original { bytes, max_pixels }, lang)
            .await?;
        Ok(reading(&lines))
    }

    /// Reads a card and maps its text to the prompt's fields: `Label:
    /// value` pairs first ([`crate::labels`]), then, for fields still
    /// empty on a card that is not a labeled one, the parts of a catalog
    /// entry ([`crate::catalog`]).
    pub async fn extract_lang(
        &self,
        images: &[PreparedImage],
        prompt: &CompiledPrompt,
        lang: Option<&str>,
    ) -> Result<Extraction, EngineError> {
        let started = Instant::now();
        // Each side's lines: a two-sided card's front, then its back.
        let mut sides: Vec<Vec<OcrLine>> = Vec::with_capacity(images.len());
        for image in images {
            sides.push(match image.gray() {
                Some(gray) => self.read_gray(gray, lang).await?,
                None => self.read_lines_in(image.bytes.clone(), lang).await?,
            });
        }
        let fields = &prompt.fields;
        // A labeled value is read on the side it is written on, the
        // front's first: a field labeled on both sides keeps the front's.
        let mut found: Vec<Option<(String, f32)>> = vec![None; fields.len()];
        for side in &sides {
            let labeled = labeled_lines(side, fields);
            for (slot, pick) in found.iter_mut().zip(assign(&labeled, fields)) {
                if slot.is_none()
                    && let Some(i) = pick
                {
                    *slot = Some((labeled[i].value.clone(), labeled[i].confidence));
                }
            }
        }
        // The text, and a catalog entry, run on from the front to the back.
        let lines = sides.into_iter().fold(Vec::new(), join_sides);
        let reading = reading(&lines);
        // Two fields read from labels make it a labeled card: its other
        // lines are not a catalog entry.
        let taken: Vec<bool> = found.iter().map(Option::is_some).collect();
        if taken.iter().filter(|t| **t).count() < 2
            && let Some(entry) = catalog::parse(&lines)
        {
            for (slot, part) in found.iter_mut().zip(catalog::fill(&entry, fields, &taken)) {
                if let (None, Some(p)) = (&slot, part) {
                    *slot = Some((p.value.clone(), p.confidence));
                }
            }
        }
        let mut values = Map::new();
        let mut confidence = Map::new();
        for (field, slot) in fields.iter().zip(found) {
            let (value, conf) = match slot {
                Some((v, c)) => (
                    Value::String(v),
                    Value::from((f64::from(c) * 100.0).round() / 100.0),
                ),
                None => (Value::Null, Value::Null),
            };
            values.insert(field.name.clone(), value);
            confidence.insert(field.name.clone(), conf);
        }
        // A value that does not fit its type (`I875` for a year) is kept as
        // read and flagged: OCR gives the same text every time, so
        // retrying cannot help.
        let answer = prompt.read_values(values).unwrap_or_else(|_| Answer {
            values: fields
                .iter()
                .map(|f| (f.name.clone(), Value::Null))
                .collect(),
            flags: Vec::new(),
        });
        let read = answer.values;
        for (name, value) in &read {
            if value.is_null() {
                confidence.insert(name.clone(), Value::Null);
            }
        }
        Ok(Extraction {
            fields: read,
            raw: reading.text.clone(),
            usage: cardex_core::Usage {
                requests: 1,
                ms: started.elapsed().as_millis() as u64,
                ..Default::default()
            },
            elapsed: started.elapsed(),
            response_mode: None,
            flags: answer.flags,
            confidence,
            text: Some(reading),
        })
    }
}

/// The text of `lines`, one per line, and how sure Tesseract was of it:
/// its word confidences averaged by the words' lengths (a stray one-letter
/// guess counts less than a long word read well).
pub fn reading(lines: &[OcrLine]) -> Reading {
    let text = lines
        .iter()
        .map(OcrLine::text)
        .collect::<Vec<_>>()
        .join("\n");
    let (weighted, chars) =
        lines
            .iter()
            .flat_map(|l| &l.words)
            .fold((0.0f64, 0usize), |(sum, n), w| {
                let len = w.text.chars().count();
                (sum + f64::from(w.confidence) / 100.0 * len as f64, n + len)
            });
    let confidence = if chars == 0 {
        0.0
    } else {
        weighted / chars as f64
    };
    Reading { text, confidence }
}

fn stopped() -> EngineError {
    EngineError::Config {
        message: "the OCR workers have stopped".into(),
    }
}

/// Lowers the calling thread's CPU priority to nice 10, so that what
/// runs beside it gets the cores first. Linux keeps a nice value per
/// thread; elsewhere this does nothing.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
        tracing::debug!("cannot lower an OCR worker's priority: {e}");
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, default_lang: &str) {
    let mut instances: HashMap<String, Tesseract> = HashMap::new();
    loop {
        let job = match jobs.lock().expect("lock poisoned").recv() {
            Ok(job) => job,
            Err(_) => return, // the engine was dropped
        };
        let lang = job.lang.as_deref().unwrap_or(default_lang);
        let _ = job.reply.send(recognize(&mut instances, lang, job.input));
    }
}

fn recognize(
    instances: &mut HashMap<String, Tesseract>,
    lang: &str,
    input: Input,
) -> Result<Vec<OcrLine>, EngineError> {
    let permanent = |message: String| EngineError::Permanent {
        code: "ocr_failed",
        message,
        usage: Default::default(),
    };
    let gray = match input {
        Input::Gray(g) => g,
        Input::Encoded(bytes) => {
            let img = image::load_from_memory(&bytes)
                .map_err(|e| permanent(format!("cannot decode the image: {e}")))?;
            for_ocr(img).map_err(|e| permanent(e.to_string()))?
        }
        Input::Original { bytes, max_pixels } => {
            crate::prepare::prepare_bytes_for_ocr(&bytes, max_pixels)
                .map_err(|e| permanent(e.to_string()))?
                .gray()
                .ok_or_else(|| permanent("the prepared image is not grey".into()))?
        }
    };
    let (w, h) = gray.dimensions();
    let tess = match instances.remove(lang) {
        Some(t) => t,
        None => load(lang)?,
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
    instances.insert(lang.to_owned(), tess);
    Ok(parse_tsv(&tsv))
}

/// The lines of a two-sided card: the back's after the front's, as if the
/// back were printed below the front with a gap, so reading the lines top
/// to bottom reads the front, then the back.
pub fn join_sides(front: Vec<OcrLine>, mut back: Vec<OcrLine>) -> Vec<OcrLine> {
    let Some(bottom) = front.iter().map(OcrLine::bottom).max() else {
        return back;
    };
    let top = back.iter().map(OcrLine::top).min().unwrap_or(0);
    let gap = front
        .iter()
        .map(|l| l.bottom() - l.top())
        .max()
        .unwrap_or(0)
        * 3;
    for line in &mut back {
        for word in &mut line.words {
            word.top += bottom + gap - top;
        }
    }
    let mut lines = front;
    lines.extend(back);
    lines
}

/// Lines of words, with confidences and boxes, from Tesseract's TSV
/// output, top to bottom. Pieces of one printed line that Tesseract put
/// in different blocks (a shelfmark at the right, a value in a column)
/// are joined again, left to right.
pub fn parse_tsv(tsv: &str) -> Vec<OcrLine> {
    let mut lines: BTreeMap<(u32, u32, u32, u32), OcrLine> = BTreeMap::new();
    let mut order = Vec::new();
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
        let px = |i: usize| cols[i].parse::<i32>().unwrap_or(0);
        let key = (num(1), num(2), num(3), num(4));
        if !lines.contains_key(&key) {
            order.push(key);
        }
        lines.entry(key).or_default().words.push(Word {
            text: text.to_owned(),
            confidence: cols[10].parse::<f32>().unwrap_or(0.0),
            left: px(6),
            top: px(7),
            width: px(8),
            height: px(9),
        });
    }
    let mut merged: Vec<OcrLine> = Vec::new();
    for key in order {
        let line = lines.remove(&key).expect("every key was inserted");
        match merged.iter_mut().find(|m| same_row(m, &line)) {
            Some(m) => {
                m.words.extend(line.words);
                m.words.sort_by_key(|w| w.left);
            }
            None => merged.push(line),
        }
    }
    merged.sort_by_key(|l| l.top());
    merged
}

/// Whether two lines are pieces of one printed line: most of their height
/// shared, side by side without overlapping.
fn same_row(a: &OcrLine, b: &OcrLine) -> bool {
    let shared = a.bottom().min(b.bottom()) - a.top().max(b.top());
    let shortest = (a.bottom() - a.top()).min(b.bottom() - b.top());
    let span = |l: &OcrLine| {
        let left = l.words.iter().map(|w| w.left).min().unwrap_or(0);
        let right = l.words.iter().map(Word::right).max().unwrap_or(0);
        (left, right)
    };
    let ((al, ar), (bl, br)) = (span(a), span(b));
    shortest > 0 && shared * 2 > shortest && (ar <= bl || br <= al)
}

impl Engine for OcrEngine {
    fn name(&self) -> &str {
        "ocr"
    }

    fn extract<'a>(
        &'a self,
        images: &'a [PreparedImage],
        prompt: &'a CompiledPrompt,
    ) -> BoxFuture<'a, Result<Extraction, EngineError>> {
        Box::pin(self.extract_lang(images, prompt, None))
    }

    fn extract_in<'a>(
        &'a self,
        images: &'a [PreparedImage],
        prompt: &'a CompiledPrompt,
        lang: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Extraction, EngineError>> {
        Box::pin(self.extract_lang(images, prompt, lang))
    }

    fn reads_original(&self) -> bool {
        true
    }

    fn model(&self) -> Option<&str> {
        Some("tesseract")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_rows_become_lines_of_words_with_boxes() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   5\t1\t1\t1\t1\t1\t10\t10\t60\t20\t96.5\tTaxon:\n\
                   5\t1\t1\t1\t1\t2\t80\t10\t40\t20\t91\tAcer\n\
                   4\t1\t1\t1\t2\t0\t0\t0\t1\t1\t-1\t\n\
                   5\t1\t1\t1\t2\t1\t10\t50\t40\t20\t88\tLoc.:\n\
                   5\t1\t1\t1\t2\t2\t60\t50\t60\t20\t80\tPrague\n\
                   5\t1\t2\t1\t1\t1\t400\t52\t50\t20\t70\t[U\n\
                   5\t1\t2\t1\t1\t2\t460\t52\t40\t20\t70\t36\n";
        let lines = parse_tsv(tsv);
        assert_eq!(lines.len(), 2, "the corner block joins its row");
        assert_eq!(lines[0].text(), "Taxon: Acer");
        assert_eq!(lines[1].words[1].text, "Prague");
        assert_eq!(lines[1].words[1].confidence, 80.0);
        assert_eq!((lines[1].words[1].left, lines[1].words[1].width), (60, 60));
        assert_eq!(lines[1].text(), "Loc.: Prague [U 36");
        assert_eq!(lines[1].wide_gaps(), vec![2]);
    }

    #[test]
    fn languages_are_checked_before_tesseract_sees_them() {
        assert!(valid_lang("deu+eng").is_ok());
        assert!(valid_lang("chi_sim").is_ok());
        for bad in ["", "../etc", "eng+", "ENG", "e"] {
            assert!(
                matches!(valid_lang(bad), Err(EngineError::Config { .. })),
                "{bad:?}"
            );
        }
        let Err(err) = load("eng+zzz") else {
            panic!("zzz has no data")
        };
        let err = err.to_string();
        assert!(
            err.contains("tesseract-ocr-zzz") && !err.contains("tesseract-ocr-eng"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_missing_language_is_a_configuration_error_and_others_still_read() {
        let engine = OcrEngine::new("eng", 1).unwrap();
        let img = cardex_testkit::png(1);
        let err = engine
            .read_lines_in(img.clone(), Some("zzz"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "engine_misconfigured");
        assert!(err.to_string().contains("tesseract-ocr-zzz"), "{err}");
        assert!(engine.read_lines_in(img, Some("deu")).await.is_ok());
    }
}
