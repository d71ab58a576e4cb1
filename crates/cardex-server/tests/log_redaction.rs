//! Secrets never reach the log, at any level: the API token (as a bearer
//! header or the live stream's `access_token`, raw or percent-encoded) and
//! the model server's key. Its own test binary, because it installs a
//! process-wide subscriber at `trace`.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;

/// Everything the subscriber writes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_log_level_shows_a_secret() {
    let log = Captured::default();
    let writer = log.clone();
    // Everything at trace, but the test's own clients: they are not the server.
    let filter = "trace,tungstenite::handshake::client=off,reqwest=off,hyper_util::client=off";
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let token = "t0k+en/s3cret==";
    let key = "sk-model-key-9f8e7d";
    let sim = start_sim(vlm_sim::SimConfig::default()).await;
    let mut config = sim_config(&sim);
    config.api_token = Some(token.into());
    config.vlm.as_mut().unwrap().api_key = Some(key.into());
    let srv = TestServer::with_config(config).await;

    let (s, batch) = send(
        srv.client
            .post(srv.url("/api/batches"))
            .bearer_auth(token)
            .json(&json!({"name": "secret"})),
    )
    .await;
    assert_eq!(s, 201);
    let id = batch["id"].as_str().unwrap();
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("access_token", token)
        .finish();
    let url = format!(
        "{}/api/batches/{id}/events?{query}",
        srv.base.replace("http://", "ws://")
    );
    let (socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    drop(socket);
    // A refused one too: wrong tokens are logged no more than right ones.
    let _ = tokio_tungstenite::connect_async(format!("{url}x")).await;
    let (s, _) = send(srv.client.get(srv.url("/api/engines")).bearer_auth(token)).await;
    assert_eq!(s, 200);
    srv.stop().await;

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("/events"), "the requests were traced at all");
    for secret in [token, &query, "t0k%2Ben", key] {
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            leaks.is_empty(),
            "{secret:?} is in the log:\n{}",
            leaks.join("\n")
        );
    }
    assert!(text.contains("access_token=%3Credacted%3E"), "{text}");
}
