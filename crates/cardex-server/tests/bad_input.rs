//! Every bad input of DESIGN §6 that reaches the foundation's routes gets a
//! clear 4xx in the error envelope and changes nothing else: same rows, same
//! files, same batch.

mod common;

use cardex_server::{Limits, ServerConfig};
use common::*;
use serde_json::{Value, json};

/// A server with one open batch holding one card, and its state to compare.
struct Fixture {
    srv: TestServer,
    id: String,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_limits(Limits::default()).await
    }

    async fn with_limits(limits: Limits) -> Self {
        let srv = TestServer::with_config(ServerConfig {
            limits,
            ..Default::default()
        })
        .await;
        let id = srv.open_batch().await;
        Self { srv, id }
    }

    /// Everything observable: the batch, its cards, the batch list, templates, files.
    async fn snapshot(&self) -> (Value, Value, Value, Value, Vec<String>) {
        (
            self.srv.get(&format!("/api/batches/{}", self.id)).await.1,
            self.srv
                .get(&format!("/api/batches/{}/images", self.id))
                .await
                .1,
            self.srv.get("/api/batches").await.1,
            self.srv.get("/api/templates").await.1,
            self.srv.files(),
        )
    }

    /// Sends `request`, asserts its error, and that the snapshot is unchanged.
    /// (`request` is a future, so nothing is sent before the first snapshot.)
    async fn refused(
        &self,
        want_status: u16,
        want_code: &str,
        request: impl std::future::Future<Output = (u16, Value)>,
    ) -> Value {
        let before = self.snapshot().await;
        let (status, body) = request.await;
        assert_error(status, &body, want_status, want_code);
        assert_eq!(
            self.snapshot().await,
            before,
            "{want_code}: something changed"
        );
        body
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_files_are_refused_one_by_one() {
    let fx = Fixture::new().await;
    let (srv, id) = (&fx.srv, fx.id.as_str());
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "notes.jpg",
            b"plain text, not an image".to_vec(),
            415,
            "not_an_image",
        ),
        (
            "page.png",
            b"<!doctype html><html></html>".to_vec(),
            415,
            "not_an_image",
        ),
        ("half.jpg", truncated(&jpeg(7)), 422, "corrupt_image"),
        ("half.png", truncated(&png(7)), 422, "corrupt_image"),
        // Scan-sized JPEGs cut to a third: the decoder alone would fill them with grey.
        (
            "third.jpg",
            cut_to_a_third(&scan_jpeg(900, 700, false)),
            422,
            "corrupt_image",
        ),
        (
            "third-progressive.jpg",
            cut_to_a_third(&scan_jpeg(900, 700, true)),
            422,
            "corrupt_image",
        ),
        ("empty.png", Vec::new(), 422, "empty_file"),
        (
            "bomb.png",
            png_declaring(100_000, 100_000),
            422,
            "image_too_large",
        ),
        // Same bytes as the card already there.
        ("again.png", png(1), 409, "duplicate_image"),
    ];
    for (name, bytes, status, code) in cases {
        let body = fx
            .refused(status, code, srv.upload(id, &[(name, bytes.clone())]))
            .await;
        assert_eq!(body["accepted"], json!([]), "{name}");
        assert_eq!(body["rejected"][0]["original_name"], name);
        assert_eq!(body["rejected"][0]["error"]["code"], code);
    }
    fx.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_file_names_are_refused() {
    let fx = Fixture::new().await;
    let (srv, id) = (&fx.srv, fx.id.as_str());
    let names: Vec<Vec<u8>> = vec![
        b"../../etc/passwd.png".to_vec(),
        b"..\\..\\win.png".to_vec(),
        b"dir/inside.png".to_vec(),
        b"..".to_vec(),
        b"nul\0byte.png".to_vec(),
        "evil\u{202e}gnp.exe".as_bytes().to_vec(),
        vec![b'x'; 5000],
    ];
    for (i, file_name) in names.into_iter().enumerate() {
        let part = Part {
            name: "files".into(),
            file_name: Some(file_name.clone()),
            bytes: png(50 + i as u32),
        };
        let before = fx.snapshot().await;
        let (status, body) = srv.upload_raw(id, &[part]).await;
        // A name the multipart parser itself refuses is a 400 for the
        // request; one it passes on is refused per file. Either way: 4xx,
        // enveloped, and nothing written.
        assert!(
            (400..500).contains(&status),
            "{file_name:?}: {status} {body}"
        );
        assert!(body["error"]["code"].is_string(), "{body}");
        if status == 422 {
            assert_eq!(body["error"]["code"], "invalid_file_name", "{body}");
        }
        assert_eq!(
            fx.snapshot().await,
            before,
            "{:?}",
            String::from_utf8_lossy(&file_name)
        );
    }
    // Nothing ever appeared outside the data dir's own folders.
    assert!(srv.files().iter().all(|f| f.starts_with("uploads/")));
    fx.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_file_never_fails_the_others() {
    let fx = Fixture::new().await;
    let (status, up) = fx
        .srv
        .upload(
            &fx.id,
            &[
                ("ok-1.png", png(10)),
                ("text.jpg", b"hello".to_vec()),
                ("ok-2.jpg", jpeg(11)),
                ("dup.png", png(10)),
            ],
        )
        .await;
    assert_eq!(status, 200, "{up}");
    let accepted: Vec<_> = up["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["original_name"].clone())
        .collect();
    assert_eq!(accepted, [json!("ok-1.png"), json!("ok-2.jpg")]);
    let rejected: Vec<_> = up["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["original_name"].clone(), r["error"]["code"].clone()))
        .collect();
    assert_eq!(
        rejected,
        [
            (json!("text.jpg"), json!("not_an_image")),
            (json!("dup.png"), json!("duplicate_image")),
        ]
    );
    let (_, b) = fx.srv.get(&format!("/api/batches/{}", fx.id)).await;
    assert_eq!(b["counts"]["total"], 3);
    // Refused files leave no trace in the staging dir.
    assert_eq!(fx.srv.files().len(), 3);
    fx.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn size_limits_are_enforced_while_streaming() {
    let fx = Fixture::with_limits(Limits {
        max_file_bytes: 2_000,
        max_request_bytes: 50_000,
        ..Limits::default()
    })
    .await;
    let (srv, id) = (&fx.srv, fx.id.as_str());
    let big = vec![0u8; 3_000];
    fx.refused(
        413,
        "file_too_large",
        srv.upload(id, &[("big.png", big.clone())]),
    )
    .await;

    // A body over the limit fails as a whole, taking back what it had added.
    let mut parts = vec![("small.png", png(20))];
    for _ in 0..40 {
        parts.push(("filler.bin", vec![1u8; 1_500]));
    }
    fx.refused(413, "body_too_large", srv.upload(id, &parts))
        .await;

    // Declared too large: refused before reading.
    fx.refused(
        413,
        "body_too_large",
        send(
            srv.client
                .post(srv.url(&format!("/api/batches/{id}/images")))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .header("content-length", "60000")
                .body(vec![0u8; 60_000]),
        ),
    )
    .await;
    fx.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_upload_requests_are_refused() {
    let fx = Fixture::new().await;
    let (srv, id) = (&fx.srv, fx.id.as_str());
    let url = srv.url(&format!("/api/batches/{id}/images"));
    fx.refused(
        415,
        "unsupported_media_type",
        send(
            srv.client
                .post(&url)
                .header("content-type", "image/png")
                .body(png(30)),
        ),
    )
    .await;
    fx.refused(400, "invalid_multipart",
        send(
            srv.client
                .post(&url)
                .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
                .body(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n\r\nunterminated")),
        )
    )
    .await;
    fx.refused(400, "no_files", srv.upload_raw(id, &[])).await;
    fx.refused(
        422,
        "unexpected_part",
        srv.upload_raw(id, &[Part::file("photo", "a.png", png(31))]),
    )
    .await;
    // Unknown batch: 404 before anything is read.
    let (s, body) = srv.upload("zzzzzzzz", &[("a.png", png(32))]).await;
    assert_error(s, &body, 404, "batch_not_found");
    let (s, body) = srv.upload("..%2F..%2Fetc", &[("a.png", png(32))]).await;
    assert_error(s, &body, 404, "batch_not_found");
    fx.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_json_and_bad_fields_are_refused() {
    let fx = Fixture::new().await;
    let (srv, id) = (&fx.srv, fx.id.as_str());
    let fields_url = srv.url(&format!("/api/batches/{id}/fields"));
    fx.refused(
        400,
        "invalid_json",
        send(
            srv.client
                .put(&fields_url)
                .header("content-type", "application/json")
                .body("[{"),
        ),
    )
    .await;
    fx.refused(
        415,
        "unsupported_media_type",
        send(
            srv.client
                .put(&fields_url)
                .header("content-type", "text/plain")
                .body("[]"),
        ),
    )
    .await;
    let bad_fields = [
        (
            json!([{"name": "title", "type": "text", "colour": "red"}]),
            422,
            "invalid_body",
        ),
        (
            json!([{"name": "title", "type": "colour"}]),
            422,
            "invalid_body",
        ),
        (json!({"name": "title"}), 422, "invalid_body"),
        (
            json!([{"name": "has space", "type": "text"}]),
            422,
            "invalid_fields",
        ),
        (
            json!([{"name": "_text", "type": "text"}]),
            422,
            "invalid_fields",
        ),
        (
            json!([{"name": "a", "type": "text"}, {"name": "A", "type": "date"}]),
            422,
            "invalid_fields",
        ),
        (
            json!([{"name": "a", "type": "text", "description": "x".repeat(1001)}]),
            422,
            "invalid_fields",
        ),
        (
            Value::Array(
                (0..101)
                    .map(|i| json!({"name": format!("f{i}"), "type": "text"}))
                    .collect(),
            ),
            422,
            "invalid_fields",
        ),
    ];
    for (body, status, code) in bad_fields {
        fx.refused(
            status,
            code,
            srv.put(&format!("/api/batches/{id}/fields"), body.clone()),
        )
        .await;
    }
    let bad_batches = [
        (json!({"name": "///"}), 422, "invalid_name"),
        (json!({"name": ""}), 422, "invalid_name"),
        (
            json!({"name": "ok", "engine": "gpt-9"}),
            422,
            "unknown_engine",
        ),
        (json!({"name": "ok", "extra": 1}), 422, "invalid_body"),
        (json!({}), 422, "invalid_body"),
    ];
    for (body, status, code) in bad_batches {
        fx.refused(status, code, srv.post("/api/batches", body.clone()))
            .await;
    }
    let bad_templates = [
        (json!({"name": "  ", "fields": []}), 422, "invalid_name"),
        (
            json!({"name": "t", "fields": [{"name": "1x", "type": "text"}]}),
            422,
            "invalid_fields",
        ),
    ];
    for (body, status, code) in bad_templates {
        fx.refused(status, code, srv.post("/api/templates", body.clone()))
            .await;
    }
    fx.refused(
        400,
        "invalid_path",
        srv.delete(&format!("/api/batches/{id}/images/not-a-number")),
    )
    .await;
    fx.refused(
        404,
        "card_not_found",
        srv.delete(&format!("/api/batches/{id}/images/999999")),
    )
    .await;
    fx.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn start_needs_images_and_an_active_field() {
    let srv = TestServer::start().await;
    let id = srv.create_batch("empty").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = format!("/api/batches/{id}/start");

    let (s, _) = srv
        .put(&format!("/api/batches/{id}/fields"), fields_json())
        .await;
    assert_eq!(s, 200);
    let (s, body) = srv.post(&start, json!(null)).await;
    assert_error(s, &body, 409, "no_images");

    let (s, _) = srv.upload(&id, &[("a.png", png(1))]).await;
    assert_eq!(s, 200);
    let inactive = json!([{"name": "title", "type": "text", "active": false}]);
    let (s, _) = srv
        .put(&format!("/api/batches/{id}/fields"), inactive)
        .await;
    assert_eq!(s, 200);
    let before = srv.files();
    let (s, body) = srv.post(&start, json!(null)).await;
    assert_error(s, &body, 409, "no_active_fields");

    let (_, b) = srv.get(&format!("/api/batches/{id}")).await;
    assert_eq!(b["state"], "open");
    assert_eq!(b["counts"]["uploaded"], 1);
    assert_eq!(srv.files(), before);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_methods_answer_in_json() {
    let srv = TestServer::start().await;
    let (s, body) = srv.get("/api/no/such/route").await;
    assert_error(s, &body, 404, "route_not_found");
    let (s, body) = srv.get("/api").await;
    assert_error(s, &body, 404, "route_not_found");
    let (s, body) = srv.put("/api/batches", json!({})).await;
    assert_error(s, &body, 405, "method_not_allowed");
    let (s, body) = srv.get("/api/batches/zzzzzzzz").await;
    assert_error(s, &body, 404, "batch_not_found");
    let (s, body) = srv.get("/api/batches/not-an-id").await;
    assert_error(s, &body, 404, "batch_not_found");
    srv.stop().await;
}
