//! Test harness: the real server on 127.0.0.1:0 over a data dir in a temp
//! folder, a client, image fixtures and a way to see that nothing changed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use cardex_server::{AppState, ServerConfig};
pub use cardex_testkit::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub data: tempfile::TempDir,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_config(ServerConfig::default()).await
    }

    pub async fn with_config(config: ServerConfig) -> Self {
        Self::launch(tempfile::tempdir().unwrap(), config).await
    }

    /// The real server over the data dir `data`.
    pub async fn launch(data: tempfile::TempDir, config: ServerConfig) -> Self {
        let store: cardex_store::SharedStore =
            std::sync::Arc::new(cardex_store::SqliteStore::open(data.path()).await.unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let state = AppState::new(store, config).unwrap();
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            cardex_server::serve(listener, state, shutdown)
                .await
                .unwrap();
        });
        Self {
            base,
            client: reqwest::Client::new(),
            data,
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.client.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.client.post(self.url(path)).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.client.put(self.url(path)).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(self.client.delete(self.url(path))).await
    }

    /// Creates a batch and returns its JSON.
    pub async fn create_batch(&self, name: &str) -> Value {
        let (status, batch) = self.post("/api/batches", json!({"name": name})).await;
        assert_eq!(status, 201, "{batch}");
        batch
    }

    /// An open batch named `target` with one card (`good.png`) and
    /// [`fields_json`]; returns its id.
    pub async fn open_batch(&self) -> String {
        let id = self.create_batch("target").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, up) = self.upload(&id, &[("good.png", png(1))]).await;
        assert_eq!(s, 200, "{up}");
        let (s, _) = self
            .put(&format!("/api/batches/{id}/fields"), fields_json())
            .await;
        assert_eq!(s, 200);
        id
    }

    /// Uploads files as parts named `files`.
    pub async fn upload(&self, batch_id: &str, files: &[(&str, Vec<u8>)]) -> (u16, Value) {
        let parts: Vec<Part> = files
            .iter()
            .map(|(name, bytes)| Part::file("files", name, bytes.clone()))
            .collect();
        self.upload_raw(batch_id, &parts).await
    }

    /// Uploads hand-built multipart parts, so tests can send what no
    /// well-behaved client would (NUL in names, odd part names).
    pub async fn upload_raw(&self, batch_id: &str, parts: &[Part]) -> (u16, Value) {
        let (content_type, body) = multipart_body(parts);
        send(
            self.client
                .post(self.url(&format!("/api/batches/{batch_id}/images")))
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// Every file under the data dir except the database, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.data.path(), self.data.path(), &mut out);
        // The database, the data dir's lock and its reserve are not card files.
        out.retain(|p| !p.starts_with("cardex.db") && p != "cardex.lock" && p != ".reserve");
        out.sort();
        out
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.data.path().join(rel)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

/// Peak resident memory of this process so far (nextest runs each test in
/// a process of its own).
pub fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Asserts the error envelope and its code.
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

pub fn fields_json() -> Value {
    json!([
        {"name": "title", "description": "The book's title", "type": "text", "active": true},
        {"name": "year", "description": "Year of publication", "type": "integer", "active": true},
        {"name": "notes", "description": "", "type": "text", "active": false}
    ])
}

/// A simulator on 127.0.0.1:0; returns its `/v1` base URL.
pub async fn start_sim(config: vlm_sim::SimConfig) -> String {
    start_sim_with_stats(config).await.0
}

/// A simulator on 127.0.0.1:0 whose counters (and last images) the test
/// can read; returns its `/v1` base URL and the counters.
pub async fn start_sim_with_stats(
    config: vlm_sim::SimConfig,
) -> (String, std::sync::Arc<vlm_sim::Stats>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (router, stats) = vlm_sim::router(config);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, stats)
}

/// Server settings for a simulator at `url`, with quick retries.
pub fn sim_config(url: &str) -> ServerConfig {
    let mut engine = cardex_server::EngineConfig::new(url, "sim-vlm");
    engine.request_timeout = std::time::Duration::from_secs(5);
    let mut runner = cardex_runner::RunnerConfig::default();
    runner.retry.first_delay = std::time::Duration::from_millis(5);
    runner.retry.max_delay = std::time::Duration::from_millis(50);
    ServerConfig {
        vlm: Some(engine),
        runner,
        ..Default::default()
    }
}

/// Server settings for a fresh simulator with `faults`, where each card gets
/// one attempt: a fault fails the card at once.
pub async fn one_attempt_sim(faults: vlm_sim::SimConfig) -> ServerConfig {
    let mut config = sim_config(&start_sim(faults).await);
    config.runner.retry.max_attempts = 1;
    config
}

/// Server settings for a fresh simulator with `slots` slots of `latency`
/// each and a request concurrency fixed at `slots`, so the simulator sets
/// the pace (for tests that time a run or stop it midway).
pub async fn paced_sim(slots: usize, latency: Duration) -> ServerConfig {
    let sim = start_sim(vlm_sim::SimConfig {
        slots,
        latency,
        ..Default::default()
    })
    .await;
    let mut config = sim_config(&sim);
    config.vlm.as_mut().unwrap().concurrency = Some(slots);
    config
}

impl TestServer {
    /// Stops the server and starts a new one over the same data dir.
    pub async fn restart(self, config: ServerConfig) -> Self {
        self.stop.cancel();
        self.task.await.unwrap();
        Self::launch(self.data, config).await
    }

    /// Creates a batch with `fields` and uploads `files` (name, bytes).
    pub async fn loaded_batch(&self, fields: &Value, files: &[(String, Vec<u8>)]) -> String {
        let id = self.create_batch("run").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (s, b) = self
            .put(&format!("/api/batches/{id}/fields"), fields.clone())
            .await;
        assert_eq!(s, 200, "{b}");
        for chunk in files.chunks(50) {
            let parts: Vec<(&str, Vec<u8>)> =
                chunk.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
            let (s, b) = self.upload(&id, &parts).await;
            assert_eq!(s, 200, "{b}");
        }
        id
    }

    /// Starts batch `id`.
    pub async fn start_batch(&self, id: &str) {
        let (s, b) = self
            .post(&format!("/api/batches/{id}/start"), json!(null))
            .await;
        assert_eq!(s, 200, "{b}");
    }

    /// Creates a batch with `fields`, uploads `files` (name, bytes) and starts it.
    pub async fn started_batch(&self, fields: &Value, files: &[(String, Vec<u8>)]) -> String {
        let id = self.loaded_batch(fields, files).await;
        self.start_batch(&id).await;
        id
    }

    /// Polls the batch until `done(batch)` holds, or panics after 60 s.
    pub async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (_, b) = self.get(&format!("/api/batches/{id}")).await;
            if done(&b) {
                return b;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {b}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
    }

    /// Waits until the batch has finished (completed or with errors).
    pub async fn wait_finished(&self, id: &str) -> Value {
        self.wait_for(id, "the batch to finish", |b| {
            b["state"] == "completed" || b["state"] == "completed_with_errors"
        })
        .await
    }

    /// The results exported with `query` (`format=csv&include=…`), as
    /// text.
    pub async fn export(&self, id: &str, query: &str) -> String {
        let res = reqwest::get(self.url(&format!("/api/batches/{id}/results?{query}")))
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{query}");
        res.text().await.unwrap()
    }

    /// The results as JSON rows.
    pub async fn results(&self, id: &str) -> Vec<Value> {
        let (s, rows) = self
            .get(&format!("/api/batches/{id}/results?format=json"))
            .await;
        assert_eq!(s, 200, "{rows}");
        rows.as_array().unwrap().clone()
    }
}

/// Fields of every type, for runner tests.
pub fn all_types() -> Value {
    json!([
        {"name": "title", "type": "text", "description": "The title"},
        {"name": "year", "type": "integer"},
        {"name": "price", "type": "number"},
        {"name": "signed", "type": "boolean"},
        {"name": "subjects", "type": "list"},
        {"name": "written", "type": "date"}
    ])
}

/// The (name, JSON type) pairs the simulator sees for `fields`.
pub fn sim_fields(fields: &Value) -> Vec<(String, String)> {
    fields
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["active"] != false)
        .map(|f| {
            let ty = match f["type"].as_str().unwrap() {
                "integer" => "integer",
                "number" => "number",
                "boolean" => "boolean",
                "list" => "array",
                _ => "string",
            };
            (f["name"].as_str().unwrap().to_owned(), ty.to_owned())
        })
        .collect()
}

/// `n` distinct small JPEG cards (sent to the model unchanged).
pub fn cards(n: u32) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| (format!("card-{i:04}.jpg"), jpeg(1000 + i)))
        .collect()
}

// The progress stream (WebSocket).

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(srv: &TestServer, id: &str, since: Option<i64>) -> Ws {
    let mut url = format!(
        "{}/api/batches/{id}/events",
        srv.base.replace("http://", "ws://")
    );
    if let Some(s) = since {
        url.push_str(&format!("?since={s}"));
    }
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next JSON event, or None when the stream ends or stays quiet for 10 s.
pub async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("websocket error: {e}"),
        }
    }
}

/// Durable events (everything but progress) until a `state` event to a
/// finished state, or `limit` durable events.
pub async fn durable_until_finished(ws: &mut Ws, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(e) = next(ws).await else { break };
        if e["type"] == "progress" {
            continue;
        }
        let finished =
            e["type"] == "state" && (e["to"] == "completed" || e["to"] == "completed_with_errors");
        out.push(e);
        if finished {
            break;
        }
    }
    out
}
