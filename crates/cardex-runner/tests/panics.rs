//! A panic inside a card's processing (here injected by an engine that
//! panics on chosen cards) never leaves the card held: it goes back in
//! line, fails with `internal_error` after repeated panics, and the batch
//! runs to its end. Real SQLite store in a temp dir, real runner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use cardex_core::{BatchState, Field, FieldType};
use cardex_engine::{CompiledPrompt, Engine, EngineError, Extraction, PreparedImage};
use cardex_runner::{Engines, Hub, Limiter, Runner, RunnerConfig};
use cardex_store::{SharedStore, SqliteStore};
use common::started_batch;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// Panics on every card whose image is one of `always`, and on the first
/// attempt at those in `once`; reads every other card.
#[derive(Debug, Default)]
struct Panicky {
    always: Vec<Vec<u8>>,
    once: Mutex<HashMap<Vec<u8>, u32>>,
}

impl Engine for Panicky {
    fn name(&self) -> &str {
        "vlm"
    }

    fn extract<'a>(
        &'a self,
        images: &'a [PreparedImage],

        _prompt: &'a CompiledPrompt,
    ) -> BoxFuture<'a, Result<Extraction, EngineError>> {
        let image = &images[0];
        Box::pin(async move {
            if self.always.contains(&image.bytes) {
                panic!("injected: this card always panics");
            }
            let first_time = self
                .once
                .lock()
                .unwrap()
                .get_mut(&image.bytes)
                .is_some_and(|n| {
                    *n += 1;
                    *n == 1
                });
            if first_time {
                panic!("injected: this card panics once");
            }
            let mut fields = serde_json::Map::new();
            fields.insert("title".into(), "read".into());
            Ok(Extraction::of(fields))
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_card_is_released_and_the_batch_goes_on() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(SqliteStore::open(data.path()).await.unwrap());
    let images: Vec<(Vec<u8>, &str)> = (0..8).map(|s| (cardex_testkit::jpeg(s), "jpg")).collect();
    let fields = [Field::new("title", FieldType::Text)];
    let (batch_id, ids) = started_batch(&store, files.path(), "vlm", &fields, &images).await;

    // Small JPEGs reach the engine as they are, so the bytes pick the card.
    let engine = Panicky {
        always: vec![cardex_testkit::jpeg(2)],
        once: Mutex::new(HashMap::from([(cardex_testkit::jpeg(5), 0)])),
    };
    let engines = Engines::default().with(Arc::new(engine), Limiter::fixed("vlm", 4));
    let stop = CancellationToken::new();
    let runner = Runner::new(
        store.clone(),
        engines,
        Hub::default(),
        RunnerConfig::default(),
        None,
        stop.clone(),
    );
    let running = tokio::spawn(runner.clone().run());
    runner.wake();

    let started = Instant::now();
    let finished = loop {
        let b = store.get_batch(&batch_id).await.unwrap();
        if b.state != BatchState::Running {
            break b;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the batch never ended: {:?}",
            b.counts
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.cancel();
    running.await.unwrap();

    assert_eq!(finished.state, BatchState::CompletedWithErrors);
    assert_eq!((finished.counts.done, finished.counts.failed), (7, 1));
    assert_eq!(finished.counts.processing, 0);
    let failed = store.failed_cards(&batch_id).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].card_id, ids[2]);
    assert_eq!(failed[0].error["code"], "internal_error");
    assert!(
        failed[0].error["message"]
            .as_str()
            .unwrap()
            .contains("always panics"),
        "{}",
        failed[0].error
    );
    // The card that panicked once was read on its next turn.
    let rows = store.results_page(&batch_id, 0, 100).await.unwrap();
    let once = rows.iter().find(|r| r.card_id == ids[5]).unwrap();
    assert_eq!(once.state, "done");
    store.close().await;
}
