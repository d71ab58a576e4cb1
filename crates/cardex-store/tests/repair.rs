//! Crash repair at start-up: a batch whose `start` committed but whose image
//! moves did not finish has them finished when the store is opened again;
//! and group commits, which recovery relies on being all-or-nothing.

use cardex_core::{BatchName, Field, FieldType};
use cardex_store::{
    BatchStore, CardStore, CheckStore, NewCard, ResultStore, RunStore, SqliteStore, Store,
};

async fn staged_batch(store: &SqliteStore, n: usize) -> (String, String, Vec<String>) {
    let name = BatchName::new("crash test", time::OffsetDateTime::now_utc(), "abcdefgh").unwrap();
    store
        .create_batch(&cardex_store::NewBatch::blank(&name, "ocr"))
        .await
        .unwrap();
    store
        .set_fields(&name.id, &[Field::new("title", FieldType::Text)])
        .await
        .unwrap();
    let staging = store.layout().staging_dir(&name.id);
    std::fs::create_dir_all(&staging).unwrap();
    let mut stored = Vec::new();
    for i in 0..n {
        let stored_name = cardex_store::layout::new_stored_name("png");
        std::fs::write(staging.join(&stored_name), format!("image {i}")).unwrap();
        store
            .add_card(
                &name.id,
                &NewCard {
                    original_name: format!("{i}.png"),
                    source_name: format!("{i}.png"),
                    page: None,
                    stored_name: stored_name.clone(),
                    size_bytes: 7,
                    sha256: format!("{i:064}"),
                    format: "png".into(),
                    width: 1,
                    height: 1,
                },
            )
            .await
            .unwrap();
        stored.push(stored_name);
    }
    (name.id, name.full, stored)
}

/// Runs SQL on a closed store's database, as a crash would have left it.
async fn with_db(dir: &std::path::Path, statements: &[&str], id: &str) {
    let url = format!("sqlite://{}", dir.join("cardex.db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    for sql in statements {
        sqlx::query(sql).bind(id).execute(&db).await.unwrap();
    }
    db.close().await;
}

#[tokio::test]
async fn moves_interrupted_by_a_crash_are_finished_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    let (id, full, stored) = staged_batch(&store, 5).await;

    // Simulate a crash right after `start` committed, with two of five
    // images already moved: the state is written, the moves are not done.
    store.close().await;
    with_db(
        tmp.path(),
        &[
            "UPDATE batches SET state = 'running', files_ready = 0 WHERE id = ?",
            "UPDATE cards SET state = 'pending' WHERE batch_id = ?",
        ],
        &id,
    )
    .await;
    let batch_dir = tmp.path().join("batches").join(&full);
    std::fs::create_dir_all(&batch_dir).unwrap();
    for s in &stored[..2] {
        std::fs::rename(
            tmp.path().join("uploads").join(&id).join(s),
            batch_dir.join(s),
        )
        .unwrap();
    }
    // A half-written upload from the same crash.
    std::fs::write(
        tmp.path().join("uploads").join(&id).join(".incoming-zzzz"),
        b"part",
    )
    .unwrap();

    let store = SqliteStore::open(tmp.path()).await.unwrap();
    for (i, s) in stored.iter().enumerate() {
        let moved = batch_dir.join(s);
        assert_eq!(
            std::fs::read_to_string(&moved).unwrap(),
            format!("image {i}")
        );
    }
    assert!(!tmp.path().join("uploads").join(&id).exists());
    let batch = store.get_batch(&id).await.unwrap();
    assert_eq!(batch.counts.pending, 5);
    // The card paths the store reports are where the files are.
    for card in store.list_cards(&id).await.unwrap() {
        assert!(
            store
                .card_path(&id, card.id, cardex_core::Side::Front)
                .await
                .unwrap()
                .is_file()
        );
    }
    store.close().await;
}

#[tokio::test]
async fn deleting_a_started_batch_removes_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    let (id, full, _) = staged_batch(&store, 2).await;
    store.start_batch(&id, false).await.unwrap();
    let batch_dir = tmp.path().join("batches").join(&full);
    assert_eq!(std::fs::read_dir(&batch_dir).unwrap().count(), 2);
    assert!(store.delete_batch(&id).await.is_err(), "running: refused");
    store.close().await;
    with_db(
        tmp.path(),
        &["UPDATE batches SET state = 'completed' WHERE id = ?"],
        &id,
    )
    .await;
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    store.delete_batch(&id).await.unwrap();
    assert!(!batch_dir.exists());
    assert!(store.list_batches().await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn concurrent_writers_never_see_busy() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..10 {
                let id = cardex_core::naming::new_id();
                let name =
                    BatchName::new(&format!("b{i}-{j}"), time::OffsetDateTime::now_utc(), &id)
                        .unwrap();
                store
                    .create_batch(&cardex_store::NewBatch::blank(&name, "ocr"))
                    .await
                    .unwrap();
                store
                    .set_fields(&id, &[Field::new("f", FieldType::Text)])
                    .await
                    .unwrap();
                assert_eq!(store.get_batch(&id).await.unwrap().fields.len(), 1);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.list_batches().await.unwrap().len(), 320);
    store.close().await;
}

#[tokio::test]
async fn a_failure_committed_before_its_image_moved_is_quarantined_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    let (id, full, stored) = staged_batch(&store, 3).await;
    store.start_batch(&id, false).await.unwrap();
    store.close().await;
    // The crash came after the failure committed, before the move.
    with_db(
        tmp.path(),
        &[
            "UPDATE cards SET state = 'failed', error = '{\"code\":\"x\",\"message\":\"m\"}' \
           WHERE id = (SELECT MIN(id) FROM cards WHERE batch_id = ?)",
        ],
        &id,
    )
    .await;
    let batch_dir = tmp.path().join("batches").join(&full);
    assert!(batch_dir.join(&stored[0]).is_file());

    let store = SqliteStore::open(tmp.path()).await.unwrap();
    let errors = batch_dir.join("_errors");
    assert!(errors.join(&stored[0]).is_file());
    assert!(!batch_dir.join(&stored[0]).exists());
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(errors.join(format!("{}.error.json", stored[0]))).unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar["error"]["message"], "m");
    // The others stay where they are.
    assert!(batch_dir.join(&stored[1]).is_file() && batch_dir.join(&stored[2]).is_file());
    store.close().await;
}

#[tokio::test]
async fn a_group_commit_records_each_card_once_with_contiguous_seqs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    let (id, _, _) = staged_batch(&store, 5).await;
    let (_, start_event) = store.start_batch(&id, false).await.unwrap();
    let cards = store.claim_cards("ocr", 10).await.unwrap();
    assert_eq!(cards.len(), 5);
    // One card was put back meanwhile (shutdown): the group must skip it.
    store.release_card(cards[4].id).await.unwrap();
    let results: Vec<serde_json::Value> = (0..5)
        .map(|i| serde_json::json!({"title": format!("card {i}")}))
        .collect();
    let usage = |i: u64| cardex_core::Usage {
        prompt_tokens: 1000 + i,
        completion_tokens: 10,
        total_tokens: 1010 + i,
        cached_tokens: 0,
        requests: 1,
        ms: 100,
    };
    let usages: Vec<cardex_core::Usage> = (0..5).map(usage).collect();
    let provenance = serde_json::json!({"engine": "ocr"});
    let items: Vec<cardex_store::Completion<'_>> = cards
        .iter()
        .zip(&results)
        .zip(&usages)
        .map(|((card, result), usage)| cardex_store::Completion {
            card,
            result,
            raw: "{}",
            flags: &[],
            confidence: &serde_json::Value::Null,
            text: None,
            check: false,
            usage,
            provenance: &provenance,
        })
        .collect();
    let committed = store.complete_cards(&items).await.unwrap();
    let seqs: Vec<i64> = committed.events.iter().map(|(_, e)| e.seq).collect();
    let first = start_event.seq + 1;
    assert_eq!(seqs, (first..first + 4).collect::<Vec<_>>());
    assert!(committed.finished.is_empty(), "one card is still pending");
    // Committing the same cards again changes nothing.
    let again = store.complete_cards(&items[..4]).await.unwrap();
    assert!(again.events.is_empty());

    let batch = store.get_batch(&id).await.unwrap();
    assert_eq!((batch.counts.done, batch.counts.pending), (4, 1));
    // Usage is counted with the cards' outcomes: the released card's not
    // at all, the committed ones once however often they are sent.
    assert_eq!(batch.usage.total_tokens, 1010 * 4 + 6);
    assert_eq!((batch.usage.requests, batch.usage.ms), (4, 400));
    let last = store.claim_cards("ocr", 10).await.unwrap();
    let done = store
        .complete_cards(&[cardex_store::Completion {
            card: &last[0],
            result: &results[4],
            raw: "{}",
            flags: &[],
            confidence: &serde_json::Value::Null,
            text: None,
            check: false,
            usage: &usages[4],
            provenance: &provenance,
        }])
        .await
        .unwrap();
    assert_eq!(done.events[0].1.seq, first + 4);
    assert_eq!(done.finished.len(), 1, "the last card ends the batch");
    let batch = store.get_batch(&id).await.unwrap();
    assert_eq!(batch.state, cardex_core::BatchState::Completed);
    assert_eq!(batch.counts.done, 5);
    assert_eq!(batch.usage.total_tokens, 1010 * 5 + 10);
    assert_eq!(done.spent[0].1.usage, batch.usage);
    let rows = store.results_page(&id, 0, 10).await.unwrap();
    assert_eq!(rows[4].usage, Some(usages[4]));
    assert_eq!(rows[4].provenance, Some(provenance.clone()));
}

#[tokio::test]
async fn cross_checks_wait_in_the_store_and_land_once_with_their_event() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    let (id, _, stored) = staged_batch(&store, 3).await;
    store.start_batch(&id, false).await.unwrap();
    let cards = store.claim_cards("ocr", 10).await.unwrap();
    let result = serde_json::json!({"title": "Basel"});
    let usage = cardex_core::Usage::default();
    let items: Vec<cardex_store::Completion<'_>> = cards
        .iter()
        .enumerate()
        .map(|(i, card)| cardex_store::Completion {
            card,
            result: &result,
            raw: "{}",
            flags: &[],
            confidence: &serde_json::Value::Null,
            text: None,
            check: i < 2,
            usage: &usage,
            provenance: &serde_json::Value::Null,
        })
        .collect();
    store.complete_cards(&items).await.unwrap();
    assert_eq!(store.batch_quality(&id).await.unwrap().checks_pending, 2);

    let jobs = store.pending_checks(10, &[]).await.unwrap();
    assert_eq!(
        jobs.len(),
        2,
        "only the cards sent for a check wait for one"
    );
    assert_eq!(jobs[0].stored_name, stored[0]);
    assert_eq!(jobs[0].result["title"], "Basel");
    let later = store.pending_checks(10, &[jobs[0].card_id]).await.unwrap();
    assert_eq!(later.len(), 1, "cards being checked are left out");

    // The store is the queue: it survives a restart.
    store.close().await;
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    assert_eq!(store.pending_checks(10, &[]).await.unwrap().len(), 2);

    let flag = cardex_core::Flag::on("title", cardex_core::FlagCode::NotInText, "not there");
    let flags = [flag];
    let outcome = cardex_store::CheckOutcome::Done {
        text: "Zurich 1931",
        flags: &flags,
    };
    let (batch, event) = store
        .record_check(jobs[0].card_id, outcome)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(batch, id);
    assert_eq!(event.payload["type"], "card_checked");
    assert_eq!(event.payload["flags"][0]["code"], "not_in_text");
    assert!(
        store
            .record_check(jobs[0].card_id, outcome)
            .await
            .unwrap()
            .is_none(),
        "a check lands once"
    );
    let skipped = cardex_store::CheckOutcome::Skipped {
        note: "the image is gone",
        text: None,
    };
    store.record_check(jobs[1].card_id, skipped).await.unwrap();

    let rows = store.results_page(&id, 0, 10).await.unwrap();
    assert_eq!(rows[0].text.as_deref(), Some("Zurich 1931"));
    assert_eq!(rows[0].check.as_deref(), Some("done"));
    assert_eq!(rows[0].flags.len(), 1);
    assert_eq!(rows[1].check.as_deref(), Some("skipped"));
    assert_eq!(rows[2].check, None);
    let quality = store.batch_quality(&id).await.unwrap();
    assert_eq!((quality.checks_pending, quality.checks_skipped), (0, 1));
    assert_eq!(quality.flagged_cards, 1);
    assert_eq!(quality.flags.get("not_in_text"), Some(&1));
    assert!(store.pending_checks(10, &[]).await.unwrap().is_empty());
    store.close().await;
}
