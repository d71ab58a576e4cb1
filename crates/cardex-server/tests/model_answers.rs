//! What model servers answer, on the real server with the real simulator:
//! a `Retry-After` no clock can wait out, answers cut off at the token
//! limit, refusals, answers too large to read, servers that refuse
//! `max_tokens`, and values written the way people write them.

mod common;

use std::time::Duration;

use cardex_server::ServerConfig;
use common::*;
use serde_json::{Value, json};

/// A server over a simulator configured by `sim`, with `attempts` per card
/// and short waits.
async fn over(sim: vlm_sim::SimConfig, attempts: u32) -> (TestServer, String) {
    let url = start_sim(sim).await;
    let mut config: ServerConfig = sim_config(&url);
    config.runner.retry.max_attempts = attempts;
    config.runner.retry.first_delay = Duration::from_millis(10);
    config.runner.retry.max_delay = Duration::from_millis(50);
    // Whatever the server asks for, tests wait a moment only.
    config.runner.retry.max_server_wait = Duration::from_millis(50);
    (TestServer::with_config(config).await, url)
}

async fn sim_stats(url: &str) -> Value {
    let base = url.trim_end_matches("/v1");
    reqwest::get(format!("{base}/sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_of_inf_or_1e20_does_not_wedge_the_batch() {
    for retry_after in ["inf", "1e20", "Wed, 21 Oct 2099 07:28:00 GMT"] {
        let (srv, _) = over(
            vlm_sim::SimConfig {
                error_429_rate: 0.5,
                retry_after: retry_after.into(),
                ..Default::default()
            },
            30,
        )
        .await;
        let id = srv.started_batch(&fields_json(), &cards(12)).await;
        let batch = srv.wait_finished(&id).await;
        assert_eq!(
            batch["state"], "completed",
            "Retry-After {retry_after}: {batch}"
        );
        assert_eq!(batch["counts"]["done"], 12);
        srv.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_off_and_refused_answers_fail_clearly_without_retries() {
    for (sim, code) in [
        (
            vlm_sim::SimConfig {
                truncate_rate: 1.0,
                ..Default::default()
            },
            "answer_truncated",
        ),
        (
            vlm_sim::SimConfig {
                refuse_rate: 1.0,
                ..Default::default()
            },
            "model_refused",
        ),
    ] {
        let (srv, url) = over(sim, 5).await;
        let id = srv.started_batch(&fields_json(), &cards(3)).await;
        let batch = srv.wait_finished(&id).await;
        assert_eq!(batch["counts"]["failed"], 3, "{batch}");
        let (_, errors) = srv.get(&format!("/api/batches/{id}/errors")).await;
        for e in errors.as_array().unwrap() {
            assert_eq!(e["error"]["code"], code, "{e}");
            assert_eq!(e["error"]["attempts"], 1, "not retried: {e}");
        }
        assert_eq!(sim_stats(&url).await["requests"], 3);
        srv.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_too_large_to_read_fails_the_attempt_with_memory_flat() {
    let (srv, _) = over(
        vlm_sim::SimConfig {
            oversized_answers: true,
            ..Default::default()
        },
        2,
    )
    .await;
    let id = srv.started_batch(&fields_json(), &cards(4)).await;
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["counts"]["failed"], 4, "{batch}");
    let (_, errors) = srv.get(&format!("/api/batches/{id}/errors")).await;
    let e = &errors[0]["error"];
    assert_eq!(e["code"], "unusable_answer", "{e}");
    assert!(e["message"].as_str().unwrap().contains("4 MiB"), "{e}");
    assert_eq!(e["attempts"], 2);
    assert!(peak_rss_mib() < 300, "peak RSS {} MiB", peak_rss_mib());
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_refuses_max_tokens_is_asked_with_max_completion_tokens_once() {
    let (srv, url) = over(
        vlm_sim::SimConfig {
            reasoning_model: true,
            ..Default::default()
        },
        1,
    )
    .await;
    let id = srv.started_batch(&fields_json(), &cards(6)).await;
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed", "{batch}");
    let stats = sim_stats(&url).await;
    // The first request (or the few in flight with it) learned it; the
    // rest went out right.
    let refused = stats["invalid"].as_u64().unwrap();
    assert!((1..=6).contains(&refused), "{stats}");
    assert_eq!(stats["completed"], 6, "{stats}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn numbers_and_dates_are_read_as_written_or_flagged() {
    let answer = json!({
        "price": "3,50", "total": "1.234,5", "amount": "1,234", "count": "1,952",
        "born": "12 March 1931", "dated": "12.3.1931", "when": "3/4/1931",
    });
    let (srv, _) = over(
        vlm_sim::SimConfig {
            fixed_answer: answer.as_object().cloned(),
            ..Default::default()
        },
        1,
    )
    .await;
    let fields = json!([
        {"name": "price", "type": "number"}, {"name": "total", "type": "number"},
        {"name": "amount", "type": "number"}, {"name": "count", "type": "integer"},
        {"name": "born", "type": "date"}, {"name": "dated", "type": "date"},
        {"name": "when", "type": "date"},
    ]);
    let id = srv.started_batch(&fields, &cards(1)).await;
    srv.wait_finished(&id).await;
    let rows = srv.results(&id).await;
    let row = &rows[0];
    assert_eq!(row["state"], "done", "{row}");
    assert_eq!(
        row["result"],
        json!({"price": 3.5, "total": 1234.5, "amount": "1,234", "count": 1952,
               "born": "1931-03-12", "dated": "1931-03-12", "when": "3/4/1931"})
    );
    let flagged: Vec<(&str, &str)> = row["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        flagged,
        [("amount", "invalid_value"), ("when", "invalid_value")]
    );
    srv.stop().await;
}
