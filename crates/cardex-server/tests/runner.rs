//! The batch runner against the model-server simulator: clean batches,
//! injected faults, quarantine, retry-failed, pause/resume/cancel, a 401
//! that pauses, the `response_format` fallback, exports and the one-card test.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use vlm_sim::{SimConfig, answer_for};

/// Asserts every done card's result is the simulator's answer for its image.
fn assert_results_match(rows: &[Value], files: &[(String, Vec<u8>)], fields: &Value) {
    let by_name: HashMap<&str, &Vec<u8>> = files.iter().map(|(n, b)| (n.as_str(), b)).collect();
    let fields = sim_fields(fields);
    for row in rows.iter().filter(|r| r["state"] == "done") {
        let bytes = by_name[row["original_name"].as_str().unwrap()];
        assert_eq!(
            row["result"],
            Value::Object(answer_for(bytes, &fields)),
            "{row}"
        );
        assert!(row["error"].is_null());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_batch_completes_with_every_answer_right() {
    let sim = start_sim(SimConfig::default()).await;
    let srv = TestServer::with_config(sim_config(&sim)).await;
    let files = cards(40);
    let fields = all_types();
    let id = srv.started_batch(&fields, &files).await;
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed", "{batch}");
    assert_eq!(batch["counts"]["done"], 40);
    assert_eq!(batch["percent"], 100.0);
    assert!(batch["finished_at"].is_string());

    let rows = srv.results(&id).await;
    assert_eq!(rows.len(), 40);
    assert_results_match(&rows, &files, &fields);
    // Rows come in card order, each card once.
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r["card_id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    // JSONL: the same rows, one per line, with their usage as
    // `include=usage` gives it in JSON.
    let (_, with_usage) = srv
        .get(&format!("/api/batches/{id}/results?include=usage"))
        .await;
    let res = srv
        .client
        .get(srv.url(&format!("/api/batches/{id}/results?format=jsonl")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = res.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(Value::Array(lines), with_usage);

    // CSV with a BOM: header, then one line per card.
    let res = srv
        .client
        .get(srv.url(&format!("/api/batches/{id}/results?format=csv&bom=1")))
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".csv\"")
    );
    let text = res.text().await.unwrap();
    assert!(text.starts_with('\u{feff}'));
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "card_id",
            "original_name",
            "state",
            "title",
            "year",
            "price",
            "signed",
            "subjects",
            "written",
            "error",
            "source_name",
            "page"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 40);
    let first = &rows[0]["result"];
    assert_eq!(&records[0][3], first["title"].as_str().unwrap());
    assert_eq!(&records[0][4], first["year"].to_string());
    assert_eq!(
        &records[0][7],
        format!(
            "{}; {}",
            first["subjects"][0].as_str().unwrap(),
            first["subjects"][1].as_str().unwrap()
        )
    );

    let (s, errors) = srv.get(&format!("/api/batches/{id}/errors")).await;
    assert_eq!(s, 200);
    assert_eq!(errors, json!([]));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_are_retried_and_bad_cards_quarantined() {
    let sim_cfg = SimConfig {
        error_500_rate: 0.2,
        error_429_rate: 0.05,
        bad_answer_rate: 0.15,
        ..SimConfig::default()
    };
    let sim = start_sim(sim_cfg.clone()).await;
    // Enough attempts that a good card cannot plausibly lose every one of
    // them to random faults (0.25^10 per card).
    let mut config = sim_config(&sim);
    config.runner.retry.max_attempts = 10;
    let srv = TestServer::with_config(config).await;
    let files = cards(60);
    let fields = all_types();
    let expected_bad: Vec<&str> = files
        .iter()
        .filter(|(_, b)| vlm_sim::answers_badly(b, &sim_cfg))
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        !expected_bad.is_empty() && expected_bad.len() < 30,
        "fixture: {}",
        expected_bad.len()
    );

    let id = srv.started_batch(&fields, &files).await;
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed_with_errors");
    assert_eq!(batch["counts"]["failed"], expected_bad.len());
    assert_eq!(batch["counts"]["done"], 60 - expected_bad.len());

    // Every transient fault was recovered: all other cards are right.
    let rows = srv.results(&id).await;
    assert_results_match(&rows, &files, &fields);
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r["state"] == "failed")
        .map(|r| r["original_name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, expected_bad);

    // Quarantine: image and sidecar in _errors/, reason and attempts recorded.
    let name = batch["name"].as_str().unwrap();
    let (_, errors) = srv.get(&format!("/api/batches/{id}/errors")).await;
    let errors = errors.as_array().unwrap();
    assert_eq!(errors.len(), expected_bad.len());
    for e in errors {
        // The last attempt may have met a random 500 instead; the answer
        // that never parsed is kept either way.
        assert!(
            ["unusable_answer", "engine_unavailable"]
                .contains(&e["error"]["code"].as_str().unwrap()),
            "{e}"
        );
        assert_eq!(e["error"]["attempts"], 10);
        assert!(
            e["error"]["last_answer"]
                .as_str()
                .unwrap()
                .contains("can't make out")
        );
        let stored = e["stored_name"].as_str().unwrap();
        assert!(
            srv.path(&format!("batches/{name}/_errors/{stored}"))
                .is_file()
        );
        assert!(!srv.path(&format!("batches/{name}/{stored}")).exists());
        let sidecar: Value = serde_json::from_slice(
            &std::fs::read(srv.path(&format!("batches/{name}/_errors/{stored}.error.json")))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(sidecar["card_id"], e["card_id"]);
        assert_eq!(sidecar["original_name"], e["original_name"]);
        assert_eq!(sidecar["error"]["attempts"], 10);
        assert!(sidecar["failed_at"].is_string());
    }

    // Retry-failed against a healthy server: images come back, cards succeed,
    // and the first failure stays as history.
    let srv = srv
        .restart(sim_config(&start_sim(SimConfig::default()).await))
        .await;
    let (s, b) = srv
        .post(&format!("/api/batches/{id}/retry-failed"), json!(null))
        .await;
    assert_eq!(s, 200, "{b}");
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed", "{batch}");
    assert_eq!(batch["counts"]["done"], 60);
    let rows = srv.results(&id).await;
    assert_results_match(&rows, &files, &fields);
    let (_, errors) = srv.get(&format!("/api/batches/{id}/errors")).await;
    assert_eq!(errors, json!([]));
    let dir = srv.path(&format!("batches/{name}/_errors"));
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "images left in _errors/: {left:?}");
    let (s, body) = srv
        .post(&format!("/api/batches/{id}/retry-failed"), json!(null))
        .await;
    assert_error(s, &body, 409, "nothing_failed");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_api_key_pauses_the_batch_instead_of_failing_cards() {
    let sim = start_sim(SimConfig {
        api_key: Some("right-key".into()),
        ..SimConfig::default()
    })
    .await;
    let mut config = sim_config(&sim);
    config.vlm.as_mut().unwrap().api_key = Some("wrong-key".into());
    let srv = TestServer::with_config(config).await;
    let id = srv.started_batch(&all_types(), &cards(10)).await;
    let batch = srv
        .wait_for(&id, "the pause", |b| b["state"] == "paused")
        .await;
    assert!(
        batch["pause_reason"].as_str().unwrap().contains("API key"),
        "{batch}"
    );
    let batch = srv
        .wait_for(&id, "cards released", |b| b["counts"]["processing"] == 0)
        .await;
    assert_eq!(batch["counts"]["failed"], 0);
    assert_eq!(batch["counts"]["pending"], 10);

    // With the right key, resuming finishes the batch.
    let mut config = sim_config(&sim);
    config.vlm.as_mut().unwrap().api_key = Some("right-key".into());
    let srv = srv.restart(config).await;
    let (s, b) = srv
        .post(&format!("/api/batches/{id}/resume"), json!(null))
        .await;
    assert_eq!(s, 200, "{b}");
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed");
    assert!(batch["pause_reason"].is_null());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_resume_and_cancel() {
    let config = paced_sim(2, Duration::from_millis(100)).await;
    let srv = TestServer::with_config(config).await;
    let files = cards(30);
    let id = srv.started_batch(&all_types(), &files).await;
    srv.wait_for(&id, "a first card", |b| {
        b["counts"]["done"].as_u64() >= Some(2)
    })
    .await;

    let (s, b) = srv
        .post(&format!("/api/batches/{id}/pause"), json!(null))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "paused");
    // In-flight cards finish; then nothing moves.
    let settled = srv
        .wait_for(&id, "in-flight cards", |b| b["counts"]["processing"] == 0)
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, still) = srv.get(&format!("/api/batches/{id}")).await;
    assert_eq!(
        still["counts"], settled["counts"],
        "a paused batch took new cards"
    );
    let (s, body) = srv
        .post(&format!("/api/batches/{id}/pause"), json!(null))
        .await;
    assert_error(s, &body, 409, "invalid_state");

    let (s, b) = srv
        .post(&format!("/api/batches/{id}/resume"), json!(null))
        .await;
    assert_eq!(s, 200, "{b}");
    srv.wait_for(&id, "progress after resume", |b| {
        b["counts"]["done"].as_u64() > settled["counts"]["done"].as_u64()
    })
    .await;

    let (s, b) = srv
        .post(&format!("/api/batches/{id}/cancel"), json!(null))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "cancelled");
    let settled = srv
        .wait_for(&id, "in-flight cards", |b| b["counts"]["processing"] == 0)
        .await;
    assert!(settled["counts"]["pending"].as_u64().unwrap() > 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, still) = srv.get(&format!("/api/batches/{id}")).await;
    assert_eq!(
        still["counts"], settled["counts"],
        "a cancelled batch took new cards"
    );
    for action in ["resume", "pause", "cancel"] {
        let (s, body) = srv
            .post(&format!("/api/batches/{id}/{action}"), json!(null))
            .await;
        assert_error(s, &body, 409, "invalid_state");
    }
    // Cancelled is not running: it may be deleted.
    let (s, _) = srv.delete(&format!("/api/batches/{id}")).await;
    assert_eq!(s, 204);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_without_json_schema_get_json_object() {
    let sim = start_sim(SimConfig {
        reject_json_schema: true,
        ..SimConfig::default()
    })
    .await;
    let srv = TestServer::with_config(sim_config(&sim)).await;
    let files = cards(5);
    let fields = all_types();
    let id = srv.started_batch(&fields, &files).await;
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed", "{batch}");
    assert_results_match(&srv.results(&id).await, &files, &fields);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_one_card_test_changes_nothing() {
    let sim = start_sim(SimConfig::default()).await;
    let srv = TestServer::with_config(sim_config(&sim)).await;
    let id = srv.create_batch("verify").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fields = all_types();
    srv.put(&format!("/api/batches/{id}/fields"), fields.clone())
        .await;
    let files = cards(2);
    let parts: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let (_, up) = srv.upload(&id, &parts).await;
    let second = up["accepted"][1]["id"].as_i64().unwrap();
    let (_, before) = srv.get(&format!("/api/batches/{id}")).await;

    let (s, t) = srv
        .post(&format!("/api/batches/{id}/test"), json!({}))
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["original_name"], "card-0000.jpg");
    assert_eq!(
        t["result"],
        Value::Object(answer_for(&files[0].1, &sim_fields(&fields)))
    );
    assert!(t["raw"].as_str().unwrap().starts_with('{'));
    assert!(t["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let (s, t) = srv
        .post(
            &format!("/api/batches/{id}/test"),
            json!({"card_id": second}),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        t["result"],
        Value::Object(answer_for(&files[1].1, &sim_fields(&fields)))
    );

    let (_, after) = srv.get(&format!("/api/batches/{id}")).await;
    assert_eq!(after, before, "the test changed the batch");
    let (s, body) = srv
        .post(
            &format!("/api/batches/{id}/test"),
            json!({"card_id": 999999}),
        )
        .await;
    assert_error(s, &body, 404, "card_not_found");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn engines_report_reachability() {
    let sim = start_sim(SimConfig::default()).await;
    let srv = TestServer::with_config(sim_config(&sim)).await;
    let (s, engines) = srv.get("/api/engines").await;
    assert_eq!(s, 200);
    let vlm = &engines[0];
    assert_eq!(vlm["name"], "vlm");
    assert_eq!(vlm["default"], true);
    assert_eq!(vlm["reachable"], true, "{engines}");
    assert_eq!(vlm["model"], "sim-vlm");
    srv.stop().await;

    let srv = TestServer::with_config(sim_config("http://127.0.0.1:9/v1")).await;
    let (_, engines) = srv.get("/api/engines").await;
    assert_eq!(engines[0]["reachable"], false, "{engines}");
    assert!(!engines.to_string().contains("api_key"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_whose_engine_is_missing_is_paused_with_the_reason() {
    // Started with a slow model server, restarted without one.
    let sim = start_sim(SimConfig {
        slots: 1,
        latency: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await;
    let srv = TestServer::with_config(sim_config(&sim)).await;
    let id = srv.started_batch(&all_types(), &cards(3)).await;
    let srv = srv.restart(cardex_server::ServerConfig::default()).await;
    let batch = srv
        .wait_for(&id, "the pause", |b| b["state"] == "paused")
        .await;
    assert_eq!(batch["engine"], "vlm");
    assert!(
        batch["pause_reason"]
            .as_str()
            .unwrap()
            .contains("not available"),
        "{batch}"
    );
    assert_eq!(batch["counts"]["failed"], 0);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hung_requests_time_out_and_are_retried() {
    let sim = start_sim(SimConfig {
        // 40 requests at 0.3: no hang at all has odds of 0.7^40 (about 1e-6).
        hang_rate: 0.3,
        hang: Duration::from_secs(30),
        ..SimConfig::default()
    })
    .await;
    let mut config = sim_config(&sim);
    config.vlm.as_mut().unwrap().request_timeout = Duration::from_millis(400);
    config.runner.retry.max_attempts = 10;
    let srv = TestServer::with_config(config).await;
    let files = cards(40);
    let fields = all_types();
    let id = srv.started_batch(&fields, &files).await;
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed", "{batch}");
    assert_results_match(&srv.results(&id).await, &files, &fields);
    let stats: Value = reqwest::get(sim.replace("/v1", "/sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stats["hangs"].as_u64().unwrap() > 0,
        "no hang was injected: {stats}"
    );
    srv.stop().await;
}
