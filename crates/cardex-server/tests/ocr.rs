//! The embedded OCR engine as the default, end to end through the server:
//! the labeled specimen cards of `../shared/sample-cards` are read with no
//! model server and no network.

#![cfg(feature = "ocr")]

mod common;

use cardex_engine::labels::normalize;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_server_reads_specimen_cards_offline() {
    let srv = TestServer::start().await;
    let (_, engines) = srv.get("/api/engines").await;
    let ocr = engines
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "ocr")
        .unwrap()
        .clone();
    assert_eq!(ocr["available"], true, "{engines}");
    assert_eq!(ocr["default"], true);

    let cards = sample_truth("labeled", Some("species"));
    assert!(cards.len() >= 4);
    let files: Vec<(String, Vec<u8>)> = cards
        .iter()
        .map(|c| {
            let name = c["file"].as_str().unwrap().to_owned();
            let bytes = std::fs::read(sample_cards_dir().join(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    let fields = json!([
        {"name": "species", "type": "text", "description": "Scientific name of the plant"},
        {"name": "collector", "type": "text"},
        {"name": "locality", "type": "text"},
        {"name": "date", "type": "date", "description": "When it was collected"}
    ]);

    // The verification step works with OCR too.
    let id = srv.create_batch("herbarium").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    srv.put(&format!("/api/batches/{id}/fields"), fields.clone())
        .await;
    let (_, up) = srv
        .upload(&id, &[(files[0].0.as_str(), files[0].1.clone())])
        .await;
    assert_eq!(up["accepted"].as_array().unwrap().len(), 1, "{up}");
    let (s, t) = srv
        .post(&format!("/api/batches/{id}/test"), json!({}))
        .await;
    assert_eq!(s, 200, "{t}");
    assert!(
        t["raw"].as_str().unwrap().contains(':'),
        "the OCR text: {t}"
    );
    assert!(
        t["result"].get("_text").is_none(),
        "the text is no field: {t}"
    );

    let id = srv.started_batch(&fields, &files).await;
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed", "{batch}");
    let rows = srv.results(&id).await;
    let (mut right, mut total) = (0, 0);
    for row in &rows {
        let card = cards
            .iter()
            .find(|c| c["file"] == row["original_name"])
            .unwrap();
        for (name, want) in card["fields"].as_object().unwrap() {
            total += 1;
            let have = row["result"][name].as_str().unwrap_or_default();
            right += usize::from(normalize(have) == normalize(want.as_str().unwrap()));
        }
        assert!(row["result"].get("_confidence").is_none());
        assert!(row["confidence"].is_object(), "{row}");
    }
    assert!(right * 100 >= total * 95, "{right}/{total} fields right");
    srv.stop().await;
}
