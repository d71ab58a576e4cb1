//! The cross-check from a real server run (DESIGN §13): a simulated model
//! that reads 200 synthetic catalog cards (`CARDEX_CROSS_CHECK_CARDS` for
//! more or fewer, at least 200 for the figures) right, but makes up one value
//! on 30% of them (another card's value of the same field); the embedded
//! OCR reads every card again, and `not_in_text` must catch at least 90%
//! of the inventions while flagging at most 5% of the true values.
//!
//! The checks run behind the model: the batch completes first, the checks
//! catch up, across a restart too, and each lands with its event.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use sha2::Digest;

/// Cards read, unless `CARDEX_CROSS_CHECK_CARDS` says otherwise.
fn card_count() -> usize {
    std::env::var("CARDEX_CROSS_CHECK_CARDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// The fields of a catalog card, all text: the cross-check judges text.
fn catalog_fields() -> Value {
    json!([
        {"name": "call_number", "type": "text", "description": "shelf mark, top left"},
        {"name": "author", "type": "text", "description": "as written: Last, First"},
        {"name": "title", "type": "text"},
        {"name": "place", "type": "text", "description": "place of publication"},
        {"name": "year", "type": "text"}
    ])
}

fn checked_config(sim: &str) -> cardex_server::ServerConfig {
    let mut config = sim_config(sim);
    config.ocr.cross_check = cardex_server::CrossCheckMode::On;
    config.ocr.check_workers = 2;
    config
}

/// Polls until no done card of the batch waits for its check.
async fn wait_checked(srv: &TestServer, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, b) = srv.get(&format!("/api/batches/{id}")).await;
        if b["quality"]["checks_pending"] == 0 {
            return b;
        }
        assert!(Instant::now() < deadline, "checks did not catch up: {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cross_check_catches_made_up_values_and_spares_true_ones() {
    let count = card_count();
    let cards = cardex_testkit::cards::synthetic_cards(count, 7).unwrap();
    // The simulator knows each card by the image the runner sends it.
    let options = cardex_engine::PrepareOptions::default();
    let mut answers = BTreeMap::new();
    let mut sha_of = HashMap::new();
    for card in &cards {
        let sent = cardex_engine::prepare::prepare(card.png.clone(), &options).unwrap();
        let sha = hex::encode(sha2::Sha256::digest(&sent.bytes));
        let values: serde_json::Map<String, Value> = card
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        answers.insert(sha.clone(), values);
        sha_of.insert(card.name.clone(), sha);
    }
    let (sim, stats) = start_sim_with_stats(vlm_sim::SimConfig {
        slots: 32,
        hallucinate_rate: 0.3,
        answers: std::sync::Arc::new(answers),
        ..Default::default()
    })
    .await;
    let srv = TestServer::with_config(checked_config(&sim)).await;
    let files: Vec<(String, Vec<u8>)> = cards
        .iter()
        .map(|c| (c.name.clone(), c.png.clone()))
        .collect();
    let id = srv.started_batch(&catalog_fields(), &files).await;
    let finished = srv.wait_finished(&id).await;
    assert_eq!(finished["counts"]["done"], count as u64, "{finished}");
    // The model is not held back by the checks: they are still running.
    assert!(
        finished["quality"]["checks_pending"].as_u64().unwrap() > 0,
        "{finished}"
    );

    // A restart midway: the checks still waiting resume by themselves.
    let srv = srv.restart(checked_config(&sim)).await;
    let mut live = connect(&srv, &id, None).await;
    let (_, after_restart) = srv.get(&format!("/api/batches/{id}")).await;
    let left = after_restart["quality"]["checks_pending"].as_u64().unwrap();
    // OCR reads a few cards a second, the model hundreds: most checks are
    // left for the new server, which resumes them by itself.
    assert!(left > 0, "no check left after the restart: {after_restart}");
    let batch = wait_checked(&srv, &id, Duration::from_secs(600)).await;
    assert_eq!(batch["quality"]["checks_skipped"], 0, "{batch}");

    let invented: HashMap<(String, String), String> = stats
        .inventions
        .lock()
        .unwrap()
        .iter()
        .map(|i| {
            let key = (
                i["image_sha256"].as_str().unwrap().to_owned(),
                i["field"].as_str().unwrap().to_owned(),
            );
            (key, i["value"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(invented.len() >= 40, "{} inventions", invented.len());

    let rows = srv.results(&id).await;
    let truth: HashMap<&str, &BTreeMap<String, String>> =
        cards.iter().map(|c| (c.name.as_str(), &c.fields)).collect();
    let (mut caught, mut inventions, mut false_alarms, mut true_values) = (0, 0, 0, 0);
    let mut missed = Vec::new();
    let mut wrongly = Vec::new();
    for row in &rows {
        assert_eq!(row["check"], "done", "{row}");
        let text = row["text"].as_str().expect("the card's own text is kept");
        let name = row["original_name"].as_str().unwrap();
        let sha = &sha_of[name];
        for (field, value) in row["result"].as_object().unwrap() {
            let flagged = row["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == "not_in_text" && f["field"] == field.as_str());
            if invented.contains_key(&(sha.clone(), field.clone())) {
                inventions += 1;
                caught += usize::from(flagged);
                if !flagged {
                    missed.push(format!("{field} {value} on {text:?}"));
                }
            } else {
                assert_eq!(value.as_str(), truth[name].get(field).map(String::as_str));
                true_values += 1;
                false_alarms += usize::from(flagged);
                if flagged {
                    wrongly.push(format!("{field} {value} on {text:?}"));
                }
            }
        }
    }
    let caught_pct = caught as f64 * 100.0 / inventions as f64;
    let false_pct = false_alarms as f64 * 100.0 / true_values as f64;
    println!(
        "cross-check over {count} synthetic cards: {caught} of {inventions} inventions flagged \
         ({caught_pct:.1}%), {false_alarms} of {true_values} true values flagged ({false_pct:.1}%)"
    );
    println!("missed: {missed:#?}\nflagged wrongly: {wrongly:#?}");
    assert!(
        caught_pct >= 90.0,
        "only {caught_pct:.1}% of inventions caught"
    );
    assert!(false_pct <= 5.0, "{false_pct:.1}% of true values flagged");

    // Each check went out on the progress stream as it landed, and is
    // replayed to a client that comes later.
    let mut live_checks = 0;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(2), next(&mut live))
        .await
        .ok()
        .flatten()
    {
        live_checks += usize::from(event["type"] == "card_checked");
    }
    assert!(
        live_checks > 0,
        "{left} checks after the restart, none sent live"
    );
    let mut ws = connect(&srv, &id, Some(0)).await;
    let mut replayed = 0;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(2), next(&mut ws))
        .await
        .ok()
        .flatten()
    {
        if event["type"] == "card_checked" {
            replayed += 1;
            assert!(event["flags"].is_array(), "{event}");
        }
    }
    assert_eq!(replayed, count, "one card_checked event per card");
    srv.stop().await;
}
