//! Quality signals from a real server run with the simulator (DESIGN §13):
//! confidence per value from token log-probabilities, `low_confidence` on
//! values the model made up, `repetition` on values that loop, no
//! confidence from a server that refuses `logprobs`, and the batch's
//! quality summary.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn values_carry_confidence_and_made_up_or_looping_ones_are_flagged() {
    let sim = start_sim(vlm_sim::SimConfig {
        hallucinate_rate: 0.3,
        repeat_rate: 0.2,
        ..Default::default()
    })
    .await;
    let srv = TestServer::with_config(sim_config(&sim)).await;
    let id = srv.started_batch(&fields_json(), &cards(60)).await;
    srv.wait_finished(&id).await;
    let stats: Value = reqwest::get(format!("{}/sim/stats", sim.trim_end_matches("/v1")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let invented: Vec<(String, String)> = stats["inventions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["field"].as_str().unwrap().to_owned(),
                i["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(invented.len() >= 5, "{} inventions", invented.len());

    let rows = srv.results(&id).await;
    let (mut caught, mut false_alarms, mut values) = (0, 0, 0);
    let mut looping = 0;
    for row in &rows {
        assert_eq!(row["state"], "done", "{row}");
        for (field, value) in row["result"].as_object().unwrap() {
            let c = &row["confidence"][field];
            if value.is_null() {
                assert!(c.is_null(), "{row}");
                continue;
            }
            assert!(
                c.as_f64().is_some_and(|c| (0.0..=1.0).contains(&c)),
                "{field}: {row}"
            );
            let low = row["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == "low_confidence" && f["field"] == field.as_str());
            let made_up = invented
                .iter()
                .any(|(f, v)| f == field && value == v.as_str());
            values += 1;
            match (made_up, low) {
                (true, true) => caught += 1,
                (false, true) => false_alarms += 1,
                _ => {}
            }
        }
        if row["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "repetition")
        {
            looping += 1;
        }
    }
    assert_eq!(
        caught,
        invented.len(),
        "every made-up value is flagged low_confidence"
    );
    assert_eq!(false_alarms, 0, "of {values} values");
    assert!(looping >= 3, "{looping} looping cards flagged");

    let (_, batch) = srv.get(&format!("/api/batches/{id}")).await;
    let q = &batch["quality"];
    assert_eq!(q["empty_cards"], 0, "{q}");
    assert!(
        q["flagged_cards"].as_u64().unwrap() >= invented.len() as u64,
        "{q}"
    );
    assert_eq!(q["fill_rate"]["title"], 1.0, "{q}");
    assert!(
        q["mean_confidence"]["title"]
            .as_f64()
            .is_some_and(|c| c > 0.6),
        "{q}"
    );
    assert!(q["warning"].is_null(), "{q}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_refusing_logprobs_is_asked_again_and_values_have_no_confidence() {
    let sim = start_sim(vlm_sim::SimConfig {
        reject_logprobs: true,
        ..Default::default()
    })
    .await;
    let mut config = sim_config(&sim);
    config.runner.retry.max_attempts = 1;
    let srv = TestServer::with_config(config).await;
    let id = srv.started_batch(&fields_json(), &cards(5)).await;
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed", "{batch}");
    for row in srv.results(&id).await {
        assert!(row["confidence"]["title"].is_null(), "{row}");
        assert!(row["result"]["title"].is_string(), "{row}");
    }
    assert!(
        batch["quality"]["mean_confidence"]["title"].is_null(),
        "{batch}"
    );
    srv.stop().await;
}
