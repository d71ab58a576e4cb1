//! The WebSocket progress stream: snapshot first, exact replay with
//! `since`, live events, re-attach without loss or duplicates, and `seq`
//! that keeps growing across a restart.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use vlm_sim::SimConfig;

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn since_replays_exactly_the_missed_events() {
    let sim = start_sim(SimConfig::default()).await;
    let srv = TestServer::with_config(sim_config(&sim)).await;
    let id = srv.started_batch(&all_types(), &cards(30)).await;
    let batch = srv.wait_finished(&id).await;
    let last = batch["last_seq"].as_i64().unwrap();
    // open→running, 30 cards, running→completed.
    assert_eq!(last, 32);

    let mut ws = connect(&srv, &id, Some(0)).await;
    let snapshot = next(&mut ws).await.unwrap();
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["state"], "completed");
    assert_eq!(snapshot["done"], 30);
    assert_eq!(snapshot["total"], 30);
    assert_eq!(snapshot["percent"], 100.0);
    assert_eq!(snapshot["position"], "file 30 of 30");
    assert_eq!(snapshot["seq"], last);
    let events = durable_until_finished(&mut ws, 100).await;
    assert_eq!(seqs(&events), (1..=last).collect::<Vec<_>>());
    assert_eq!(events[0]["type"], "state");
    assert_eq!(events[0]["to"], "running");
    assert_eq!(
        events.iter().filter(|e| e["type"] == "card_done").count(),
        30
    );
    let card_done = &events[1];
    assert!(
        card_done["card_id"].is_i64()
            && card_done["file"].is_string()
            && card_done["result"].is_object()
    );

    let mut ws = connect(&srv, &id, Some(10)).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "snapshot");
    let events = durable_until_finished(&mut ws, 100).await;
    assert_eq!(seqs(&events), (11..=last).collect::<Vec<_>>());

    // Without `since`: the snapshot, then only live events.
    let mut ws = connect(&srv, &id, None).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "snapshot");
    ws.close(None).await.unwrap();
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_reconnects_misses_nothing_and_sees_nothing_twice() {
    let config = paced_sim(4, Duration::from_millis(40)).await;
    let srv = TestServer::with_config(config).await;
    let id = srv.started_batch(&all_types(), &cards(60)).await;

    let mut ws = connect(&srv, &id, Some(0)).await;
    assert_eq!(next(&mut ws).await.unwrap()["type"], "snapshot");
    let mut seen = durable_until_finished(&mut ws, 8).await;
    let mut progress = Vec::new();
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let last = seen.last().unwrap()["seq"].as_i64().unwrap();
    let mut ws = connect(&srv, &id, Some(last)).await;
    let snapshot = next(&mut ws).await.unwrap();
    assert_eq!(snapshot["type"], "snapshot");
    loop {
        let Some(e) = next(&mut ws).await else {
            panic!("stream ended early")
        };
        if e["type"] == "progress" {
            progress.push(e);
            continue;
        }
        let finished = e["type"] == "state" && e["to"] == "completed";
        seen.push(e);
        if finished {
            break;
        }
    }
    let s = seqs(&seen);
    assert!(
        s.windows(2).all(|w| w[1] == w[0] + 1),
        "gap or repeat in {s:?}"
    );
    assert_eq!(s[0], 1);
    let cards: BTreeSet<i64> = seen
        .iter()
        .filter(|e| e["type"] == "card_done")
        .map(|e| e["card_id"].as_i64().unwrap())
        .collect();
    assert_eq!(cards.len(), 60);
    assert_eq!(seen.iter().filter(|e| e["type"] == "card_done").count(), 60);

    // Live progress: rate, ETA, position.
    let p = progress
        .iter()
        .find(|p| p["done"].as_u64() < Some(60))
        .expect("a progress event mid-run");
    assert!(p["position"].as_str().unwrap().starts_with("file "));
    assert!(p["percent"].as_f64().unwrap() > 0.0);
    assert!(p["cards_per_minute"].as_f64().unwrap() > 0.0, "{p}");
    assert!(p["eta_seconds"].as_f64().is_some(), "{p}");
    assert_eq!(p["concurrency"], 4);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn seq_keeps_growing_across_a_restart() {
    let config = paced_sim(1, Duration::from_millis(100)).await;
    let srv = TestServer::with_config(config.clone()).await;
    let id = srv.started_batch(&all_types(), &cards(20)).await;
    srv.wait_for(&id, "a few cards", |b| {
        b["counts"]["done"].as_u64() >= Some(3)
    })
    .await;
    let (s, _) = srv
        .post(&format!("/api/batches/{id}/pause"), json!(null))
        .await;
    assert_eq!(s, 200);
    let paused = srv
        .wait_for(&id, "in-flight cards", |b| b["counts"]["processing"] == 0)
        .await;
    let before = paused["last_seq"].as_i64().unwrap();

    let srv = srv.restart(config).await;
    let mut ws = connect(&srv, &id, Some(0)).await;
    let snapshot = next(&mut ws).await.unwrap();
    assert_eq!(snapshot["seq"], before);
    assert_eq!(snapshot["state"], "paused");
    let (s, _) = srv
        .post(&format!("/api/batches/{id}/resume"), json!(null))
        .await;
    assert_eq!(s, 200);
    let events = durable_until_finished(&mut ws, 1000).await;
    let s = seqs(&events);
    assert_eq!(s[0], 1);
    assert!(s.windows(2).all(|w| w[1] == w[0] + 1), "{s:?}");
    let resumed = events
        .iter()
        .find(|e| e["type"] == "state" && e["to"] == "running" && e["from"] == "paused")
        .unwrap();
    assert_eq!(resumed["seq"], before + 1);
    assert_eq!(
        events.iter().filter(|e| e["type"] == "card_done").count(),
        20
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_of_unknown_batches_and_plain_http_are_refused() {
    let srv = TestServer::start().await;
    let (s, body) = srv.get("/api/batches/zzzzzzzz/events").await;
    assert_error(s, &body, 404, "batch_not_found");
    let id = srv.create_batch("x").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, body) = srv.get(&format!("/api/batches/{id}/events")).await;
    assert!((400..500).contains(&s), "{s} {body}");
    assert_eq!(body["error"]["code"], "websocket_required");
    srv.stop().await;
}

/// Reads a batch's stream until it ends (and briefly after, for stragglers),
/// asserting that no `progress` event is older than a durable event before
/// it. Returns the last `progress` event and the durable events.
async fn follow_round(ws: &mut Ws, newest: &mut i64, what: &str) -> (Value, Vec<Value>) {
    let mut last_progress = None;
    let mut durable = Vec::new();
    let mut ended = false;
    loop {
        let wait = Duration::from_millis(if ended { 200 } else { 10_000 });
        let Ok(Some(e)) = tokio::time::timeout(wait, next(ws)).await else {
            break;
        };
        let seq = e["seq"].as_i64().unwrap();
        if e["type"] == "progress" {
            assert!(seq >= *newest, "{what}: {e} came after seq {newest}");
            last_progress = Some(e);
            continue;
        }
        *newest = seq;
        ended |=
            e["type"] == "state" && (e["to"] == "completed" || e["to"] == "completed_with_errors");
        durable.push(e);
    }
    assert!(ended, "{what}: the batch did not end");
    (last_progress.expect("a progress event"), durable)
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_never_move_backwards() {
    // Half the requests fail at once and cards get one attempt: done cards
    // (committed in groups) and failed ones (committed one by one) finish
    // side by side, and retry-failed adds its own `progress` event. Each
    // path reads the counts before it publishes them; none may overtake a
    // newer event.
    let config = one_attempt_sim(SimConfig {
        error_500_rate: 0.5,
        latency: Duration::from_millis(5),
        ..SimConfig::default()
    })
    .await;
    let srv = TestServer::with_config(config).await;
    for trial in 0..6 {
        let id = srv.loaded_batch(&all_types(), &cards(40)).await;
        let mut ws = connect(&srv, &id, None).await;
        let mut newest = next(&mut ws).await.unwrap()["seq"].as_i64().unwrap();
        srv.start_batch(&id).await;
        for round in 0.. {
            let what = format!("trial {trial}, round {round}");
            let (progress, durable) = follow_round(&mut ws, &mut newest, &what).await;
            let (_, batch) = srv.get(&format!("/api/batches/{id}")).await;
            for key in ["done", "failed", "total"] {
                assert_eq!(
                    progress[key], batch["counts"][key],
                    "{what}: {progress} {batch}"
                );
            }
            if round > 0 {
                let failed_before = durable[0]["retried"].as_i64();
                assert!(
                    failed_before.is_some_and(|n| n > 0),
                    "{what}: {}",
                    durable[0]
                );
            }
            if batch["counts"]["failed"] == 0 {
                break;
            }
            let (s, b) = srv
                .post(&format!("/api/batches/{id}/retry-failed"), json!(null))
                .await;
            assert_eq!(s, 200, "{what}: {b}");
        }
    }
    srv.stop().await;
}
