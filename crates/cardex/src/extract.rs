//! `cardex extract DIR`: a one-shot batch with no server process. The same
//! store, upload checks and runner as `cardex serve`, in-process, over the
//! given data dir or a temporary one; a progress bar on a terminal, plain
//! lines otherwise; results written by the output file's extension.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cardex_core::{BatchName, BatchState, Field, FieldType, validate_fields};
use cardex_server::export::{Format, write_results};
use cardex_server::{AppState, FileOutcome};
use clap::Args;

use crate::config::{Secret, ServeArgs};

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
    /// Where to write the results; .csv, .json or .jsonl. Default: CSV on stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Data dir to keep the batch in [default: a temporary one].
    #[arg(long, env = "CARDEX_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// OpenAI-compatible base URL; without it the embedded OCR engine reads the cards.
    #[arg(long, env = "CARDEX_VLM_URL", value_name = "URL")]
    pub vlm_url: Option<String>,
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
                "cannot tell the format of {}: use .csv, .json or .jsonl",
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
        ..ServeArgs::default()
    };
    let config = serve.server_config()?;
    let store = cardex_store::Store::open(&data_dir).await?;
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
    let engine = config.default_engine();
    let state = AppState::new(store.clone(), config).map_err(anyhow::Error::msg)?;
    let runner = tokio::spawn(state.runner.clone().run());

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
    let batch = store.create_batch(&name, engine, None).await?;
    store.set_fields(&batch.id, &fields).await?;
    let mut refused = 0;
    for path in &files {
        match cardex_server::add_file(&state, &batch.id, path).await {
            FileOutcome::Accepted(_) => {}
            FileOutcome::Rejected(r) => {
                refused += 1;
                eprintln!("skipped {}: {}", path.display(), r.error.message);
            }
            FileOutcome::Fatal(e) => bail!("cannot add {}: {e}", path.display()),
        }
    }
    if refused == files.len() {
        bail!("no readable image in {}", args.dir.display());
    }
    let started = Instant::now();
    store.start_batch(&batch.id).await?;
    state.runner.wake();
    let done = watch(&store, &batch.id).await?;

    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    write_results(&store, &batch.id, format, &mut out).await?;
    out.flush()?;
    drop(out);
    state.stop.cancel();
    let _ = runner.await;
    // Shuts the OCR workers down before the process exits.
    drop(state);

    let secs = started.elapsed().as_secs_f64();
    let c = done.counts;
    eprintln!(
        "{} cards: {} done, {} failed, {refused} skipped, in {secs:.1} s ({:.1} cards/s) with the {engine} engine",
        c.total,
        c.done,
        c.failed,
        c.total as f64 / secs.max(1e-9)
    );
    for failed in store.failed_cards(&batch.id).await? {
        eprintln!(
            "failed {}: {}",
            failed.original_name,
            failed.error["message"].as_str().unwrap_or("")
        );
    }
    if done.state == BatchState::Paused {
        bail!("stopped: {}", done.pause_reason.unwrap_or_default());
    }
    if let Some(path) = &args.output {
        eprintln!("results written to {}", path.display());
    }
    store.close().await;
    Ok(if c.failed > 0 || refused > 0 { 1 } else { 0 })
}

/// Image-looking files directly in `dir`, sorted; hidden files skipped.
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
                    "jpg" | "jpeg" | "png" | "tif" | "tiff" | "webp" | "gif"
                )
            })
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "no image files (.jpg, .png, .tif, .webp, .gif) in {}",
            dir.display()
        );
    }
    Ok(files)
}

/// Shows progress until the batch finishes or is paused.
async fn watch(store: &cardex_store::Store, id: &str) -> anyhow::Result<cardex_store::Batch> {
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} cards  {per_sec}  ETA {eta}  {msg}",
            )
            .expect("a fixed template parses"),
        );
        bar
    });
    let mut last_line = Instant::now();
    loop {
        let b = store.get_batch(id).await?;
        let finished = b.counts.done + b.counts.failed;
        match &bar {
            Some(bar) => {
                bar.set_length(b.counts.total);
                bar.set_position(finished);
                bar.set_message(if b.counts.failed > 0 {
                    format!("{} failed", b.counts.failed)
                } else {
                    String::new()
                });
            }
            None if last_line.elapsed() >= Duration::from_secs(2) => {
                eprintln!(
                    "{finished}/{} cards ({:.0}%), {} failed",
                    b.counts.total, b.percent, b.counts.failed
                );
                last_line = Instant::now();
            }
            None => {}
        }
        if matches!(
            b.state,
            BatchState::Completed | BatchState::CompletedWithErrors | BatchState::Paused
        ) {
            if let Some(bar) = bar {
                bar.finish();
            }
            return Ok(b);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
