//! What the runner's tests share: a started batch in a real SQLite store
//! in a temp dir.

use cardex_core::{BatchName, Field};
use cardex_runner::intake::{Admission, FileLimits, Intake};
use cardex_store::SharedStore;

/// Creates a batch for `engine` with `fields`, adds `images` (as
/// `card-N.EXT`, written to `dir` first) and starts it; returns the batch
/// id and the cards' ids in order.
pub async fn started_batch(
    store: &SharedStore,
    dir: &std::path::Path,
    engine: &str,
    fields: &[Field],
    images: &[(Vec<u8>, &str)],
) -> (String, Vec<i64>) {
    let now = time::OffsetDateTime::now_utc();
    let name = BatchName::new("runner-test", now, &cardex_core::naming::new_id()).unwrap();
    let batch = store
        .create_batch(&cardex_store::NewBatch::blank(&name, engine))
        .await
        .unwrap();
    store.set_fields(&batch.id, fields).await.unwrap();
    let intake = Intake::new(store.clone(), FileLimits::new(1 << 20, 1 << 24));
    let mut ids = Vec::new();
    for (i, (bytes, ext)) in images.iter().enumerate() {
        let path = dir.join(format!("card-{i}.{ext}"));
        std::fs::write(&path, bytes).unwrap();
        match &intake.add_file(&batch.id, &path).await.unwrap()[..] {
            [Admission::Accepted { card, .. }] => ids.push(card.id),
            other => panic!("{other:?}"),
        }
    }
    store.start_batch(&batch.id, false).await.unwrap();
    (batch.id, ids)
}
