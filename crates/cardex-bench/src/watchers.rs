//! WebSocket load: the runner's throughput with 100 watchers on the batch,
//! one of which never reads (a 4 KiB receive buffer it never drains),
//! against the same batch with none; and the server's peak memory.

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::Row;
use crate::runner::{Sim, loaded_batch, run_batch};
use crate::server::Server;

const WATCHERS: usize = 100;

/// Batch times with and without watchers on one server, the simulator
/// setting the pace: `slots` slots of `latency_ms`, concurrency fixed at
/// `slots` so the adaptive limit's search does not blur the comparison.
pub async fn cost(slots: usize, latency_ms: u64, cards: usize) -> anyhow::Result<Row> {
    let sim = Sim::start(slots, latency_ms)?;
    let concurrency = slots.to_string();
    let server = Server::start(&[
        "--vlm-url",
        &sim.base,
        "--vlm-model",
        "sim-vlm",
        "--vlm-concurrency",
        &concurrency,
        // What watchers cost, not the cross-check (`runner::cross_check`).
        "--cross-check",
        "off",
    ])?;
    let client = reqwest::Client::new();

    let alone = loaded_batch(&server, &client, cards).await?;
    let unwatched = run_batch(&server, &client, &alone).await?;

    let id = loaded_batch(&server, &client, cards).await?;
    let url = format!("{}/api/batches/{id}/events", server.base).replace("http://", "ws://");
    let mut readers = Vec::new();
    for _ in 0..WATCHERS - 1 {
        let (ws, _) = tokio_tungstenite::connect_async(&url).await?;
        readers.push(tokio::spawn(count_cards(ws)));
    }
    let stuck = never_reads(&server, &url).await?;
    let watched = run_batch(&server, &client, &id).await?;
    for reader in readers {
        let seen = reader.await??;
        anyhow::ensure!(seen == cards, "a watcher saw {seen} of {cards} cards");
    }
    drop(stuck);

    let (without, with) = (cards as f64 / unwatched, cards as f64 / watched);
    let change = (with / without - 1.0) * 100.0;
    Ok(Row {
        what: format!(
            "runner throughput with {WATCHERS} watchers (one never reading) against none, {cards} cards, {slots} slots × {latency_ms} ms; peak server RSS {:.0} MiB",
            server.peak_rss_mib()?
        ),
        figure: format!("{with:.0} against {without:.0} cards/s ({change:+.1}%)"),
        target: "within 5%".into(),
        ok: Some(with >= without * 0.95),
    })
}

/// Reads the progress stream until the batch completes; returns the
/// number of `card_done` events.
async fn count_cards(
    mut ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> anyhow::Result<usize> {
    let mut cards = 0;
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        // Matched as text: the watchers share the server's two cores, so
        // they parse only what they must.
        if text.contains(r#""type":"card_done""#) {
            cards += 1;
        } else if text.contains(r#""type":"state""#) {
            let event: Value = serde_json::from_str(&text)?;
            if event["to"] == "completed" {
                return Ok(cards);
            }
        }
    }
    anyhow::bail!("the stream ended before the batch completed")
}

/// A watcher with a tiny receive window that never reads.
async fn never_reads(server: &Server, url: &str) -> anyhow::Result<impl Sized> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let addr = server
        .base
        .trim_start_matches("http://")
        .parse()
        .context("the server's address")?;
    let stream = socket.connect(addr).await?;
    Ok(tokio_tungstenite::client_async(url, stream).await?.0)
}
