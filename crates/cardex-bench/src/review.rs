//! The review workspace at scale (DESIGN §12): how long the server takes
//! to answer the review queue and a card's detail in a 10,000-card batch,
//! with a tenth of its cards reviewed.

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

use crate::Row;
use crate::runner::{Sim, loaded_batch, run_batch};

/// Cards in the batch.
const CARDS: usize = 10_000;
/// Requests timed of each kind.
const SAMPLES: usize = 300;

pub async fn answer_times() -> anyhow::Result<Vec<Row>> {
    let sim = Sim::start(256, 0)?;
    let server = sim.server()?;
    let client = reqwest::Client::new();
    let id = loaded_batch(&server, &client, CARDS).await?;
    run_batch(&server, &client, &id).await?;
    let api = format!("{}/api/batches/{id}", server.base);

    // A tenth of the cards reviewed, some corrected.
    let mut all: Vec<i64> = Vec::with_capacity(CARDS);
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{api}/review-queue?filter=all&limit=500");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page: Value = client
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        all.extend(
            page["cards"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["card_id"].as_i64()),
        );
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    anyhow::ensure!(all.len() == CARDS, "the queue holds {} cards", all.len());
    for (i, card) in all.iter().step_by(10).enumerate() {
        let body = if i % 3 == 0 {
            json!({"status": "verified", "corrections": {"title": format!("checked {i}")}})
        } else {
            json!({"status": if i % 2 == 0 { "verified" } else { "needs_attention" }})
        };
        client
            .put(format!("{api}/cards/{card}/review"))
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
    }

    // Queue pages from all over the queue (their `after` taken from a
    // walk of the default filter), and cards picked at random.
    let mut cursors = vec![None];
    let mut after: Option<String> = None;
    while cursors.len() < 40 {
        let mut url = format!("{api}/review-queue?limit=200");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let page: Value = client.get(url).send().await?.json().await?;
        match page["next"].as_str() {
            Some(n) => {
                after = Some(n.to_owned());
                cursors.push(after.clone());
            }
            None => break,
        }
    }
    let mut queue = Vec::with_capacity(SAMPLES);
    let mut detail = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let mut url = format!("{api}/review-queue?limit=50");
        if let Some(Some(a)) = cursors.get(i % cursors.len()) {
            url.push_str(&format!("&after={a}"));
        }
        queue.push(timed(&client, &url).await?);
        let card = all[rand::rng().random_range(0..all.len())];
        detail.push(timed(&client, &format!("{api}/cards/{card}")).await?);
    }
    Ok(vec![
        row("review-queue page of 50, 10,000-card batch", &mut queue),
        row("card detail for review, 10,000-card batch", &mut detail),
    ])
}

async fn timed(client: &reqwest::Client, url: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok(started.elapsed())
}

fn row(what: &str, times: &mut [Duration]) -> Row {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let (p50, p95) = (at(0.5), at(0.95));
    Row {
        what: what.to_owned(),
        figure: format!(
            "p50 {:.1} ms, p95 {:.1} ms ({} requests)",
            p50.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3,
            times.len()
        ),
        target: "≤ 20 ms at p95".into(),
        ok: Some(p95 <= Duration::from_millis(20)),
    }
}
