//! The OpenAPI document covers every route, the docs work offline, and the
//! optional bearer token guards every /api route.

mod common;

use cardex_server::ServerConfig;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn openapi_documents_every_contract_route() {
    let srv = TestServer::start().await;
    let (s, doc) = srv.get("/api/openapi.json").await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let expected = [
        ("get", "/api/health"),
        ("get", "/api/batches"),
        ("post", "/api/batches"),
        ("get", "/api/batches/{id}"),
        ("delete", "/api/batches/{id}"),
        ("post", "/api/batches/{id}/images"),
        ("get", "/api/batches/{id}/images"),
        ("delete", "/api/batches/{id}/images/{card_id}"),
        ("get", "/api/batches/{id}/fields"),
        ("put", "/api/batches/{id}/fields"),
        ("get", "/api/batches/{id}/prompt"),
        ("post", "/api/batches/{id}/start"),
        ("get", "/api/templates"),
        ("post", "/api/templates"),
        ("get", "/api/templates/{id}"),
        ("put", "/api/templates/{id}"),
        ("delete", "/api/templates/{id}"),
        ("post", "/api/prompt-preview"),
        ("get", "/api/engines"),
        ("post", "/api/batches/{id}/pause"),
        ("post", "/api/batches/{id}/resume"),
        ("post", "/api/batches/{id}/cancel"),
        ("post", "/api/batches/{id}/retry-failed"),
        ("post", "/api/batches/{id}/test"),
        ("get", "/api/batches/{id}/results"),
        ("get", "/api/batches/{id}/errors"),
        ("get", "/api/batches/{id}/events"),
    ];
    for (method, path) in expected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2') || k == "101"),
            "{method} {path}: no success response"
        );
        if method == "post" || method == "put" {
            let bodiless = ["/start", "/pause", "/resume", "/cancel", "/retry-failed"];
            if bodiless.iter().any(|b| path.ends_with(b)) {
                continue;
            }
            assert!(
                op["requestBody"].is_object(),
                "{method} {path}: no request body schema"
            );
        }
    }
    for schema in [
        "Batch",
        "Card",
        "Field",
        "Template",
        "Prompt",
        "ErrorBody",
        "UploadResponse",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docs_are_served_without_any_cdn() {
    let srv = TestServer::start().await;
    let res = srv.client.get(srv.url("/api/docs/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    for needle in ["https://", "http://", "//cdn", "unpkg", "jsdelivr"] {
        assert!(
            !html.contains(needle),
            "docs page loads something remote: {needle}"
        );
    }
    // The assets it names come from this server.
    let js = srv
        .client
        .get(srv.url("/api/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    let init = srv
        .client
        .get(srv.url("/api/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert!(init.text().await.unwrap().contains("/api/openapi.json"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_every_api_route() {
    let srv = TestServer::with_config(ServerConfig {
        api_token: Some("s3cret-token".into()),
        ..Default::default()
    })
    .await;
    let (_, doc) = {
        let res = srv
            .client
            .get(srv.url("/api/openapi.json"))
            .bearer_auth("s3cret-token")
            .send()
            .await
            .unwrap();
        (res.status(), res.json::<serde_json::Value>().await.unwrap())
    };
    // Every documented route, with its path parameters filled in.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let url = srv.url(&path.replace("{id}", "aaaaaaaa").replace("{card_id}", "1"));
        for method in ops.as_object().unwrap().keys() {
            if path == "/api/health" {
                continue; // the liveness probe is open (DESIGN §17)
            }
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (s, body) = send(srv.client.request(m.clone(), &url)).await;
            assert_error(s, &body, 401, "unauthorized");
            let (s, body) = send(srv.client.request(m, &url).bearer_auth("wrong")).await;
            assert_error(s, &body, 401, "unauthorized");
        }
    }
    for extra in ["/api/openapi.json", "/api/docs/", "/api/unknown"] {
        let (s, _) = send(srv.client.get(srv.url(extra))).await;
        assert_eq!(s, 401, "{extra}");
    }
    // The right token works, and nothing was created by the refused calls.
    let (s, list) = send(
        srv.client
            .get(srv.url("/api/batches"))
            .bearer_auth("s3cret-token"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list, json!([]));
    let (s, _) = send(
        srv.client
            .post(srv.url("/api/batches"))
            .bearer_auth("s3cret-token")
            .json(&json!({"name": "ok"})),
    )
    .await;
    assert_eq!(s, 201);
    // Pages outside /api (the web UI) need no token.
    let (s, _) = send(srv.client.get(srv.url("/"))).await;
    assert_eq!(s, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_the_progress_websocket() {
    use tokio_tungstenite::tungstenite::{Error, Message};
    let srv = TestServer::with_config(ServerConfig {
        api_token: Some("s3cret-token".into()),
        ..Default::default()
    })
    .await;
    let (s, batch) = send(
        srv.client
            .post(srv.url("/api/batches"))
            .bearer_auth("s3cret-token")
            .json(&json!({"name": "watched"})),
    )
    .await;
    assert_eq!(s, 201, "{batch}");
    let ws = srv.base.replacen("http://", "ws://", 1);
    let events = format!("{ws}/api/batches/{}/events", batch["id"].as_str().unwrap());
    for url in [
        events.clone(),
        format!("{events}?access_token=wrong"),
        format!("{events}?access_token="),
    ] {
        match tokio_tungstenite::connect_async(&url).await {
            Err(Error::Http(res)) => assert_eq!(res.status(), 401, "{url}"),
            other => panic!("{url}: expected a 401, got {other:?}"),
        }
    }
    // A wrong header token is refused even with the right query token.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("{events}?access_token=s3cret-token"),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected a 401, got {other:?}"),
    }
    // With the token, the stream opens and sends the snapshot.
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{events}?access_token=s3cret-token"))
            .await
            .unwrap();
    let first = futures_util::StreamExt::next(&mut socket)
        .await
        .unwrap()
        .unwrap();
    let Message::Text(text) = first else {
        panic!("expected a text frame, got {first:?}")
    };
    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(event["type"], "snapshot", "{event}");
    srv.stop().await;
}
