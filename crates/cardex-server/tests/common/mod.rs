//! Test harness: the real server on 127.0.0.1:0 over a data dir in a temp
//! folder, a client, image fixtures and a way to see that nothing changed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cardex_server::{AppState, ServerConfig};
pub use cardex_testkit::*;
use serde_json::{Value, json};
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
        let data = tempfile::tempdir().unwrap();
        let store = cardex_store::Store::open(data.path()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let state = AppState::new(store, config);
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
        out.retain(|p| !p.starts_with("cardex.db"));
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
