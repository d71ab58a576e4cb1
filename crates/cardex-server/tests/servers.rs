//! Several model servers for one engine (DESIGN §15): the cards spread over
//! them; one killed mid-batch costs no card, not even an attempt; once it
//! is back it is used again. `GET /api/engines` shows each server.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A simulator in a runtime of its own, so that killing it drops every
/// connection at once, as a crashed process would.
struct Replica {
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    stats: Arc<vlm_sim::Stats>,
}

impl Replica {
    /// Starts a simulator of `slots` × `latency` at `addr` (port 0: any).
    async fn start(addr: SocketAddr, slots: usize, latency: Duration) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (router, stats) = vlm_sim::router(vlm_sim::SimConfig {
            slots,
            latency,
            ..Default::default()
        });
        let (bound, listening) = tokio::sync::oneshot::channel();
        runtime.spawn(async move {
            // Reused at once after a kill, as a restarted server would.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket.bind(addr).unwrap();
            let listener = socket.listen(1024).unwrap();
            bound.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
        let addr = listening.await.unwrap();
        Self {
            addr,
            runtime,
            stats,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::Relaxed)
    }

    /// Stops the simulator the hard way: its connections close mid-answer.
    fn kill(self) -> SocketAddr {
        self.runtime.shutdown_background();
        self.addr
    }
}

/// The VLM engine's servers as `GET /api/engines` shows them.
async fn servers(srv: &TestServer) -> Vec<Value> {
    let (status, engines) = srv.get("/api/engines").await;
    assert_eq!(status, 200, "{engines}");
    let vlm = engines
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "vlm")
        .unwrap();
    vlm["servers"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_batch_costs_no_card_and_is_used_again_once_back() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let a = Replica::start(any, 4, Duration::from_millis(40)).await;
    let b = Replica::start(any, 4, Duration::from_millis(80)).await;
    let mut config = sim_config(&a.url());
    config.vlm.as_mut().unwrap().base_urls = vec![a.url(), b.url()];
    // One attempt a card: a failure that counted would fail the card.
    config.runner.retry.max_attempts = 1;
    let srv = TestServer::with_config(config).await;

    let listed = servers(&srv).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|s| s["health"] == "up" && s["reachable"] == true)
    );

    let fields = fields_json();
    let id = srv.started_batch(&fields, &cards(400)).await;
    srv.wait_for(&id, "cards read on both servers", |_| {
        a.requests() >= 20 && b.requests() >= 20
    })
    .await;
    let b_addr = b.kill();
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["state"], "completed", "{batch}");
    assert_eq!(batch["counts"]["done"], 400, "{batch}");
    assert_eq!(batch["counts"]["failed"], 0, "{batch}");

    let listed = servers(&srv).await;
    let (first, second) = (&listed[0], &listed[1]);
    assert_eq!(first["health"], "up", "{first}");
    assert_eq!(second["health"], "set_aside", "{second}");
    assert_eq!(second["reachable"], false, "{second}");
    assert!(second["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(second["completions"].as_u64().unwrap() >= 1, "{second}");
    // The kill reached cards in flight, and none of them failed for it.
    assert!(second["errors"].as_u64().unwrap() >= 1, "{second}");
    // Each result says which server read it.
    let (s, rows) = srv
        .get(&format!(
            "/api/batches/{id}/results?format=json&include=usage"
        ))
        .await;
    assert_eq!(s, 200, "{rows}");
    let endpoints: std::collections::HashSet<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["provenance"]["endpoint"].as_str().unwrap())
        .collect();
    let want: std::collections::HashSet<String> = [
        listed[0]["url"].as_str().unwrap().to_owned(),
        listed[1]["url"].as_str().unwrap().to_owned(),
    ]
    .into();
    assert_eq!(
        endpoints,
        want.iter().map(String::as_str).collect(),
        "{rows}"
    );

    // Back at the same address: found by the probes (`GET /api/engines`
    // only reports) and used again.
    let restarted = Instant::now();
    let b = Replica::start(b_addr, 4, Duration::from_millis(80)).await;
    while servers(&srv).await[1]["health"] != "up" {
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "the restarted server was not used again within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let id = srv.started_batch(&fields, &cards(200)).await;
    let batch = srv.wait_finished(&id).await;
    assert_eq!(batch["counts"]["done"], 200, "{batch}");
    assert!(b.requests() > 0, "the restarted server got no request");
    a.kill();
    b.kill();
}
