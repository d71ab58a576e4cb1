//! Usage, cost and estimates (DESIGN §14), through the real server and the
//! simulator: the batch's totals are the sums the simulator reported,
//! retries and failed cards included; cost is tokens at the configured
//! prices; an estimate from three cards is within 15% of the run; a
//! budget pauses the batch and raising it goes on.

mod common;

use common::*;
use serde_json::{Value, json};

/// Prices for the tests: $0.50 per million prompt tokens, $2 generated.
const PRICES: cardex_core::Prices = cardex_core::Prices {
    input: 0.5,
    output: 2.0,
};

fn priced(mut config: cardex_server::ServerConfig) -> cardex_server::ServerConfig {
    config.runner.prices = Some(PRICES);
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn totals_are_what_the_server_reported_retries_and_failures_included() {
    let (sim, stats) = start_sim_with_stats(vlm_sim::SimConfig {
        error_429_rate: 0.15,
        retry_after: "0".into(),
        bad_answer_rate: 0.1,
        truncate_rate: 0.05,
        ..Default::default()
    })
    .await;
    let mut config = priced(sim_config(&sim));
    config.runner.retry.max_attempts = 4;
    let srv = TestServer::with_config(config).await;
    let id = srv.started_batch(&fields_json(), &cards(40)).await;
    let batch = srv.wait_finished(&id).await;
    let reported = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let usage = &batch["usage"];
    assert!(batch["counts"]["failed"].as_u64().unwrap() > 0, "{batch}");
    assert!(reported(&stats.errors_429) > 0 && reported(&stats.bad_answers) > 0);
    assert_eq!(
        usage["prompt_tokens"],
        reported(&stats.prompt_tokens),
        "{usage}"
    );
    assert_eq!(
        usage["completion_tokens"],
        reported(&stats.completion_tokens)
    );
    assert_eq!(usage["total_tokens"], reported(&stats.total_tokens));
    assert_eq!(usage["cached_tokens"], reported(&stats.cached_tokens));
    assert!(usage["cached_tokens"].as_u64().unwrap() > 0);
    // Every request counts, the 429s and the unusable answers too.
    assert_eq!(usage["requests"], reported(&stats.requests));

    // Cost: the tokens at the prices, per million.
    let cost = usage["cost"].as_f64().unwrap();
    let want = PRICES.cost(&cardex_core::Usage {
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap(),
        completion_tokens: usage["completion_tokens"].as_u64().unwrap(),
        ..Default::default()
    });
    assert_eq!(cost, want);
    let by_hand = usage["prompt_tokens"].as_f64().unwrap() * 0.5 / 1e6
        + usage["completion_tokens"].as_f64().unwrap() * 2.0 / 1e6;
    assert!((cost - by_hand).abs() < 1e-6, "{cost} against {by_hand}");

    // Each card's usage and provenance, in rows: JSONL always, JSON with
    // `include=usage`; their sum is the batch's.
    let (s, plain) = srv.get(&format!("/api/batches/{id}/results")).await;
    assert_eq!(s, 200);
    assert!(plain[0].get("usage").is_none(), "{}", plain[0]);
    let (s, rows) = srv
        .get(&format!("/api/batches/{id}/results?include=usage"))
        .await;
    assert_eq!(s, 200);
    let rows = rows.as_array().unwrap();
    for key in [
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "requests",
    ] {
        let sum: u64 = rows.iter().map(|r| r["usage"][key].as_u64().unwrap()).sum();
        assert_eq!(usage[key], sum, "{key}");
    }
    let done = rows.iter().find(|r| r["state"] == "done").unwrap();
    let p = &done["provenance"];
    assert_eq!(p["engine"], "vlm");
    assert_eq!(p["model"], "sim-vlm");
    assert_eq!(p["endpoint"], sim.as_str());
    assert_eq!(p["response_mode"], "json_schema");
    assert_eq!(p["prompt_sha256"].as_str().unwrap().len(), 64);
    assert!(
        rows.iter()
            .filter(|r| r["state"] == "done")
            .all(|r| r["provenance"]["prompt_sha256"] == p["prompt_sha256"]),
        "one batch, one prompt"
    );
    let jsonl = srv.export(&id, "format=jsonl").await;
    let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert!(
        first["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{first}"
    );
    let csv = srv.export(&id, "format=csv&include=usage").await;
    assert!(
        csv.lines().next().unwrap().ends_with(
            "error,source_name,page,prompt_tokens,completion_tokens,total_tokens,requests,ms,model"
        ),
        "{csv}"
    );
    let (s, b) = srv
        .get(&format!("/api/batches/{id}/results?include=everything"))
        .await;
    assert_error(s, &b, 400, "invalid_query");

    // The list has the totals too, and the progress stream carries them.
    let (_, list) = srv.get("/api/batches").await;
    assert_eq!(list[0]["usage"], *usage);
    let mut ws = connect(&srv, &id, None).await;
    let snapshot = next(&mut ws).await.unwrap();
    assert_eq!(snapshot["usage"], *usage, "{snapshot}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_estimate_from_three_cards_is_within_15_percent_of_the_run() {
    let sim = start_sim(vlm_sim::SimConfig::default()).await;
    let srv = TestServer::with_config(priced(sim_config(&sim))).await;
    // Rendered catalog cards: alike, but each image its own size.
    let files: Vec<(String, Vec<u8>)> = cardex_testkit::cards::synthetic_cards(60, 3)
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.png))
        .collect();
    let id = srv.loaded_batch(&fields_json(), &files).await;

    let (s, b) = srv
        .post(&format!("/api/batches/{id}/estimate"), json!({"sample": 0}))
        .await;
    assert_error(s, &b, 422, "invalid_sample");
    let (s, b) = srv
        .post(
            &format!("/api/batches/{id}/estimate"),
            json!({"sample": 21}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_sample");
    let (s, estimate) = srv
        .post(&format!("/api/batches/{id}/estimate"), json!({}))
        .await;
    assert_eq!(s, 200, "{estimate}");
    assert_eq!(estimate["sample_cards"], 3);
    assert_eq!(estimate["cards"], 60);
    let per_card = estimate["tokens_per_card"].as_f64().unwrap();
    assert!(estimate["seconds_per_card"].as_f64().unwrap() >= 0.0);
    assert!(estimate["cost"].as_f64().unwrap() > 0.0, "{estimate}");
    // Tokens per card are shown to a tenth; the total is from the mean.
    let total = estimate["total_tokens"].as_f64().unwrap();
    assert!((total - per_card * 60.0).abs() <= 3.0, "{estimate}");
    // Nothing was kept: no results, no usage.
    let (_, batch) = srv.get(&format!("/api/batches/{id}")).await;
    assert_eq!(batch["usage"]["total_tokens"], 0);
    assert_eq!(batch["state"], "open");
    assert_eq!(batch["estimate"], estimate, "kept to set beside the run");

    srv.start_batch(&id).await;
    let batch = srv.wait_finished(&id).await;
    let actual = batch["usage"]["total_tokens"].as_f64().unwrap() / 60.0;
    let off = (per_card - actual).abs() / actual;
    eprintln!(
        "estimate {per_card:.1} tokens per card, actual {actual:.1} ({:.1}% off)",
        off * 100.0
    );
    assert!(off <= 0.15, "estimate {per_card} against {actual}");
    assert_eq!(batch["estimate"], estimate);

    // An empty batch has nothing to estimate from.
    let empty = srv.create_batch("empty").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    srv.put(&format!("/api/batches/{empty}/fields"), fields_json())
        .await;
    let (s, b) = srv
        .post(&format!("/api/batches/{empty}/estimate"), json!({}))
        .await;
    assert_error(s, &b, 409, "no_images");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ocr_engine_is_estimated_in_time_only() {
    let srv = TestServer::start().await;
    let id = srv.loaded_batch(&fields_json(), &cards(4)).await;
    let (s, estimate) = srv
        .post(&format!("/api/batches/{id}/estimate"), json!({"sample": 2}))
        .await;
    assert_eq!(s, 200, "{estimate}");
    assert_eq!(estimate["sample_cards"], 2);
    assert_eq!(estimate["total_tokens"], 0);
    assert!(estimate["cost"].is_null());
    assert!(
        estimate["duration_seconds"].as_f64().unwrap() > 0.0,
        "{estimate}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_pauses_the_batch_and_raising_it_goes_on() {
    let config = priced(paced_sim(2, std::time::Duration::from_millis(40)).await);
    let srv = TestServer::with_config(config).await;

    // Bounds that could never let a card through are refused.
    for bad in [
        json!({"name": "b", "max_tokens": 0}),
        json!({"name": "b", "max_cost": -1.0}),
        json!({"name": "b", "max_cost": 0}),
        // More than the store can count (the document says int64).
        json!({"name": "b", "max_tokens": 9_223_372_036_854_775_808u64}),
    ] {
        let (s, b) = srv.post("/api/batches", bad).await;
        assert_error(s, &b, 422, "invalid_budget");
    }

    let id = srv.loaded_batch(&fields_json(), &cards(30)).await;
    let (_, estimate) = srv
        .post(&format!("/api/batches/{id}/estimate"), json!({}))
        .await;
    let per_card = estimate["tokens_per_card"].as_f64().unwrap();
    let max_tokens = (per_card * 10.0) as u64;
    // A body that is not an object is no budget (serde would read the
    // struct from an array).
    let (s, b) = srv
        .put(&format!("/api/batches/{id}/budget"), json!([null, null]))
        .await;
    assert_error(s, &b, 422, "invalid_body");
    let (s, b) = srv
        .put(
            &format!("/api/batches/{id}/budget"),
            json!({"max_tokens": max_tokens}),
        )
        .await;
    assert_eq!((s, &b["max_tokens"]), (200, &json!(max_tokens)), "{b}");
    srv.start_batch(&id).await;

    let paused = srv
        .wait_for(&id, "the budget pause", |b| b["state"] == "paused")
        .await;
    assert_eq!(paused["pause_code"], "budget_reached", "{paused}");
    assert!(
        paused["pause_reason"].as_str().unwrap().contains("budget"),
        "{paused}"
    );
    // The cards in flight finish and are kept; nothing failed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, paused) = srv.get(&format!("/api/batches/{id}")).await;
    let done = paused["counts"]["done"].as_u64().unwrap();
    // At most the two requests in flight go past the budget: cards claimed
    // but not sent yet go back in line.
    assert!((10..=13).contains(&done), "{paused}");
    assert_eq!(paused["counts"]["failed"], 0);
    assert_eq!(paused["counts"]["processing"], 0);
    assert!(paused["usage"]["total_tokens"].as_u64().unwrap() >= max_tokens);

    // Resuming at the budget is refused; raised, the batch goes on.
    let (s, b) = srv
        .post(&format!("/api/batches/{id}/resume"), json!(null))
        .await;
    assert_error(s, &b, 409, "budget_reached");
    let (s, b) = srv
        .put(
            &format!("/api/batches/{id}/budget"),
            json!({"max_tokens": null, "max_cost": 1.0}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv
        .post(&format!("/api/batches/{id}/resume"), json!(null))
        .await;
    assert_eq!(s, 200, "{b}");
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["counts"]["done"], 30, "{batch}");
    assert_eq!(batch["max_cost"], 1.0);

    // An ended batch's budget no longer changes.
    let (s, b) = srv
        .put(
            &format!("/api/batches/{id}/budget"),
            json!({"max_tokens": 5}),
        )
        .await;
    assert_error(s, &b, 409, "batch_ended");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cost_budget_pauses_at_the_prices() {
    let config = priced(paced_sim(2, std::time::Duration::from_millis(40)).await);
    let srv = TestServer::with_config(config).await;
    let id = srv.loaded_batch(&fields_json(), &cards(20)).await;
    let (_, estimate) = srv
        .post(&format!("/api/batches/{id}/estimate"), json!({}))
        .await;
    // About five cards' worth of dollars.
    let max_cost = estimate["cost"].as_f64().unwrap() / 20.0 * 5.0;
    srv.put(
        &format!("/api/batches/{id}/budget"),
        json!({"max_cost": max_cost}),
    )
    .await;
    srv.start_batch(&id).await;
    let paused = srv
        .wait_for(&id, "the budget pause", |b| b["state"] == "paused")
        .await;
    assert_eq!(paused["pause_code"], "budget_reached", "{paused}");
    assert!(
        paused["usage"]["cost"].as_f64().unwrap() >= max_cost,
        "{paused}"
    );
    assert!(
        paused["counts"]["pending"].as_u64().unwrap() > 0,
        "{paused}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cost_bound_needs_prices_and_retry_failed_keeps_to_the_budget() {
    // Without prices a cost bound could never be reached: refused.
    let config = one_attempt_sim(vlm_sim::SimConfig {
        bad_answer_rate: 0.3,
        ..Default::default()
    })
    .await;
    let srv = TestServer::with_config(config).await;
    let (s, b) = srv
        .post("/api/batches", json!({"name": "b", "max_cost": 5.0}))
        .await;
    assert_error(s, &b, 422, "no_prices");
    let id = srv.started_batch(&fields_json(), &cards(20)).await;
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed_with_errors", "{batch}");
    let (s, b) = srv
        .put(
            &format!("/api/batches/{id}/budget"),
            json!({"max_cost": 1.0}),
        )
        .await;
    assert_error(s, &b, 422, "no_prices");

    // At its budget, the failed cards are not read again until it is raised.
    let used = batch["usage"]["total_tokens"].as_u64().unwrap();
    let (s, b) = srv
        .put(
            &format!("/api/batches/{id}/budget"),
            json!({"max_tokens": used}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv
        .post(&format!("/api/batches/{id}/retry-failed"), json!(null))
        .await;
    assert_error(s, &b, 409, "budget_reached");
    srv.put(
        &format!("/api/batches/{id}/budget"),
        json!({"max_tokens": used * 10}),
    )
    .await;
    let (s, b) = srv
        .post(&format!("/api/batches/{id}/retry-failed"), json!(null))
        .await;
    assert_eq!(s, 200, "{b}");
}
