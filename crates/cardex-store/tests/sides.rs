//! Two-sided cards in the store (DESIGN §16): an image taken back after a
//! failed upload undoes exactly its own pairing, and a start cut short by a
//! crash moves the backs with the fronts when the store opens again.

use cardex_core::{BatchName, Field, FieldType, Pairing, Side};
use cardex_store::{BatchStore, CardStore, NewCard, SqliteStore, Store};

async fn two_sided(store: &SqliteStore, pairing: Pairing) -> BatchName {
    let name = BatchName::new("sides", time::OffsetDateTime::now_utc(), "abcdefgh").unwrap();
    store
        .create_batch(&cardex_store::NewBatch {
            two_sided: Some(pairing),
            ..cardex_store::NewBatch::blank(&name, "ocr")
        })
        .await
        .unwrap();
    store
        .set_fields(&name.id, &[Field::new("title", FieldType::Text)])
        .await
        .unwrap();
    std::fs::create_dir_all(store.layout().staging_dir(&name.id)).unwrap();
    name
}

/// Stages a file named `original` and records it; returns the card as it
/// is after, and the image's hash.
async fn add(store: &SqliteStore, batch: &str, original: &str) -> (cardex_store::Card, String) {
    let stored_name = cardex_store::layout::new_stored_name("png");
    std::fs::write(store.layout().staged_image(batch, &stored_name), original).unwrap();
    let sha256 = format!(
        "{:0>64}",
        original.len().to_string() + &original.replace(['.', '_', '-'], "")
    );
    let card = store
        .add_card(
            batch,
            &NewCard {
                original_name: original.into(),
                source_name: original.into(),
                page: None,
                stored_name,
                size_bytes: original.len() as i64,
                sha256: sha256.clone(),
                format: "png".into(),
                width: 1,
                height: 1,
            },
        )
        .await
        .unwrap();
    (card, sha256)
}

fn staged(store: &SqliteStore, batch: &str) -> usize {
    std::fs::read_dir(store.layout().staging_dir(batch))
        .unwrap()
        .count()
}

#[tokio::test]
async fn taking_an_image_back_undoes_only_its_own_pairing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    let b = two_sided(&store, Pairing::Name).await;

    // A back attached to its front: taking it back leaves the front waiting.
    let (front, _) = add(&store, &b.id, "1_front.png").await;
    let (paired, back_sha) = add(&store, &b.id, "1_back.png").await;
    assert_eq!(paired.id, front.id);
    assert_eq!(paired.back.as_ref().unwrap().original_name, "1_back.png");
    store
        .remove_image(&b.id, front.id, &back_sha)
        .await
        .unwrap();
    let card = store.get_card(&b.id, front.id).await.unwrap();
    assert_eq!((card.side, card.back.is_none()), (Some(Side::Front), true));
    assert_eq!(staged(&store, &b.id), 1);

    // A front that completed a waiting back: taking it back leaves the
    // back waiting, as it was.
    let (lone, _) = add(&store, &b.id, "2_back.png").await;
    assert_eq!(lone.side, Some(Side::Back));
    let (joined, front_sha) = add(&store, &b.id, "2_front.png").await;
    assert_eq!(joined.id, lone.id);
    assert_eq!(joined.original_name, "2_front.png");
    store
        .remove_image(&b.id, lone.id, &front_sha)
        .await
        .unwrap();
    let card = store.get_card(&b.id, lone.id).await.unwrap();
    assert_eq!(card.original_name, "2_back.png");
    assert_eq!((card.side, card.back.is_none()), (Some(Side::Back), true));
    // It pairs again with a front that comes later.
    let (again, _) = add(&store, &b.id, "2_front.png").await;
    assert_eq!(again.id, lone.id);

    // A card of one image goes whole.
    let (single, sha) = add(&store, &b.id, "loose.png").await;
    store.remove_image(&b.id, single.id, &sha).await.unwrap();
    assert!(store.get_card(&b.id, single.id).await.is_err());
    let batch = store.get_batch(&b.id).await.unwrap();
    assert_eq!((batch.counts.total, batch.counts.unpaired), (2, 1));
    assert_eq!(staged(&store, &b.id), 3);
    // Deleting a paired card removes both its files.
    store.delete_card(&b.id, lone.id).await.unwrap();
    assert_eq!(staged(&store, &b.id), 1);
}

#[tokio::test]
async fn a_start_cut_short_moves_the_backs_too() {
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    let b = two_sided(&store, Pairing::Order).await;
    for n in ["p1.png", "p2.png", "p3.png", "p4.png"] {
        add(&store, &b.id, n).await;
    }
    let cards = store.list_cards(&b.id).await.unwrap();
    assert_eq!(cards.len(), 2);
    store.start_batch(&b.id, false).await.unwrap();
    // The start moved every image, the backs with the fronts.
    for card in &cards {
        for stored in [&card.stored_name, &card.back.as_ref().unwrap().stored_name] {
            assert!(
                store.layout().batch_image(&b.full, stored).is_file(),
                "{stored}"
            );
        }
    }
    let layout = store.layout().clone();
    store.close().await;

    // Now as if the process died right after the start committed, with
    // the backs still in staging: the store finishes the moves at open.
    let url = format!("sqlite://{}", tmp.path().join("cardex.db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE batches SET files_ready = 0 WHERE id = ?")
        .bind(&b.id)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    std::fs::create_dir_all(layout.staging_dir(&b.id)).unwrap();
    for card in &cards {
        let back = &card.back.as_ref().unwrap().stored_name;
        std::fs::rename(
            layout.batch_image(&b.full, back),
            layout.staged_image(&b.id, back),
        )
        .unwrap();
    }
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    for card in &cards {
        let back = &card.back.as_ref().unwrap().stored_name;
        assert!(
            store.layout().batch_image(&b.full, back).is_file(),
            "{back}"
        );
        assert_eq!(
            store.card_path(&b.id, card.id, Side::Back).await.unwrap(),
            store.layout().batch_image(&b.full, back)
        );
    }
    assert!(!tmp.path().join("uploads").join(&b.id).exists());
}
