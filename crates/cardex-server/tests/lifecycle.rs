//! The whole life of a batch through the real server: create, upload,
//! append, fields, prompt, start (lock + move), delete; and templates.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_goes_from_empty_to_started() {
    // A slow model server keeps the batch running while the refusals below
    // are checked.
    let config = paced_sim(1, std::time::Duration::from_secs(3)).await;
    let srv = TestServer::with_config(config).await;

    // Create: the name is made filesystem-safe and stamped.
    let (status, batch) = srv
        .post("/api/batches", json!({"name": "Hemingway Letters / box 3"}))
        .await;
    assert_eq!(status, 201, "{batch}");
    let id = batch["id"].as_str().unwrap().to_owned();
    let name = batch["name"].as_str().unwrap().to_owned();
    assert_eq!(batch["state"], "open");
    assert_eq!(
        batch["engine"], "vlm",
        "the VLM is the default when configured"
    );
    let re_prefix = "Hemingway-Letters-box-3_";
    assert!(
        name.starts_with(re_prefix) && name.ends_with(&format!("_{id}")),
        "{name}"
    );
    assert_eq!(
        name.len(),
        re_prefix.len() + "2026-11-24_14-03-22".len() + 1 + 8
    );

    // Upload two files, then append a third.
    let (status, up) = srv
        .upload(&id, &[("card 1.png", png(1)), ("card-2.jpg", jpeg(2))])
        .await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["accepted"].as_array().unwrap().len(), 2);
    assert_eq!(up["rejected"], json!([]));
    let first = &up["accepted"][0];
    assert_eq!(first["original_name"], "card 1.png");
    assert_eq!(first["state"], "uploaded");
    assert_eq!(first["format"], "png");
    assert_eq!(first["size_bytes"], png(1).len());
    assert_eq!(first["sha256"].as_str().unwrap().len(), 64);
    let stored = first["stored_name"].as_str().unwrap();
    assert!(
        stored.ends_with(".png") && !stored.contains("card"),
        "{stored}"
    );
    assert!(srv.path(&format!("uploads/{id}/{stored}")).is_file());

    let (status, up) = srv
        .upload(
            &id,
            &[("third.webp", image_bytes(image::ImageFormat::WebP, 3))],
        )
        .await;
    assert_eq!(status, 200, "{up}");
    let third_id = up["accepted"][0]["id"].as_i64().unwrap();

    let (status, cards) = srv.get(&format!("/api/batches/{id}/images")).await;
    assert_eq!(status, 200);
    let names: Vec<_> = cards
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["original_name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            json!("card 1.png"),
            json!("card-2.jpg"),
            json!("third.webp")
        ]
    );

    // Remove the third card while open: row and file go.
    let third_stored = cards[2]["stored_name"].as_str().unwrap().to_owned();
    let (status, _) = srv
        .delete(&format!("/api/batches/{id}/images/{third_id}"))
        .await;
    assert_eq!(status, 204);
    assert!(!srv.path(&format!("uploads/{id}/{third_stored}")).exists());
    let (_, b) = srv.get(&format!("/api/batches/{id}")).await;
    assert_eq!(b["counts"]["total"], 2);
    assert_eq!(b["counts"]["uploaded"], 2);

    // Fields and the prompt they generate.
    let (status, fields) = srv
        .put(&format!("/api/batches/{id}/fields"), fields_json())
        .await;
    assert_eq!(status, 200, "{fields}");
    assert_eq!(fields, fields_json());
    let (status, prompt) = srv.get(&format!("/api/batches/{id}/prompt")).await;
    assert_eq!(status, 200);
    assert_eq!(prompt["json_schema"]["required"], json!(["title", "year"]));
    assert_eq!(prompt["json_schema"]["additionalProperties"], json!(false));
    assert!(
        prompt["user"]
            .as_str()
            .unwrap()
            .contains("- title (text): The book's title")
    );
    assert!(!prompt["system"].as_str().unwrap().is_empty());

    // Start: locked, files moved, cards queued.
    let (status, started) = srv
        .post(&format!("/api/batches/{id}/start"), json!(null))
        .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["state"], "running");
    assert_eq!(started["counts"]["total"], 2);
    assert_eq!(started["counts"]["uploaded"], 0);
    assert!(started["started_at"].is_string());
    for c in cards.as_array().unwrap().iter().take(2) {
        let s = c["stored_name"].as_str().unwrap();
        assert!(
            srv.path(&format!("batches/{name}/{s}")).is_file(),
            "{s} moved"
        );
    }
    assert!(
        !srv.path(&format!("uploads/{id}")).exists(),
        "staging dir emptied"
    );
    let (_, cards) = srv.get(&format!("/api/batches/{id}/images")).await;
    let queued = |c: &serde_json::Value| c["state"] == "pending" || c["state"] == "processing";
    assert!(cards.as_array().unwrap().iter().all(queued), "{cards}");

    // Locked for good: no uploads, no field edits, no second start, no delete.
    let files = srv.files();
    let (s, b) = srv.upload(&id, &[("late.png", png(9))]).await;
    assert_error(s, &b, 409, "batch_locked");
    let (s, b) = srv
        .put(&format!("/api/batches/{id}/fields"), fields_json())
        .await;
    assert_error(s, &b, 409, "batch_locked");
    let (s, b) = srv
        .delete(&format!("/api/batches/{id}/images/{}", cards[0]["id"]))
        .await;
    assert_error(s, &b, 409, "batch_locked");
    let (s, b) = srv
        .post(&format!("/api/batches/{id}/start"), json!(null))
        .await;
    assert_error(s, &b, 409, "batch_already_started");
    let (s, b) = srv.delete(&format!("/api/batches/{id}")).await;
    assert_error(s, &b, 409, "batch_running");
    assert_eq!(srv.files(), files, "refusals changed no file");
    let (_, after) = srv.get(&format!("/api/batches/{id}")).await;
    assert_eq!(after["state"], "running");
    assert_eq!(
        after["fields"], started["fields"],
        "refusals changed nothing"
    );
    assert_eq!(after["counts"]["total"], 2);

    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_is_newest_first_with_counts_and_delete_removes_everything() {
    let srv = TestServer::start().await;
    let a = srv.create_batch("first").await;
    let b = srv.create_batch("second").await;
    let a_id = a["id"].as_str().unwrap();
    let (s, _) = srv
        .upload(a_id, &[("x.png", png(1)), ("y.png", png(2))])
        .await;
    assert_eq!(s, 200);

    let (status, list) = srv.get("/api/batches").await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], b["id"]);
    assert_eq!(list[1]["id"], a["id"]);
    assert_eq!(list[1]["counts"]["total"], 2);
    assert_eq!(list[0]["counts"]["total"], 0);

    let (s, _) = srv.delete(&format!("/api/batches/{a_id}")).await;
    assert_eq!(s, 204);
    let (s, body) = srv.get(&format!("/api/batches/{a_id}")).await;
    assert_error(s, &body, 404, "batch_not_found");
    assert!(!srv.path(&format!("uploads/{a_id}")).exists());
    let (_, list) = srv.get("/api/batches").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_are_copied_into_batches_not_linked() {
    let srv = TestServer::start().await;
    let (s, t) = srv
        .post(
            "/api/templates",
            json!({"name": "Catalog card", "fields": fields_json()}),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let tid = t["id"].as_str().unwrap();
    assert_eq!(t["fields"], fields_json());

    // Names are unique ignoring case.
    let (s, body) = srv
        .post(
            "/api/templates",
            json!({"name": "catalog CARD", "fields": []}),
        )
        .await;
    assert_error(s, &body, 409, "template_name_taken");

    let (s, batch) = srv
        .post(
            "/api/batches",
            json!({"name": "from template", "template_id": tid}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(batch["fields"], fields_json());

    // Editing the template leaves the batch alone.
    let (s, t2) = srv
        .put(
            &format!("/api/templates/{tid}"),
            json!({"name": "Catalog card v2", "fields": [{"name": "only", "type": "text"}]}),
        )
        .await;
    assert_eq!(s, 200, "{t2}");
    assert_eq!(t2["name"], "Catalog card v2");
    let (_, b) = srv
        .get(&format!("/api/batches/{}", batch["id"].as_str().unwrap()))
        .await;
    assert_eq!(b["fields"], fields_json());

    let (s, list) = srv.get("/api/templates").await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, _) = srv.delete(&format!("/api/templates/{tid}")).await;
    assert_eq!(s, 204);
    let (s, body) = srv.get(&format!("/api/templates/{tid}")).await;
    assert_error(s, &body, 404, "template_not_found");
    let (_, b) = srv
        .get(&format!("/api/batches/{}", batch["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        b["fields"],
        fields_json(),
        "deleting the template leaves the batch alone"
    );

    // A batch from a missing template is not created.
    let (s, body) = srv
        .post(
            "/api/batches",
            json!({"name": "x", "template_id": "zzzzzzzz"}),
        )
        .await;
    assert_error(s, &body, 404, "template_not_found");
    let (_, list) = srv.get("/api/batches").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_preview_needs_no_batch() {
    let srv = TestServer::start().await;
    let (s, p) = srv
        .post(
            "/api/prompt-preview",
            json!({"fields": [{"name": "date", "type": "date", "description": "When"}]}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        p["json_schema"]["properties"]["date"]["type"],
        json!(["string", "null"])
    );
    assert!(p["user"].as_str().unwrap().contains("ISO 8601"));
    let (s, body) = srv
        .post(
            "/api/prompt-preview",
            json!({"fields": [{"name": "bad name", "type": "text"}]}),
        )
        .await;
    assert_error(s, &body, 422, "invalid_fields");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_supported_format_is_accepted_by_content() {
    let srv = TestServer::start().await;
    let batch = srv.create_batch("formats").await;
    let id = batch["id"].as_str().unwrap();
    use image::ImageFormat::*;
    let files = [
        ("a.jpg", Jpeg, "jpeg"),
        ("b.png", Png, "png"),
        ("c.tif", Tiff, "tiff"),
        ("d.webp", WebP, "webp"),
        ("e.gif", Gif, "gif"),
        // The name lies; the content decides.
        ("f.txt", Png, "png"),
    ];
    for (i, (name, fmt, want)) in files.into_iter().enumerate() {
        let (s, up) = srv
            .upload(id, &[(name, image_bytes(fmt, i as u32 + 100))])
            .await;
        assert_eq!(s, 200, "{name}: {up}");
        assert_eq!(up["accepted"][0]["format"], want, "{name}");
    }
    srv.stop().await;
}

/// Fetches a card's preview; on 200, the decoded image's size.
async fn preview(srv: &TestServer, id: &str, card: i64) -> Result<(u32, u32), (u16, String)> {
    let res = srv
        .client
        .get(srv.url(&format!("/api/batches/{id}/images/{card}/preview")))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let kind = res.headers()[reqwest::header::CONTENT_TYPE].clone();
    let bytes = res.bytes().await.unwrap();
    if status != 200 {
        return Err((status, String::from_utf8_lossy(&bytes).into_owned()));
    }
    assert_eq!(kind, "image/jpeg");
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).unwrap();
    Ok((img.width(), img.height()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_card_preview_is_an_upright_jpeg_wherever_its_image_is() {
    // Phase 1: a model server that fails every request, so the cards end
    // in `_errors/`.
    let config = one_attempt_sim(vlm_sim::SimConfig {
        error_500_rate: 1.0,
        ..Default::default()
    })
    .await;
    let srv = TestServer::with_config(config).await;
    let id = srv.create_batch("previews").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, up) = srv
        .upload(
            &id,
            &[
                ("sideways.jpg", sideways_jpeg(80, 40)),
                ("pages.tif", multipage_tiff(&[(30, 90), (90, 30)])),
            ],
        )
        .await;
    assert_eq!(s, 200, "{up}");
    let cards: Vec<i64> = up["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    // Upright, and each of the TIFF's pages, whatever the stored format.
    let want = [(40, 80), (30, 90), (90, 30)];
    let previews = async |srv: &TestServer| {
        let mut got = Vec::new();
        for &card in &cards {
            got.push(preview(srv, &id, card).await.unwrap());
        }
        got
    };
    let before = srv.files();
    assert_eq!(previews(&srv).await, want, "open: staging dir");
    assert_eq!(srv.files(), before, "a preview writes nothing");

    // Nothing else is a card of this batch.
    let other = srv.open_batch().await;
    for (batch, card) in [
        (&other, cards[0]),
        (&id, 999_999),
        (&"nope".to_owned(), cards[0]),
    ] {
        let (status, body) = preview(&srv, batch, card).await.unwrap_err();
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("not_found"), "{body}");
    }

    let (s, b) = srv
        .put(&format!("/api/batches/{id}/fields"), fields_json())
        .await;
    assert_eq!(s, 200, "{b}");
    srv.start_batch(&id).await;
    let b = srv.wait_finished(&id).await;
    assert_eq!(b["counts"]["failed"], 3, "{b}");
    assert_eq!(previews(&srv).await, want, "failed: _errors/");

    // Phase 2: a working model server; retry the failed cards.
    let working = start_sim(vlm_sim::SimConfig::default()).await;
    let srv = srv.restart(sim_config(&working)).await;
    let (s, b) = srv
        .post(&format!("/api/batches/{id}/retry-failed"), json!(null))
        .await;
    assert_eq!(s, 200, "{b}");
    let b = srv
        .wait_for(&id, "the retry to complete", |b| b["state"] == "completed")
        .await;
    assert_eq!(b["counts"]["done"], 3, "{b}");
    assert_eq!(previews(&srv).await, want, "done: the batch dir");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_keeps_its_ocr_language_and_refuses_a_bad_one() {
    let srv = TestServer::start().await;
    let (s, batch) = srv
        .post(
            "/api/batches",
            json!({"name": "Zettel", "ocr_lang": "deu+eng"}),
        )
        .await;
    assert_eq!(s, 201, "{batch}");
    assert_eq!(batch["ocr_lang"], "deu+eng");
    let (_, got) = srv
        .get(&format!("/api/batches/{}", batch["id"].as_str().unwrap()))
        .await;
    assert_eq!(got["ocr_lang"], "deu+eng");
    let (s, plain) = srv.post("/api/batches", json!({"name": "default"})).await;
    assert_eq!(s, 201);
    assert!(plain["ocr_lang"].is_null());
    for bad in ["../deu", "DEU", "de", "deu eng", "eng+", "", " deu"] {
        let before = srv.get("/api/batches").await.1;
        let (s, body) = srv
            .post("/api/batches", json!({"name": "bad", "ocr_lang": bad}))
            .await;
        assert_error(s, &body, 422, "invalid_ocr_lang");
        assert_eq!(
            srv.get("/api/batches").await.1,
            before,
            "{bad}: nothing created"
        );
    }
    // Well-formed, but too long for Tesseract, or not installed.
    let long = ["abcdefghijklmnop"; 5].join("+");
    for (bad, code) in [
        (long.as_str(), "invalid_ocr_lang"),
        ("deu+zzz", "unknown_ocr_lang"),
    ] {
        let (s, body) = srv
            .post("/api/batches", json!({"name": "bad", "ocr_lang": bad}))
            .await;
        assert_error(s, &body, 422, code);
        if code == "unknown_ocr_lang" {
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("tesseract-ocr-zzz") && !message.contains("tesseract-ocr-deu"),
                "{message}"
            );
        }
    }
    srv.stop().await;
}
