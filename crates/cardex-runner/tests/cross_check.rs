//! The cross-check's own paths, with a reader that answers as the test
//! wants: a legible card's missing value is flagged `not_in_text` and its
//! text kept; a card too poorly read to judge, one whose reading fails and
//! one whose reading panics are each marked `skipped` with the reason, and
//! nothing is flagged on them. Real SQLite store in a temp dir, real runner.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use cardex_core::{BatchState, Field, FieldType};
use cardex_engine::{CompiledPrompt, Engine, EngineError, Extraction, PreparedImage, Reading};
use cardex_runner::{CrossCheck, Engines, Hub, Limiter, ReadsText, Runner, RunnerConfig};
use cardex_store::{SharedStore, SqliteStore};
use common::started_batch;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// A model that reads "Basel" on every card.
#[derive(Debug)]
struct Model;

impl Engine for Model {
    fn name(&self) -> &str {
        "vlm"
    }

    fn extract<'a>(
        &'a self,
        _images: &'a [PreparedImage],

        _prompt: &'a CompiledPrompt,
    ) -> BoxFuture<'a, Result<Extraction, EngineError>> {
        Box::pin(async move {
            let mut fields = serde_json::Map::new();
            fields.insert("place".into(), "Basel".into());
            Ok(Extraction::of(fields))
        })
    }
}

/// Knows the cards by their bytes: the first says "Zürich", the second
/// "Basel", the third is illegible, reading the fourth fails and reading
/// the fifth panics.
#[derive(Debug)]
struct Reader {
    cards: Vec<Vec<u8>>,
}

impl ReadsText for Reader {
    fn read_text<'a>(
        &'a self,
        bytes: Vec<u8>,
        _max_pixels: u64,
        _lang: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Reading, EngineError>> {
        Box::pin(async move {
            let which = self.cards.iter().position(|c| *c == bytes);
            let read = |text: &str, confidence| Reading {
                text: text.into(),
                confidence,
            };
            match which {
                Some(0) => Ok(read("Verlag Zürich 1931", 0.9)),
                Some(1) => Ok(read("Gedruckt in Basel", 0.9)),
                Some(2) => Ok(read("Bsl ~ iii", 0.3)),
                Some(3) => Err(EngineError::Permanent {
                    code: "ocr_failed",
                    message: "Tesseract refused the image".into(),
                    usage: Default::default(),
                }),
                _ => panic!("injected: the reader panics"),
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_flag_missing_values_and_mark_what_they_cannot_judge() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(SqliteStore::open(data.path()).await.unwrap());
    let cards: Vec<Vec<u8>> = (0..5).map(cardex_testkit::png).collect();
    let images: Vec<(Vec<u8>, &str)> = cards.iter().map(|c| (c.clone(), "png")).collect();
    let fields = [Field::new("place", FieldType::Text)];
    let (batch_id, _) = started_batch(&store, files.path(), "vlm", &fields, &images).await;

    let engines = Engines::default().with(Arc::new(Model), Limiter::fixed("vlm", 4));
    let stop = CancellationToken::new();
    let runner = Runner::new(
        store.clone(),
        engines,
        Hub::default(),
        RunnerConfig::default(),
        Some(CrossCheck::new(Arc::new(Reader { cards }), 2)),
        stop.clone(),
    );
    let running = tokio::spawn(runner.clone().run());
    runner.wake();

    let started = Instant::now();
    loop {
        let b = store.get_batch(&batch_id).await.unwrap();
        let q = store.batch_quality(&batch_id).await.unwrap();
        if b.state == BatchState::Completed && q.checks_pending == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{b:?} {q:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    running.await.unwrap();

    let rows = store.results_page(&batch_id, 0, 10).await.unwrap();
    let codes = |i: usize| -> Vec<&str> {
        rows[i]
            .flags
            .iter()
            .map(|f| match f.code {
                cardex_core::FlagCode::NotInText => "not_in_text",
                _ => "other",
            })
            .collect()
    };
    assert_eq!(rows[0].check.as_deref(), Some("done"));
    assert_eq!(codes(0), ["not_in_text"], "Basel is not on the Zürich card");
    assert_eq!(rows[0].text.as_deref(), Some("Verlag Zürich 1931"));
    assert_eq!(rows[1].check.as_deref(), Some("done"));
    assert!(codes(1).is_empty(), "Basel is on the Basel card");
    for (i, why) in [(2, "well enough"), (3, "Tesseract refused"), (4, "panics")] {
        assert_eq!(rows[i].check.as_deref(), Some("skipped"), "card {i}");
        assert!(
            codes(i).is_empty(),
            "card {i}: nothing judged, nothing flagged"
        );
        let note = rows[i].check_note.as_deref().unwrap_or_default();
        assert!(note.contains(why), "card {i}: {note}");
    }
    assert_eq!(
        rows[2].text.as_deref(),
        Some("Bsl ~ iii"),
        "a poor reading is kept"
    );
    let q = store.batch_quality(&batch_id).await.unwrap();
    assert_eq!((q.checks_pending, q.checks_skipped), (0, 3));
    store.close().await;
}
