//! Upload benchmarks: ingest rate of typical scans, and memory while a
//! 2 GiB upload streams in.

use std::io::Cursor;
use std::time::Instant;

use bytes::Bytes;
use cardex_testkit::{BOUNDARY, Part, multipart_body};
use image::{ImageBuffer, ImageFormat, Rgb};

use crate::Row;
use crate::server::Server;

/// A JPEG of `w` × `h` with text-like noise, so it compresses like a scan.
pub fn scan_jpeg(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let img = ImageBuffer::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let ink = (y / 24).is_multiple_of(3)
            && !(x / 9 + y / 24).is_multiple_of(7)
            && state.is_multiple_of(3);
        let v = if ink { 40 } else { 235 - (state % 12) as u8 };
        Rgb([v, v, v.saturating_sub(8)])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg)
        .expect("in-memory JPEG encoding cannot fail");
    out.into_inner()
}

/// Cards per second through upload (stream, hash, check, record) for
/// 1600 × 1000 scans sent 20 to a request.
pub async fn ingest_rate() -> anyhow::Result<Vec<Row>> {
    const CARDS: u32 = 200;
    const PER_REQUEST: u32 = 20;
    let files: Vec<Vec<u8>> = (0..CARDS).map(|i| scan_jpeg(1600, 1000, i)).collect();
    let total_bytes: usize = files.iter().map(Vec::len).sum();
    let server = Server::start(&[])?;
    let client = reqwest::Client::new();
    let id = server.create_batch(&client, "bench").await?;
    let start = Instant::now();
    for chunk in files.chunks(PER_REQUEST as usize) {
        let parts: Vec<Part> = chunk
            .iter()
            .enumerate()
            .map(|(i, b)| Part::file("files", &format!("{i}.jpg"), b.clone()))
            .collect();
        let (ct, body) = multipart_body(&parts);
        let res = client
            .post(format!("{}/api/batches/{id}/images", server.base))
            .header("content-type", ct)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "upload failed: {}", res.text().await?);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(vec![Row {
        what: format!(
            "upload ingest, {CARDS} scans of 1600×1000 ({:.0} KB avg), {PER_REQUEST} per request",
            total_bytes as f64 / f64::from(CARDS) / 1024.0
        ),
        figure: format!(
            "{:.0} cards/s ({:.1} MB/s)",
            f64::from(CARDS) / secs,
            total_bytes as f64 / secs / 1e6
        ),
        target: "—".into(),
        ok: None,
    }])
}

/// Peak server RSS while one 2 GiB file streams in (a scan followed by
/// 2 GiB of trailing data, so the decode check stays small).
pub async fn large_upload_rss() -> anyhow::Result<Row> {
    const SIZE: u64 = 2 * 1024 * 1024 * 1024;
    let server = Server::start(&["--max-file-bytes", "4294967296"])?;
    let client = reqwest::Client::new();
    let id = server.create_batch(&client, "big").await?;
    let scan = scan_jpeg(1600, 1000, 7);
    let filler = SIZE - scan.len() as u64;
    const CHUNK: u64 = 1 << 20;
    let zeros = Bytes::from(vec![0u8; CHUNK as usize]);
    let mut pieces = vec![Bytes::from(scan)];
    pieces.extend((0..filler / CHUNK).map(|_| zeros.clone()));
    pieces.push(Bytes::from(vec![0u8; (filler % CHUNK) as usize]));
    let stream = futures_util::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
    let start = Instant::now();
    let res = upload_streamed(
        &client,
        &server,
        &id,
        ("big.jpg", "image/jpeg"),
        SIZE,
        stream,
    )
    .await?;
    let status = res.status();
    let text = res.text().await?;
    anyhow::ensure!(status == 200, "2 GiB upload failed: {status} {text}");
    let secs = start.elapsed().as_secs_f64();
    let peak = server.peak_rss_mib()?;
    Ok(Row {
        what: format!(
            "peak server RSS while a 2 GiB upload streams in ({:.0} MB/s)",
            SIZE as f64 / secs / 1e6
        ),
        figure: format!("{peak:.0} MiB"),
        target: "< 100 MB".into(),
        ok: Some(peak < 100.0),
    })
}

/// Uploads one file of `length` bytes, streamed from `content`, to batch
/// `id` as a multipart part named `files`: the body is never whole in the
/// bench's memory.
pub async fn upload_streamed(
    client: &reqwest::Client,
    server: &Server,
    id: &str,
    (file_name, content_type): (&str, &str),
    length: u64,
    content: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
) -> anyhow::Result<reqwest::Response> {
    use futures_util::StreamExt;
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{file_name}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let total = head.len() as u64 + length + tail.len() as u64;
    let body = futures_util::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(content)
        .chain(futures_util::stream::once(
            async move { Ok(Bytes::from(tail)) },
        ));
    Ok(client
        .post(format!("{}/api/batches/{id}/images", server.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", total)
        .timeout(std::time::Duration::from_secs(1800))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?)
}
