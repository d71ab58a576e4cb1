//! Two-sided cards (DESIGN §16), through the real server, the simulator
//! and a data dir on disk: images paired by name or by upload order become
//! one card each, the model gets front and back in one request, cards with
//! one side are reported and hold the start back, and a failed card's two
//! images go to `_errors/` together.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn two_sided_batch(srv: &TestServer, pairing: &str) -> String {
    let (s, b) = srv
        .post(
            "/api/batches",
            json!({"name": format!("duplex {pairing}"), "sides": 2, "pairing": pairing}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["sides"], 2);
    assert_eq!(b["pairing"], pairing);
    let id = b["id"].as_str().unwrap().to_owned();
    let (s, b) = srv
        .put(&format!("/api/batches/{id}/fields"), fields_json())
        .await;
    assert_eq!(s, 200, "{b}");
    id
}

/// The image hashes of each request the simulator received, sorted.
fn requests(stats: &vlm_sim::Stats) -> Vec<Vec<String>> {
    let mut seen: Vec<Vec<String>> = stats
        .recent_requests
        .lock()
        .unwrap()
        .iter()
        .cloned()
        .collect();
    seen.sort();
    seen
}

fn images_per_request(stats: &vlm_sim::Stats) -> BTreeMap<usize, u64> {
    stats.images_per_request.lock().unwrap().clone()
}

fn card_named<'a>(cards: &'a [Value], name: &str) -> &'a Value {
    cards
        .iter()
        .find(|c| c["original_name"] == name)
        .unwrap_or_else(|| panic!("no card {name} in {cards:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn paired_by_name_each_card_sends_its_front_and_back_together() {
    let (sim, stats) = start_sim_with_stats(vlm_sim::SimConfig {
        keep_images: 64,
        ..Default::default()
    })
    .await;
    let srv = TestServer::with_config(sim_config(&sim)).await;
    let id = two_sided_batch(&srv, "name").await;
    let img: BTreeMap<&str, Vec<u8>> = [
        "0001_front.jpg",
        "0001_BACK.jpg",
        "0002a.jpg",
        "0002b.jpg",
        "0003-2.jpg",
        "0003-1.jpg",
        "loose.jpg",
    ]
    .into_iter()
    .zip(1u32..)
    .map(|(n, seed)| (n, cardex_testkit::jpeg(seed)))
    .collect();
    let part = |n: &'static str| (n, img[n].clone());

    // Fronts first, then backs, one back before its front, and a name
    // without a side mark.
    let (s, up) = srv
        .upload(
            &id,
            &[
                part("0001_front.jpg"),
                part("0002a.jpg"),
                part("0003-2.jpg"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(up["unpaired"].as_array().unwrap().len(), 3, "{up}");
    let lone_back = card_named(up["accepted"].as_array().unwrap(), "0003-2.jpg").clone();
    assert_eq!(lone_back["side"], "back");
    let (s, up) = srv
        .upload(
            &id,
            &[part("0001_BACK.jpg"), part("0002b.jpg"), part("loose.jpg")],
        )
        .await;
    assert_eq!(s, 200, "{up}");
    let cards = up["accepted"].as_array().unwrap();
    let first = card_named(cards, "0001_front.jpg");
    let sides: Vec<(&str, &str)> = first["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["side"].as_str().unwrap(),
                i["original_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sides,
        [("front", "0001_front.jpg"), ("back", "0001_BACK.jpg")]
    );
    let unpaired = up["unpaired"].as_array().unwrap();
    assert_eq!(unpaired.len(), 1, "{up}");
    assert_eq!(unpaired[0]["original_name"], "loose.jpg");
    assert!(
        unpaired[0]["message"]
            .as_str()
            .unwrap()
            .contains("no side mark"),
        "{up}"
    );

    // Two cards have one side: the start is held back.
    let batch = srv.get(&format!("/api/batches/{id}")).await.1;
    assert_eq!(batch["counts"]["unpaired"], 2, "{batch}");
    assert_eq!(batch["counts"]["total"], 4, "{batch}");
    let (s, b) = srv
        .post(&format!("/api/batches/{id}/start"), json!({}))
        .await;
    assert_error(s, &b, 409, "unpaired_images");

    // The front of the waiting back completes it: the same card.
    let (s, up) = srv.upload(&id, &[part("0003-1.jpg")]).await;
    assert_eq!(s, 200, "{up}");
    let third = &up["accepted"][0];
    assert_eq!(third["id"], lone_back["id"]);
    assert_eq!(third["original_name"], "0003-1.jpg");
    assert_eq!(third["side"], "front");
    assert_eq!(third["images"][1]["original_name"], "0003-2.jpg");
    assert_eq!(up["unpaired"], json!([]));
    // A back already in the batch is a duplicate, as a front is.
    let (s, b) = srv.upload(&id, &[part("0002b.jpg")]).await;
    assert_error(s, &b, 409, "duplicate_image");

    // The prompt says which image is which.
    let prompt = srv.get(&format!("/api/batches/{id}/prompt")).await.1;
    assert!(
        prompt["user"]
            .as_str()
            .unwrap()
            .contains("the first image is its front"),
        "{prompt}"
    );
    // The preview shows either side.
    let back = reqwest::get(srv.url(&format!(
        "/api/batches/{id}/images/{}/preview?side=back",
        first["id"]
    )))
    .await
    .unwrap();
    assert_eq!(back.status(), 200);
    assert_eq!(
        back.bytes().await.unwrap().as_ref(),
        img["0001_BACK.jpg"].as_slice()
    );
    let loose = card_named(
        &srv.get(&format!("/api/batches/{id}/images"))
            .await
            .1
            .as_array()
            .unwrap()
            .clone(),
        "loose.jpg",
    )
    .clone();
    let (s, b) = srv
        .get(&format!(
            "/api/batches/{id}/images/{}/preview?side=back",
            loose["id"]
        ))
        .await;
    assert_error(s, &b, 404, "back_not_found");

    // The one-card test reads both sides.
    let (s, t) = srv
        .post(
            &format!("/api/batches/{id}/test"),
            json!({"card_id": first["id"]}),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        requests(&stats),
        [vec![
            sha(&img["0001_front.jpg"]),
            sha(&img["0001_BACK.jpg"])
        ]]
    );
    stats.recent_requests.lock().unwrap().clear();
    stats.images_per_request.lock().unwrap().clear();

    // The single is accepted as it is.
    let (s, b) = srv
        .post(
            &format!("/api/batches/{id}/start"),
            json!({"accept_singles": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let done = srv.wait_finished(&id).await;
    assert_eq!(done["counts"]["done"], 4, "{done}");
    let pair = |a: &str, b: &str| vec![sha(&img[a]), sha(&img[b])];
    let mut want = vec![
        pair("0001_front.jpg", "0001_BACK.jpg"),
        pair("0002a.jpg", "0002b.jpg"),
        pair("0003-1.jpg", "0003-2.jpg"),
        vec![sha(&img["loose.jpg"])],
    ];
    want.sort();
    assert_eq!(requests(&stats), want);
    assert_eq!(images_per_request(&stats), BTreeMap::from([(1, 1), (2, 3)]));
    // All seven images are in the batch dir, nothing is left in staging.
    let files = srv.files();
    assert_eq!(
        files.iter().filter(|f| f.starts_with("batches/")).count(),
        7,
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.starts_with("uploads/")),
        "{files:?}"
    );
    // In the results, a card read alone has no back, in JSON and in CSV.
    let rows = srv.results(&id).await;
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let alone = row["original_name"] == "loose.jpg";
        assert_eq!(row.get("back").is_none(), alone, "{row}");
    }
    let csv = srv.export(&id, "format=csv").await;
    let mut table = csv::Reader::from_reader(csv.as_bytes());
    let header = table.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    for line in table.records().map(Result::unwrap) {
        let back = &line[at("back_original_name")];
        match &line[at("original_name")] {
            "loose.jpg" => assert_eq!(
                [back, &line[at("back_source_name")], &line[at("back_page")]],
                ["", "", ""]
            ),
            "0001_front.jpg" => assert_eq!(back, "0001_BACK.jpg"),
            _ => assert!(!back.is_empty(), "{line:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplex_pdf_is_paired_by_page_order() {
    let (sim, stats) = start_sim_with_stats(vlm_sim::SimConfig {
        keep_images: 16,
        ..Default::default()
    })
    .await;
    let srv = TestServer::with_config(sim_config(&sim)).await;
    let id = two_sided_batch(&srv, "order").await;
    let pages: Vec<Vec<u8>> = (0..4).map(|i| cardex_testkit::jpeg(40 + i)).collect();
    let (s, up) = srv
        .upload(
            &id,
            &[("duplex.pdf", cardex_testkit::pdf::jpeg_pdf(&pages))],
        )
        .await;
    assert_eq!(s, 200, "{up}");
    let cards = up["accepted"].as_array().unwrap();
    assert_eq!(cards.len(), 2, "{up}");
    assert_eq!(up["unpaired"], json!([]));
    for (card, (front, back)) in cards.iter().zip([(1, 2), (3, 4)]) {
        assert_eq!(card["original_name"], format!("duplex.pdf p. {front}"));
        assert_eq!(
            card["images"][1]["original_name"],
            format!("duplex.pdf p. {back}")
        );
        assert_eq!(card["images"][1]["source_name"], "duplex.pdf");
        assert_eq!(card["images"][1]["page"], back);
        assert_eq!(card["images"][0]["page"], front);
    }
    // An odd image out waits for its back, and holds the start back.
    let (s, up) = srv
        .upload(&id, &[("odd.jpg", cardex_testkit::jpeg(50))])
        .await;
    assert_eq!(s, 200);
    assert!(
        up["unpaired"][0]["message"]
            .as_str()
            .unwrap()
            .contains("next image"),
        "{up}"
    );
    let (s, b) = srv
        .post(&format!("/api/batches/{id}/start"), json!({}))
        .await;
    assert_error(s, &b, 409, "unpaired_images");
    let odd = up["accepted"][0]["id"].as_i64().unwrap();
    let (s, _) = srv.delete(&format!("/api/batches/{id}/images/{odd}")).await;
    assert_eq!(s, 204);
    // Without the odd card, a bare start (no body) goes.
    srv.start_batch(&id).await;
    let done = srv.wait_finished(&id).await;
    assert_eq!(done["counts"]["done"], 2, "{done}");
    let mut want = vec![
        vec![sha(&pages[0]), sha(&pages[1])],
        vec![sha(&pages[2]), sha(&pages[3])],
    ];
    want.sort();
    assert_eq!(requests(&stats), want);

    // Exports name each card's back: JSON rows carry it, and the tables
    // gain its columns after the front's.
    let rows = srv.results(&id).await;
    for (row, back) in rows.iter().zip([2, 4]) {
        assert_eq!(
            row["back"],
            json!({"original_name": format!("duplex.pdf p. {back}"),
                   "source_name": "duplex.pdf", "page": back}),
            "{row}"
        );
    }
    let csv = srv.export(&id, "format=csv").await;
    let mut table = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = table.headers().unwrap().iter().map(String::from).collect();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(
        header[at("page")..at("page") + 4],
        [
            "page",
            "back_original_name",
            "back_source_name",
            "back_page"
        ]
    );
    let lines: Vec<csv::StringRecord> = table.records().map(Result::unwrap).collect();
    assert_eq!(lines.len(), 2);
    for (line, (front, back)) in lines.iter().zip([(1, 2), (3, 4)]) {
        assert_eq!(line[at("original_name")], format!("duplex.pdf p. {front}"));
        assert_eq!(
            line[at("back_original_name")],
            format!("duplex.pdf p. {back}")
        );
        assert_eq!(line[at("back_source_name")], *"duplex.pdf");
        assert_eq!(line[at("back_page")], back.to_string());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_two_sided_card_quarantines_both_images_and_retry_brings_them_back() {
    let config = one_attempt_sim(vlm_sim::SimConfig {
        refuse_rate: 1.0,
        ..Default::default()
    })
    .await;
    let srv = TestServer::with_config(config).await;
    let id = two_sided_batch(&srv, "name").await;
    let (s, up) = srv
        .upload(
            &id,
            &[
                ("7_recto.png", cardex_testkit::png(7)),
                ("7_verso.png", cardex_testkit::png(8)),
            ],
        )
        .await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(up["accepted"].as_array().unwrap().len(), 1, "{up}");
    srv.start_batch(&id).await;
    let done = srv.wait_finished(&id).await;
    assert_eq!(done["counts"]["failed"], 1, "{done}");
    let files = srv.files();
    let errors: Vec<&String> = files.iter().filter(|f| f.contains("/_errors/")).collect();
    assert_eq!(errors.len(), 4, "both images and their sidecars: {files:?}");
    let sidecars: Vec<Value> = errors
        .iter()
        .filter(|f| f.ends_with(".error.json"))
        .map(|f| serde_json::from_slice(&std::fs::read(srv.path(f)).unwrap()).unwrap())
        .collect();
    let mut sides: Vec<&str> = sidecars
        .iter()
        .map(|s| s["side"].as_str().unwrap())
        .collect();
    sides.sort();
    assert_eq!(sides, ["back", "front"]);

    // A retry-failed cut short (the front moved back out, the back not
    // yet): the start-up repair puts the front back in `_errors/`.
    let front = sidecars.iter().find(|s| s["side"] == "front").unwrap();
    let stored = front["stored_name"].as_str().unwrap();
    let quarantined = errors
        .iter()
        .find(|f| f.ends_with(&format!("/_errors/{stored}")))
        .unwrap()
        .to_string();
    let outside = quarantined.replace("/_errors/", "/");
    std::fs::rename(srv.path(&quarantined), srv.path(&outside)).unwrap();
    let config = one_attempt_sim(vlm_sim::SimConfig {
        refuse_rate: 1.0,
        ..Default::default()
    })
    .await;
    let srv = srv.restart(config).await;
    assert!(
        srv.path(&quarantined).is_file(),
        "the front is back in _errors/"
    );
    assert!(!srv.path(&outside).exists());

    let (s, b) = srv
        .post(&format!("/api/batches/{id}/retry-failed"), json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    srv.wait_finished(&id).await;
    // Failed again (the simulator refuses every card), and both images
    // went back to `_errors/` with it: none is lost on the way.
    let files = srv.files();
    let images = files
        .iter()
        .filter(|f| f.ends_with(".png") && f.contains("/_errors/"))
        .count();
    assert_eq!(images, 2, "{files:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sides_are_checked_at_create() {
    let srv = TestServer::start().await;
    for body in [
        json!({"name": "x", "sides": 3}),
        json!({"name": "x", "sides": 0}),
        json!({"name": "x", "pairing": "order"}),
        json!({"name": "x", "sides": 2, "pairing": "shuffle"}),
    ] {
        let (s, b) = srv.post("/api/batches", body.clone()).await;
        assert!(s == 422, "{body}: {s} {b}");
    }
    assert_eq!(srv.get("/api/batches").await.1, json!([]));
    // One-sided by default, and pairing by name when two-sided.
    let one = srv.create_batch("plain").await;
    assert_eq!(
        (one["sides"].clone(), one["pairing"].clone()),
        (json!(1), Value::Null)
    );
    let (_, two) = srv
        .post("/api/batches", json!({"name": "two", "sides": 2}))
        .await;
    assert_eq!(two["pairing"], "name");
    // A one-sided batch's cards have no side.
    let id = one["id"].as_str().unwrap();
    let (_, up) = srv
        .upload(id, &[("a_front.jpg", cardex_testkit::jpeg(1))])
        .await;
    assert_eq!(up["accepted"][0]["side"], Value::Null);
    assert_eq!(up["accepted"][0]["images"].as_array().unwrap().len(), 1);
    assert_eq!(up["unpaired"], json!([]));
}
