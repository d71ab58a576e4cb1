//! DESIGN §6 under attack, over real HTTP: odd but valid formats reach the
//! engine as a person sees them (first frame, first page, upright, RGB),
//! requests with thousands of parts and clients that trickle bytes get a
//! clear 4xx, and the server stays up with bounded memory. Hostile names,
//! pixel bombs, broken and mislabelled files are in `bad_input.rs`.

mod common;

use std::time::{Duration, Instant};

use cardex_server::{Limits, ServerConfig};
use common::*;
use image::RgbImage;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most memory the test process (server included) may have used.
const PEAK_RSS_LIMIT_MIB: u64 = 300;

fn mean_luma(img: &RgbImage, rows: std::ops::Range<u32>) -> f64 {
    let (w, _) = img.dimensions();
    let mut sum = 0.0;
    for y in rows.clone() {
        for x in 0..w {
            let [r, g, b] = img.get_pixel(x, y).0;
            sum += (f64::from(r) + f64::from(g) + f64::from(b)) / 3.0;
        }
    }
    sum / f64::from(w * rows.len() as u32)
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_formats_reach_the_engine_as_a_person_sees_them() {
    let (sim, stats) = start_sim_with_stats(vlm_sim::SimConfig {
        keep_images: 16,
        ..Default::default()
    })
    .await;
    let srv = TestServer::with_config(sim_config(&sim)).await;
    let id = srv.create_batch("odd formats").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = srv
        .put(&format!("/api/batches/{id}/fields"), fields_json())
        .await;
    assert_eq!(s, 200);
    let files = [
        ("deep.png", png16(1), "png"),
        ("print.jpg", cmyk_jpeg(2), "jpeg"),
        ("moving.gif", animated_gif(3), "gif"),
        // A multi-page TIFF is a card per page (tests/pages.rs).
        ("page.tif", multipage_tiff(&[(30, 90)]), "tiff"),
        (
            "modern.webp",
            image_bytes(image::ImageFormat::WebP, 5),
            "webp",
        ),
        ("sideways.jpg", sideways_jpeg(80, 40), "jpeg"),
    ];
    let parts: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b, _)| (*n, b.clone())).collect();
    let (s, up) = srv.upload(&id, &parts).await;
    assert_eq!(s, 200, "{up}");
    let formats: Vec<&str> = up["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["format"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = files.iter().map(|(_, _, f)| *f).collect();
    assert_eq!(formats, want, "{up}");

    let (s, b) = srv
        .post(&format!("/api/batches/{id}/start"), json!(null))
        .await;
    assert_eq!(s, 200, "{b}");
    let done = srv.wait_finished(&id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(srv.results(&id).await.len(), files.len());

    // What the model was sent, decoded.
    let seen: Vec<RgbImage> = stats
        .recent_images
        .lock()
        .unwrap()
        .iter()
        .map(|bytes| image::load_from_memory(bytes).unwrap().to_rgb8())
        .collect();
    assert_eq!(seen.len(), files.len());
    let sizes: Vec<(u32, u32)> = seen.iter().map(|i| i.dimensions()).collect();
    // The EXIF-rotated card arrives upright: portrait, black half on top.
    let upright = seen
        .iter()
        .find(|i| i.dimensions() == (40, 80))
        .unwrap_or_else(|| panic!("no upright card among {sizes:?}"));
    assert!(
        mean_luma(upright, 0..35) < 40.0,
        "top is not the black half"
    );
    assert!(
        mean_luma(upright, 45..80) > 215.0,
        "bottom is not the white half"
    );
    // The TIFF's page.
    assert!(sizes.contains(&(30, 90)), "{sizes:?}");
    // The GIF's first frame (dark), not its last (white): the one card of
    // a single colour.
    let plain = |i: &RgbImage| {
        let first = i.get_pixel(0, 0).0;
        i.pixels()
            .all(|p| p.0.iter().zip(first).all(|(a, b)| a.abs_diff(b) < 8))
    };
    let gif = seen
        .iter()
        .find(|i| i.dimensions() == (40, 30) && plain(i))
        .expect("the GIF's frame arrives as one plain colour");
    let luma = mean_luma(gif, 0..30);
    assert!(
        luma < 20.0,
        "the GIF's first frame is dark, got mean {luma}"
    );
    // Everything was sent as 8-bit baseline JPEG with 3 components (not
    // the CMYK original), which every server reads.
    for bytes in stats.recent_images.lock().unwrap().iter() {
        let sof = bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("baseline");
        assert_eq!((bytes[sof + 4], bytes[sof + 9]), (8, 3));
    }
    assert!(
        peak_rss_mib() < PEAK_RSS_LIMIT_MIB,
        "{} MiB",
        peak_rss_mib()
    );
    srv.stop().await;
}

async fn card_count(srv: &TestServer, id: &str) -> Value {
    srv.get(&format!("/api/batches/{id}")).await.1["counts"]["total"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_parts_are_answered_within_bounds() {
    let srv = TestServer::with_config(ServerConfig {
        limits: Limits {
            max_parts: 5_000,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let id = srv.open_batch().await;
    let files = srv.files();

    // 4,000 parts that are not files: each reported, nothing kept.
    let junk: Vec<Part> = (0..4_000)
        .map(|i| Part::file("extra", &format!("{i}.png"), vec![b'x'; 8]))
        .collect();
    let started = Instant::now();
    let (s, body) = srv.upload_raw(&id, &junk).await;
    assert_error(s, &body, 422, "unexpected_part");
    assert_eq!(body["rejected"].as_array().unwrap().len(), 4_000);
    assert!(started.elapsed() < Duration::from_secs(30));

    // More parts than the limit: refused, and the images it had already
    // accepted are taken back.
    let mut many: Vec<Part> = (0..5_000)
        .map(|i| Part::file("extra", &format!("{i}.png"), vec![b'x'; 8]))
        .collect();
    many.insert(0, Part::file("files", "first.png", png(2)));
    many.push(Part::file("files", "last.png", png(3)));
    let (s, body) = srv.upload_raw(&id, &many).await;
    assert_error(s, &body, 413, "too_many_parts");
    assert_eq!(srv.files(), files);
    assert_eq!(card_count(&srv, &id).await, 1);

    // Still serving, with memory bounded.
    let (s, _) = srv.get("/api/health").await;
    assert_eq!(s, 200);
    assert!(
        peak_rss_mib() < PEAK_RSS_LIMIT_MIB,
        "{} MiB",
        peak_rss_mib()
    );
    srv.stop().await;
}

/// Sends `head` at once, then `slowly` one byte every `gap`, until the
/// server answers or hangs up. Returns what it answered ("" when it closed
/// without a word) and how long that took.
async fn trickle(
    srv: &TestServer,
    head: &[u8],
    slowly: &[u8],
    gap: Duration,
) -> (String, Duration) {
    let addr = srv.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(head).await.unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    for &byte in slowly {
        if stream.write_all(&[byte]).await.is_err() {
            break;
        }
        match tokio::time::timeout(gap, stream.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => {
                reply.extend_from_slice(&buf[..n]);
                while let Ok(Ok(n @ 1..)) =
                    tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await
                {
                    reply.extend_from_slice(&buf[..n]);
                }
                break;
            }
        }
    }
    (
        String::from_utf8_lossy(&reply).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_that_trickle_bytes_are_cut_off() {
    let srv = TestServer::with_config(ServerConfig {
        limits: Limits {
            idle_timeout: Duration::from_secs(1),
            min_upload_rate: 500,
            request_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let id = srv.open_batch().await;
    let files = srv.files();
    let gap = Duration::from_millis(50); // 20 bytes a second
    let filler = vec![b'a'; 400]; // 20 s at that pace

    // Headers one byte at a time: the connection is closed.
    let (reply, took) = trickle(
        &srv,
        b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ",
        &filler,
        gap,
    )
    .await;
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 408"),
        "{reply}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // An upload trickling its body: 408, and nothing kept.
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"slow.png\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png(9));
    let head = format!(
        "POST /api/batches/{id}/images HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 100000\r\n\r\n"
    );
    let (reply, took) = trickle(&srv, head.as_bytes(), &[body, filler.clone()].concat(), gap).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("\"upload_stalled\""), "{reply}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // An upload that starts, then stops sending: 408 after the idle time.
    let (reply, _) = trickle(&srv, head.as_bytes(), b"-", Duration::from_secs(3)).await;
    assert!(reply.contains("\"upload_stalled\""), "{reply}");

    // A JSON body one byte at a time: 408.
    let head = format!(
        "PUT /api/batches/{id}/fields HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    );
    let (reply, took) = trickle(&srv, head.as_bytes(), &filler, gap).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("\"request_timeout\""), "{reply}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // Nothing changed, and the server answers as before.
    assert_eq!(srv.files(), files);
    assert_eq!(card_count(&srv, &id).await, 1);
    let (s, fields) = srv.get(&format!("/api/batches/{id}/fields")).await;
    assert_eq!(s, 200);
    assert_eq!(fields.as_array().unwrap().len(), 3);
    srv.stop().await;
}
