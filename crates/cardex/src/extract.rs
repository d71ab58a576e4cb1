//! `cardex extract DIR`: a one-shot batch with no server process. The same
//! store, intake checks and runner as `cardex serve`, in-process, over the
//! given data dir or a temporary one; a progress bar on a terminal, plain
//! lines otherwise, both following the runner's progress hub; results
//! written by the output file's extension.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cardex_core::{BatchName, BatchState, Field, FieldType, validate_fields};
use cardex_runner::hub::Published;
use cardex_runner::intake::{Admission, Intake};
use cardex_runner::{Hub, Runner};
use cardex_server::api::Quality;
use cardex_server::export::{Format, write_results};
use cardex_store::{SharedStore, SqliteStore, Store};
use clap::Args;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::config::{CrossCheckArg, Secret, ServeArgs};

/// Flags of `cardex extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Folder of card images (JPEG, PNG, TIFF, WebP, GIF).
    pub dir: PathBuf,
    /// A field to extract: NAME[:TYPE][=DESCRIPTION], TYPE one of text,
    /// number, integer, date, boolean, list (default text). Repeatable.
    #[arg(
        long = "field",
        value_name = "SPEC",
        required_unless_present = "template"
    )]
    pub fields: Vec<String>,
    /// Use the fields of this saved template (from --data-dir).
    #[arg(long, value_name = "NAME", conflicts_with = "fields")]
    pub template: Option<String>,
    /// Where to write the results; .csv, .json, .jsonl or .xlsx. Default: CSV on stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Data dir to keep the batch in [default: a temporary one].
    #[arg(long, env = "CARDEX_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// OpenAI-compatible base URL; without it the embedded OCR engine reads
    /// the cards. Repeat it (or separate with commas) for several replicas.
    #[arg(
        long,
        env = "CARDEX_VLM_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub vlm_url: Option<Vec<String>>,
    /// Model name on that server.
    #[arg(long, env = "CARDEX_VLM_MODEL", value_name = "NAME")]
    pub vlm_model: Option<String>,
    /// API key for the model server.
    #[arg(
        long,
        env = "CARDEX_VLM_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub vlm_api_key: Option<Secret>,
    /// Fixed number of requests in flight to the model server [default:
    /// adaptive].
    #[arg(long, env = "CARDEX_VLM_CONCURRENCY", value_name = "N")]
    pub vlm_concurrency: Option<usize>,
    /// Most requests in flight the adaptive limit may reach [default: 256].
    #[arg(long, env = "CARDEX_VLM_MAX_CONCURRENCY", value_name = "N")]
    pub vlm_max_concurrency: Option<usize>,
    /// Tesseract language(s) [default: eng].
    #[arg(long, env = "CARDEX_OCR_LANG", value_name = "LANG")]
    pub ocr_lang: Option<String>,
    /// OCR worker threads [default: the cores].
    #[arg(long, env = "CARDEX_OCR_WORKERS", value_name = "N")]
    pub ocr_workers: Option<usize>,
    /// Attempts per card before it fails [default: 5].
    #[arg(long, env = "CARDEX_MAX_ATTEMPTS", value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Exit with code 3 when most cards came out empty (no field found),
    /// so scripts can treat that as an error.
    #[arg(long)]
    pub fail_on_empty: bool,
    /// Values under this confidence are flagged low_confidence [default: 0.6].
    #[arg(long, env = "CARDEX_LOW_CONFIDENCE", value_name = "0..1")]
    pub low_confidence: Option<f64>,
    /// Most tokens the model may generate for one card [default: 2048].
    #[arg(long, env = "CARDEX_VLM_MAX_TOKENS", value_name = "N")]
    pub vlm_max_tokens: Option<u32>,
    /// Cross-check a model's text values against the card's own OCR text
    /// (not_in_text) [default: auto: whenever a model reads the cards].
    #[arg(long, env = "CARDEX_CROSS_CHECK", value_name = "auto|on|off")]
    pub cross_check: Option<CrossCheckArg>,
    /// Threads of the cross-check's OCR [default: half the cores, at least 1].
    #[arg(long, env = "CARDEX_CROSS_CHECK_WORKERS", value_name = "N")]
    pub cross_check_workers: Option<usize>,
    /// What the model's prompt tokens cost, in US dollars per million.
    #[arg(long, env = "CARDEX_VLM_PRICE_INPUT", value_name = "USD")]
    pub vlm_price_input: Option<f64>,
    /// What the model's generated tokens cost, in US dollars per million.
    #[arg(long, env = "CARDEX_VLM_PRICE_OUTPUT", value_name = "USD")]
    pub vlm_price_output: Option<f64>,
    /// Stop once the cards have used this many tokens (the cards in
    /// flight finish; the results so far are written).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Stop once the cards have cost this many US dollars (needs the prices).
    #[arg(long, value_name = "USD", requires = "vlm_price_input")]
    pub max_cost: Option<f64>,
    /// Two-sided cards: pair each front with its back by the side mark in
    /// the file names (`_front`/`_back`, `_recto`/`_verso`, `a`/`b`,
    /// `-1`/`-2`), or by file order (duplex scans: front, back, front, …).
    /// Cards left with one side are read as they are.
    #[arg(long, value_name = "name|order")]
    pub pair: Option<PairArg>,
}

/// How `--pair` pairs the images of two-sided cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PairArg {
    /// By the side mark at the end of each file name.
    Name,
    /// By file order (sorted by name), a duplex PDF's by page order.
    Order,
}

impl From<PairArg> for cardex_core::Pairing {
    fn from(p: PairArg) -> Self {
        match p {
            PairArg::Name => Self::Name,
            PairArg::Order => Self::Order,
        }
    }
}

/// Parses `NAME[:TYPE][=DESCRIPTION]`.
pub fn parse_field(spec: &str) -> anyhow::Result<Field> {
    let (head, description) = match spec.split_once('=') {
        Some((h, d)) => (h, d.trim()),
        None => (spec, ""),
    };
    let (name, kind) = match head.split_once(':') {
        Some((n, t)) => (n.trim(), t.trim()),
        None => (head.trim(), "text"),
    };
    let kind: FieldType = serde_json::from_value(serde_json::Value::String(kind.to_ascii_lowercase()))
        .map_err(|_| anyhow::anyhow!("unknown field type {kind:?} in {spec:?}; use text, number, integer, date, boolean or list"))?;
    Ok(Field::new(name, kind).describe(description))
}

/// Runs the command; returns the process exit code.
pub async fn run(args: ExtractArgs) -> anyhow::Result<i32> {
    let format = match &args.output {
        None => Format::Csv,
        Some(path) => Format::from_extension(path).with_context(|| {
            format!(
                "cannot tell the format of {}: use .csv, .json, .jsonl or .xlsx",
                path.display()
            )
        })?,
    };
    let files = image_files(&args.dir)?;
    let temp;
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let serve = ServeArgs {
        vlm_url: args.vlm_url.clone(),
        vlm_model: args.vlm_model.clone(),
        vlm_api_key: args.vlm_api_key.clone(),
        vlm_concurrency: args.vlm_concurrency,
        vlm_max_concurrency: args.vlm_max_concurrency,
        ocr_lang: args.ocr_lang.clone(),
        ocr_workers: args.ocr_workers,
        max_attempts: args.max_attempts,
        vlm_max_tokens: args.vlm_max_tokens,
        low_confidence: args.low_confidence,
        cross_check: args.cross_check,
        cross_check_workers: args.cross_check_workers,
        vlm_price_input: args.vlm_price_input,
        vlm_price_output: args.vlm_price_output,
        ..ServeArgs::default()
    };
    let config = serve.server_config()?;
    let store: SharedStore = Arc::new(
        SqliteStore::open(&data_dir)
            .await
            .with_context(|| format!("cannot open the data dir {}", data_dir.display()))?,
    );
    let fields = match &args.template {
        Some(name) => {
            store
                .list_templates()
                .await?
                .into_iter()
                .find(|t| t.name.eq_ignore_ascii_case(name))
                .with_context(|| format!("no template named {name:?} in {}", data_dir.display()))?
                .fields
        }
        None => args
            .fields
            .iter()
            .map(|s| parse_field(s))
            .collect::<anyhow::Result<_>>()?,
    };
    validate_fields(&fields)?;
    anyhow::ensure!(
        args.max_tokens != Some(0),
        "--max-tokens must be at least 1"
    );
    anyhow::ensure!(
        args.max_cost.is_none_or(|c| c.is_finite() && c > 0.0),
        "--max-cost is US dollars above 0"
    );
    let budget = cardex_core::Budget {
        max_tokens: args.max_tokens,
        max_cost: args.max_cost,
    };
    let engine = config.default_engine();
    let engines =
        cardex_runner::configured(config.vlm.as_ref(), &config.ocr).map_err(anyhow::Error::msg)?;
    let check =
        cardex_runner::cross_check(config.vlm.as_ref(), &config.ocr).map_err(anyhow::Error::msg)?;
    let (hub, stop) = (Hub::default(), CancellationToken::new());
    let runner = Runner::new(
        store.clone(),
        engines,
        hub.clone(),
        config.runner,
        check,
        stop.clone(),
    );
    let running = tokio::spawn(runner.clone().run());
    let intake = Intake::new(store.clone(), config.limits.files());

    let folder = args
        .dir
        .file_name()
        .map_or("cards".into(), |n| n.to_string_lossy().into_owned());
    let name = BatchName::new(
        &folder,
        time::OffsetDateTime::now_utc(),
        &cardex_core::naming::new_id(),
    )
    .or_else(|_| {
        BatchName::new(
            "cards",
            time::OffsetDateTime::now_utc(),
            &cardex_core::naming::new_id(),
        )
    })?;
    let batch = store
        .create_batch(&cardex_store::NewBatch {
            budget,
            two_sided: args.pair.map(Into::into),
            ..cardex_store::NewBatch::blank(&name, engine)
        })
        .await?;
    store.set_fields(&batch.id, &fields).await?;
    let (mut accepted, mut refused) = (0, 0);
    for path in &files {
        let admitted = match intake.add_file(&batch.id, path).await {
            Ok(a) => a,
            Err(e) => bail!("cannot add {}: {e}", path.display()),
        };
        for a in admitted {
            match a {
                Admission::Accepted { .. } => accepted += 1,
                Admission::Rejected { message, page, .. } => {
                    refused += 1;
                    match page {
                        None => eprintln!("skipped {}: {message}", path.display()),
                        Some(p) => eprintln!("skipped {} page {p}: {message}", path.display()),
                    }
                }
            }
        }
    }
    if accepted == 0 {
        bail!("no readable image in {}", args.dir.display());
    }
    if args.pair.is_some() {
        let singles: Vec<String> = store
            .list_cards(&batch.id)
            .await?
            .into_iter()
            .filter(|c| c.back.is_none())
            .map(|c| c.original_name)
            .collect();
        if !singles.is_empty() {
            eprintln!(
                "{} card(s) have one side only and are read as they are: {}",
                singles.len(),
                singles.join(", ")
            );
        }
    }
    let started = Instant::now();
    // Subscribed before the start, so no event of the batch is missed.
    let events = hub.subscribe(&batch.id);
    store.start_batch(&batch.id, true).await?;
    runner.wake();
    let done = watch(events, store.as_ref(), &batch.id).await?;
    // A paused batch stops here; its checks would wait with it.
    if runner.cross_checks() && done.state != BatchState::Paused {
        wait_for_checks(store.as_ref(), &batch.id).await?;
    }

    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    write_results(store.as_ref(), &batch.id, format, &mut out).await?;
    out.flush()?;
    drop(out);
    stop.cancel();
    let _ = running.await;
    let cost = cardex_runner::batch_cost(&done, runner.prices());
    // Shuts the OCR workers down before the process exits.
    drop(runner);

    let secs = started.elapsed().as_secs_f64();
    let c = done.counts;
    eprintln!(
        "{} cards: {} done, {} failed, {refused} skipped, in {secs:.1} s ({:.1} cards/s) with the {engine} engine",
        c.total,
        c.done,
        c.failed,
        c.total as f64 / secs.max(1e-9)
    );
    print_usage(&done, cost);
    for failed in store.failed_cards(&batch.id).await? {
        eprintln!(
            "failed {}: {}",
            failed.original_name,
            failed.error["message"].as_str().unwrap_or("")
        );
    }
    let quality = Quality::of(&done, store.batch_quality(&batch.id).await?);
    print_quality(&quality);
    if done.state == BatchState::Paused {
        bail!("stopped: {}", done.pause_reason.unwrap_or_default());
    }
    if let Some(path) = &args.output {
        eprintln!("results written to {}", path.display());
    }
    store.close().await;
    Ok(if quality.warning.is_some() && args.fail_on_empty {
        EXIT_EMPTY
    } else if c.failed > 0 || refused > 0 {
        1
    } else {
        0
    })
}

/// What the batch cost: a model's tokens and requests (and dollars, at
/// the configured prices); the OCR engine's time.
fn print_usage(batch: &cardex_store::Batch, cost: Option<f64>) {
    let u = &batch.usage;
    if !cardex_runner::is_priced(&batch.engine) {
        eprintln!(
            "OCR time: {:.1} s over {} readings",
            u.ms as f64 / 1000.0,
            grouped(u.requests)
        );
        return;
    }
    let cached = match u.cached_tokens {
        0 => String::new(),
        n => format!(", {} of them cached", grouped(n)),
    };
    let cost = match cost {
        Some(c) => format!(", ${c:.2}"),
        None => " (set --vlm-price-input and --vlm-price-output for the cost)".into(),
    };
    eprintln!(
        "{} tokens ({} in the requests{cached}, {} generated) in {} requests{cost}",
        grouped(u.total_tokens),
        grouped(u.prompt_tokens),
        grouped(u.completion_tokens),
        grouped(u.requests),
    );
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// The exit code of `--fail-on-empty` when most cards came out empty.
const EXIT_EMPTY: i32 = 3;

/// The quality summary: flagged and empty cards, how often each field was
/// found and how sure the engine was, and the warning when most cards
/// came out empty.
fn print_quality(q: &Quality) {
    let by_code: Vec<String> = q
        .flags
        .iter()
        .map(|(code, n)| format!("{n} {code}"))
        .collect();
    let by_code = if by_code.is_empty() {
        String::new()
    } else {
        format!(" ({})", by_code.join(", "))
    };
    eprintln!(
        "{} flagged for a look{by_code}, {} empty",
        q.flagged_cards, q.empty_cards
    );
    match q.checks_skipped {
        0 => {}
        1 => eprintln!("1 card could not be cross-checked against its own text"),
        n => eprintln!("{n} cards could not be cross-checked against their own text"),
    }
    for (field, rate) in &q.fill_rate {
        let confidence = match q.mean_confidence.get(field).copied().flatten() {
            Some(c) => format!(", mean confidence {c:.2}"),
            None => String::new(),
        };
        eprintln!(
            "  {field}: found on {:.0}% of cards{confidence}",
            rate * 100.0
        );
    }
    if let Some(w) = &q.warning {
        eprintln!("warning: {w}");
    }
}

/// Image-looking files and PDFs directly in `dir`, sorted as people number
/// them (`scan-2` before `scan-10`: the order `--pair order` pairs in);
/// hidden files skipped.
fn image_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "jpg" | "jpeg" | "png" | "tif" | "tiff" | "webp" | "gif" | "pdf"
                )
            })
        })
        .collect();
    files.sort_by(|a, b| {
        cardex_core::sides::natural_order(&a.to_string_lossy(), &b.to_string_lossy())
    });
    if files.is_empty() {
        bail!(
            "no image files (.jpg, .png, .tif, .webp, .gif) or PDFs in {}",
            dir.display()
        );
    }
    Ok(files)
}

/// Shows progress from the hub's events until the batch finishes or is
/// paused; returns the batch as it then is.
async fn watch(
    mut events: broadcast::Receiver<Arc<Published>>,
    store: &dyn Store,
    id: &str,
) -> anyhow::Result<cardex_store::Batch> {
    let batch = store.get_batch(id).await?;
    let mut progress = Progress::new(batch.counts.total, batch.counts.done, batch.counts.failed);
    loop {
        match events.recv().await {
            Ok(published) => {
                let event = &published.event;
                match event["type"].as_str() {
                    Some("card_done") => progress.finished(false),
                    Some("card_failed") => progress.finished(true),
                    Some("progress") => progress.counts(
                        event["done"].as_u64().unwrap_or(0),
                        event["failed"].as_u64().unwrap_or(0),
                    ),
                    Some("state") if ended(event["to"].as_str()) => break,
                    _ => {}
                }
            }
            // Fell behind the hub (it never waits for us): the counts are
            // in the store, and the events from here on are live again.
            Err(RecvError::Lagged(_)) => {
                let b = store.get_batch(id).await?;
                progress.counts(b.counts.done, b.counts.failed);
                if ended(Some(b.state.as_str())) {
                    break;
                }
            }
            Err(RecvError::Closed) => break,
        }
    }
    let batch = store.get_batch(id).await?;
    progress.finish(batch.counts.done, batch.counts.failed);
    Ok(batch)
}

/// Waits until every done card's cross-check has run, showing how many
/// are left: the checks may run behind the model, and the results are
/// written with their flags. Gives up, saying so, when none has landed
/// for [`CHECK_STALL`] (the results are written without the rest).
async fn wait_for_checks(store: &dyn Store, id: &str) -> anyhow::Result<()> {
    let pending = store.batch_quality(id).await?.checks_pending;
    if pending == 0 {
        return Ok(());
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(pending);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} cross-checked against the cards' own text  ETA {eta}",
            )
            .expect("a fixed template parses"),
        );
        bar
    } else {
        eprintln!("cross-checking {pending} cards against their own text ...");
        indicatif::ProgressBar::hidden()
    };
    let (mut last, mut moved) = (pending, Instant::now());
    loop {
        let left = store.batch_quality(id).await?.checks_pending;
        bar.set_position(pending.saturating_sub(left));
        if left == 0 {
            break;
        }
        if left < last {
            (last, moved) = (left, Instant::now());
        } else if moved.elapsed() > CHECK_STALL {
            bar.abandon();
            eprintln!("warning: {left} cards were not cross-checked: the checks stopped moving");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bar.finish();
    Ok(())
}

/// How long `extract` waits for the next cross-check before it gives up.
const CHECK_STALL: Duration = Duration::from_secs(300);

/// Whether a batch in state `to` will make no more progress by itself.
fn ended(to: Option<&str>) -> bool {
    matches!(
        to.and_then(BatchState::parse),
        Some(
            BatchState::Completed
                | BatchState::CompletedWithErrors
                | BatchState::Paused
                | BatchState::Cancelled
        )
    )
}

/// The progress display: a bar on a terminal, a line every few seconds
/// otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: u64,
    failed: u64,
    last_line: Instant,
}

impl Progress {
    fn new(total: u64, done: u64, failed: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} cards  {per_sec}  ETA {eta}  {msg}",
                )
                .expect("a fixed template parses"),
            );
            bar
        });
        let mut p = Self {
            bar,
            total,
            done,
            failed,
            last_line: Instant::now(),
        };
        p.show();
        p
    }

    /// One more card finished.
    fn finished(&mut self, failed: bool) {
        if failed {
            self.failed += 1;
        } else {
            self.done += 1;
        }
        self.show();
    }

    /// The counts as a `progress` event or the store has them; never
    /// backwards (an event may be older than cards already counted).
    fn counts(&mut self, done: u64, failed: u64) {
        self.done = self.done.max(done);
        self.failed = self.failed.max(failed);
        self.show();
    }

    fn show(&mut self) {
        let finished = self.done + self.failed;
        match &self.bar {
            Some(bar) => {
                bar.set_position(finished);
                if self.failed > 0 {
                    bar.set_message(format!("{} failed", self.failed));
                }
            }
            None if self.last_line.elapsed() >= Duration::from_secs(2) => {
                eprintln!(
                    "{finished}/{} cards ({:.0}%), {} failed",
                    self.total,
                    finished as f64 * 100.0 / self.total.max(1) as f64,
                    self.failed
                );
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    fn finish(&mut self, done: u64, failed: u64) {
        (self.done, self.failed) = (done, failed);
        self.show();
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn field_specs_parse() {
        assert_eq!(
            parse_field("title").unwrap(),
            Field::new("title", FieldType::Text)
        );
        assert_eq!(
            parse_field("year:integer=Year of publication").unwrap(),
            Field::new("year", FieldType::Integer).describe("Year of publication")
        );
        assert_eq!(
            parse_field("note=Free text: anything else").unwrap(),
            Field::new("note", FieldType::Text).describe("Free text: anything else")
        );
        assert!(parse_field("x:colour").is_err());
    }
}
