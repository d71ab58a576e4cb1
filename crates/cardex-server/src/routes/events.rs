//! `GET /api/batches/{id}/events?since=<seq>` (WebSocket): the progress
//! stream of DESIGN §4.
//!
//! On connect: subscribe first (so nothing published meanwhile is lost),
//! then send a `snapshot`, then, with `since`, every durable event after it
//! from the database (paged), then live events. Durable events carry a
//! per-batch `seq`; one already sent is never sent again. A watcher that
//! falls too far behind gets `reset` and should reconnect with `since`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::SinkExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use utoipa::IntoParams;

use super::batch_id;
use crate::error::ErrorBody;
use crate::extract::{PathParams, QueryParams};
use cardex_runner::hub::{Published, progress_body};

use crate::{ApiError, AppState};

/// Events replayed from the database per query.
const REPLAY_PAGE: i64 = 500;
/// Most queued events sent in one write.
const MAX_BURST: usize = 256;
/// A watcher that takes longer than this to accept one message (it stopped
/// reading) is disconnected, so it holds no task or buffer for long.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Query of the progress stream.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The last `seq` this client saw; events after it are replayed.
    pub since: Option<i64>,
    /// The API token, for browsers that cannot set headers on WebSockets
    /// (checked by the auth middleware; listed here for the document).
    #[allow(dead_code)]
    pub access_token: Option<String>,
}

/// The batch's progress stream (WebSocket upgrade).
#[utoipa::path(get, path = "/api/batches/{id}/events", tag = "batches",
    params(("id" = String, Path, description = "Batch id"), EventsQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket progress stream"),
        (status = 404, body = ErrorBody),
    ))]
pub(crate) async fn events(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<EventsQuery>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let id = batch_id(id)?;
    state.store.get_batch(&id).await?;
    let ws = ws.map_err(|r| ApiError::new(r.status(), "websocket_required", r.body_text()))?;
    Ok(ws.on_upgrade(move |socket| stream(state, id, q.since, socket)))
}

async fn stream(state: AppState, id: String, since: Option<i64>, mut socket: WebSocket) {
    if let Err(e) = run_stream(&state, &id, since, &mut socket).await {
        tracing::debug!(batch = %id, error = %e, "progress stream ended");
    }
    // A watcher that stopped reading does not get to hold the task here either.
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(Message::Close(None))).await;
}

async fn send(socket: &mut WebSocket, text: Utf8Bytes) -> Result<(), String> {
    send_all(socket, [text]).await
}

/// Sends `texts` with one flush, so a burst of events costs one write, not
/// one per event.
async fn send_all(
    socket: &mut WebSocket,
    texts: impl IntoIterator<Item = Utf8Bytes>,
) -> Result<(), String> {
    let written = async {
        for text in texts {
            socket.feed(Message::Text(text)).await?;
        }
        socket.flush().await
    };
    match tokio::time::timeout(SEND_TIMEOUT, written).await {
        Ok(sent) => sent.map_err(|e| e.to_string()),
        Err(_) => Err("the watcher stopped reading".into()),
    }
}

/// The next live events: one waited for, then whatever else is already
/// queued (up to [`MAX_BURST`]). Cancel-safe: its only wait is `recv`.
async fn next_burst(
    live: &mut broadcast::Receiver<Arc<Published>>,
) -> Result<Vec<Arc<Published>>, RecvError> {
    let mut burst = vec![live.recv().await?];
    while burst.len() < MAX_BURST {
        match live.try_recv() {
            Ok(published) => burst.push(published),
            Err(TryRecvError::Lagged(missed)) => return Err(RecvError::Lagged(missed)),
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        }
    }
    Ok(burst)
}

fn text(event: &Value) -> Utf8Bytes {
    event.to_string().into()
}

async fn run_stream(
    state: &AppState,
    id: &str,
    since: Option<i64>,
    socket: &mut WebSocket,
) -> Result<(), String> {
    let mut live = state.runner.hub().subscribe(id);
    let batch = state.store.get_batch(id).await.map_err(|e| e.to_string())?;
    let remaining = batch.counts.pending + batch.counts.processing;
    let rate = state.runner.hub().rate(id, remaining);
    let mut snapshot = progress_body(
        &batch,
        rate,
        state.runner.engines().concurrency(&batch.engine),
        state.runner.prices(),
    );
    snapshot["type"] = json!("snapshot");
    snapshot["seq"] = json!(batch.last_seq);
    snapshot["batch_id"] = json!(id);
    snapshot["last_seq"] = json!(batch.last_seq);
    send(socket, text(&snapshot)).await?;

    // Replay what the client missed, up to the snapshot, from the database.
    let mut sent = batch.last_seq;
    if let Some(mut after) = since {
        while after < batch.last_seq {
            let page = state
                .store
                .events_after(id, after, REPLAY_PAGE)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            let missed: Vec<Utf8Bytes> = page
                .iter()
                .filter(|e| e.seq <= batch.last_seq)
                .map(|e| text(&e.payload))
                .collect();
            send_all(socket, missed).await?;
        }
    }

    loop {
        tokio::select! {
            _ = state.stop.cancelled() => return Ok(()),
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(_)) => {}
            },
            burst = next_burst(&mut live) => match burst {
                Ok(events) => {
                    let new: Vec<Utf8Bytes> = events
                        .iter()
                        .filter(|p| forward(&p.event, &mut sent))
                        // The hub's text is JSON it made from a String: always UTF-8.
                        .filter_map(|p| Utf8Bytes::try_from(p.text.clone()).ok())
                        .collect();
                    send_all(socket, new).await?;
                }
                Err(RecvError::Lagged(missed)) => {
                    let reset = json!({"type": "reset", "seq": sent, "batch_id": id, "missed": missed,
                        "message": "too far behind; reconnect with since=<last seq>"});
                    let _ = send(socket, text(&reset)).await;
                    return Ok(());
                }
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// Whether a live event goes out: durable events only once and in order
/// (they may also have come from the replay); `progress` unless it is
/// older than an event already sent. A `progress` event's counts are read
/// before it is published, so one read before a card's commit can arrive
/// after that card's event: its counts would move the watcher backwards.
fn forward(event: &Value, sent: &mut i64) -> bool {
    let seq = event["seq"].as_i64().unwrap_or(0);
    if event["type"] == "progress" {
        return seq >= *sent;
    }
    if seq <= *sent {
        return false;
    }
    *sent = seq;
    true
}
