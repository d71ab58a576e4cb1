//! Web security (DESIGN §17) on the real server: DNS rebinding and
//! cross-site requests are refused with or without a token, WebSocket
//! handshakes included; the server's own pages, and a reverse proxy once
//! configured, keep working; the liveness probe needs no token; a base64
//! token works on the live stream as the UI sends it.

mod common;

use cardex_server::{ServerConfig, WebAccess};
use common::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};

/// A WebSocket handshake to `url` with extra headers; the status it got.
async fn handshake(url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => 101,
        Err(Error::Http(res)) => res.status().as_u16(),
        Err(e) => panic!("{url}: {e}"),
    }
}

fn events_url(srv: &TestServer, id: &str) -> String {
    format!(
        "{}/api/batches/{id}/events",
        srv.base.replace("http://", "ws://")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn rebinding_and_cross_site_requests_are_refused() {
    let srv = TestServer::start().await;
    let id = srv.open_batch().await;
    let before = srv.get("/api/batches").await.1;

    // DNS rebinding: the attacker's name resolves to 127.0.0.1.
    for path in ["/api/batches", "/api/health", "/", "/api/openapi.json"] {
        let (s, body) = send(
            srv.client
                .get(srv.url(path))
                .header("host", "attacker.example:8080"),
        )
        .await;
        assert_error(s, &body, 403, "host_not_allowed");
    }
    // A page of another site posting to us (a form or fetch carries its Origin).
    for (method, path) in [
        ("POST", "/api/batches".to_owned()),
        ("POST", format!("/api/batches/{id}/start")),
        ("DELETE", format!("/api/batches/{id}")),
    ] {
        let req = srv
            .client
            .request(method.parse().unwrap(), srv.url(&path))
            .header("origin", "http://attacker.example")
            .json(&json!({"name": "evil"}));
        let (s, body) = send(req).await;
        assert_error(s, &body, 403, "origin_not_allowed");
    }
    let (s, body) = send(
        srv.client
            .post(srv.url("/api/batches"))
            .header("origin", "null")
            .json(&json!({"name": "sandboxed"})),
    )
    .await;
    assert_error(s, &body, 403, "origin_not_allowed");
    assert_eq!(srv.get("/api/batches").await.1, before, "nothing changed");

    // The live stream: a foreign origin or host cannot open it.
    let url = events_url(&srv, &id);
    assert_eq!(
        handshake(&url, &[("origin", "http://attacker.example")]).await,
        403
    );
    assert_eq!(handshake(&url, &[("host", "attacker.example")]).await, 403);

    // The server's own pages: same origin, by name or address.
    let port = srv.base.rsplit(':').next().unwrap().to_owned();
    for own in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let host = own.trim_start_matches("http://").to_owned();
        let (s, body) = send(
            srv.client
                .post(srv.url("/api/batches"))
                .header("host", &host)
                .header("origin", &own)
                .json(&json!({"name": "mine"})),
        )
        .await;
        assert_eq!(s, 201, "{own}: {body}");
        assert_eq!(
            handshake(&url, &[("host", &host), ("origin", &own)]).await,
            101
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reverse_proxy_works_once_configured() {
    let srv = TestServer::with_config(ServerConfig {
        web: WebAccess::new(
            &["cards.example.org".into()],
            &["https://cards.example.org".into()],
        ),
        ..Default::default()
    })
    .await;
    // The proxy passes the public name on as Host…
    let (s, body) = send(
        srv.client
            .post(srv.url("/api/batches"))
            .header("host", "cards.example.org")
            .header("origin", "https://cards.example.org")
            .json(&json!({"name": "proxied"})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    // …or its own upstream address; the page's origin is the public one.
    let id = body["id"].as_str().unwrap().to_owned();
    let url = events_url(&srv, &id);
    assert_eq!(
        handshake(&url, &[("origin", "https://cards.example.org")]).await,
        101
    );
    // Still nobody else.
    let (s, body) = send(
        srv.client
            .get(srv.url("/api/batches"))
            .header("host", "other.example.org"),
    )
    .await;
    assert_error(s, &body, 403, "host_not_allowed");
    assert_eq!(
        handshake(&url, &[("origin", "https://evil.example.org")]).await,
        403
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_is_open_and_a_base64_token_works_on_the_live_stream() {
    // A token as `openssl rand -base64` makes them: `+`, `/` and `=`.
    let token = "q+Z/xw8=ab/c+d==";
    let srv = TestServer::with_config(ServerConfig {
        api_token: Some(token.into()),
        ..Default::default()
    })
    .await;
    let (s, body) = srv.get("/api/health").await;
    assert_eq!(s, 200, "liveness needs no token: {body}");
    assert_eq!(body["status"], "ok");
    let (s, body) = srv.get("/api/batches").await;
    assert_error(s, &body, 401, "unauthorized");

    let (s, batch) = send(
        srv.client
            .post(srv.url("/api/batches"))
            .bearer_auth(token)
            .json(&json!({"name": "watched"})),
    )
    .await;
    assert_eq!(s, 201, "{batch}");
    // The query the UI's eventsUrl builds (URLSearchParams encoding).
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("since", "0")
        .append_pair("access_token", token)
        .finish();
    assert!(query.contains("%2B") && query.contains("%2F") && query.contains("%3D"));
    let url = format!(
        "{}?{query}",
        events_url(&srv, batch["id"].as_str().unwrap())
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let first = futures_util::StreamExt::next(&mut socket)
        .await
        .unwrap()
        .unwrap();
    let Message::Text(text) = first else {
        panic!("expected a text frame, got {first:?}")
    };
    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(event["type"], "snapshot", "{event}");
    // The undecoded form is not the token.
    let raw = format!(
        "{}?access_token={token}",
        events_url(&srv, batch["id"].as_str().unwrap())
    );
    assert_eq!(handshake(&raw, &[]).await, 401);
    srv.stop().await;
}
