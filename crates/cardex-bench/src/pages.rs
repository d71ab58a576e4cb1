//! Multi-page files (DESIGN §16): memory while a 500-page, 1 GB PDF of
//! scans is uploaded and split into cards, page by page.
//!
//! The PDF is written straight to a temp file (one scan JPEG per page,
//! each made distinct by a comment segment so no page is a duplicate) and
//! streamed to the real server from disk. While the server receives and
//! splits it, the bench samples the resident memory of the server and of
//! the PDF tools it runs (its child processes) every 20 ms.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::Row;
use crate::server::Server;
use crate::upload::{scan_jpeg, upload_streamed};

const PAGES: usize = 500;

/// `jpeg` with a comment segment (COM) after its start marker that names
/// `page`: a different file, the same image.
fn with_comment(jpeg: &[u8], page: usize) -> Vec<u8> {
    let text = format!("cardex bench page {page}");
    let len = u16::try_from(text.len() + 2).expect("a short comment");
    let mut out = Vec::with_capacity(jpeg.len() + text.len() + 4);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A PDF written object by object to a file, keeping the offsets for its
/// cross-reference table.
struct PdfWriter {
    out: std::io::BufWriter<std::fs::File>,
    at: u64,
    offsets: Vec<u64>,
}

impl PdfWriter {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }

    /// The next object, numbered from 1.
    fn object(&mut self, body: &[u8]) -> std::io::Result<()> {
        self.offsets.push(self.at);
        self.put(format!("{} 0 obj\n", self.offsets.len()).as_bytes())?;
        self.put(body)?;
        self.put(b"\nendobj\n")
    }

    /// The cross-reference table and trailer; returns the file's size.
    fn finish(mut self) -> std::io::Result<u64> {
        let start = self.at;
        let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", self.offsets.len() + 1);
        for o in &self.offsets {
            xref.push_str(&format!("{o:010} 00000 n \n"));
        }
        xref.push_str(&format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{start}\n%%EOF\n",
            self.offsets.len() + 1
        ));
        self.put(xref.as_bytes())?;
        self.out.flush()?;
        Ok(self.at)
    }
}

/// Writes a PDF of `PAGES` pages, each one `w` × `h` scan, to `path`;
/// returns its size.
fn write_pdf(path: &std::path::Path, scan: &[u8], (w, h): (u32, u32)) -> anyhow::Result<u64> {
    let mut pdf = PdfWriter {
        out: std::io::BufWriter::new(std::fs::File::create(path)?),
        at: 0,
        offsets: Vec::new(),
    };
    pdf.put(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")?;
    pdf.object(b"<< /Type /Catalog /Pages 2 0 R >>")?;
    let kids: Vec<String> = (0..PAGES).map(|i| format!("{} 0 R", 3 + 3 * i)).collect();
    pdf.object(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {PAGES} >>",
            kids.join(" ")
        )
        .as_bytes(),
    )?;
    for i in 0..PAGES {
        let page = 3 + 3 * i;
        pdf.object(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w} {h}] \
                 /Resources << /XObject << /Im0 {} 0 R >> >> /Contents {} 0 R >>",
                page + 1,
                page + 2
            )
            .as_bytes(),
        )?;
        let jpeg = with_comment(scan, i + 1);
        let mut image = format!(
            "<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB \
             /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>\nstream\n",
            jpeg.len()
        )
        .into_bytes();
        image.extend_from_slice(&jpeg);
        image.extend_from_slice(b"\nendstream");
        pdf.object(&image)?;
        let draw = format!("q {w} 0 0 {h} 0 0 cm /Im0 Do Q");
        pdf.object(format!("<< /Length {} >>\nstream\n{draw}\nendstream", draw.len()).as_bytes())?;
    }
    Ok(pdf.finish()?)
}

/// Resident memory of process `pid` now, in KiB (0 once it is gone).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The child processes of `pid` (the PDF tools the server runs).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Peak RSS of the server and of its PDF tools while a 500-page, 1 GB PDF
/// is uploaded and split.
pub async fn split_rss() -> anyhow::Result<Row> {
    // An 8.5 MP colour scan of about 2 MB: 500 of them make 1 GB.
    let (w, h) = (3400, 2500);
    let scan = scan_jpeg(w, h, 12);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("box.pdf");
    let size = write_pdf(&path, &scan, (w, h))?;

    let server = Server::start(&["--max-file-bytes", "4294967296"])?;
    let client = reqwest::Client::new();
    let id = server.create_batch(&client, "pdf").await?;
    let pid = server.pid();
    let server_exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let sampling = tokio::spawn(async move {
        let mut tools_peak = 0u64;
        loop {
            // A child that has not exec'd its tool yet is the server
            // forked, sharing the server's pages: not memory of its own.
            let tools: u64 = children(pid)
                .into_iter()
                .filter(|&k| std::fs::read_link(format!("/proc/{k}/exe")).ok() != server_exe)
                .map(rss_kib)
                .sum();
            tools_peak = tools_peak.max(tools);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if rss_kib(pid) == 0 {
                return tools_peak;
            }
        }
    });

    // The file read a MiB at a time, as it goes out.
    let file = tokio::fs::File::open(&path).await?;
    let content = futures_util::stream::unfold(Some(file), |file| async move {
        let mut f = file?;
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let start = Instant::now();
    let res = upload_streamed(
        &client,
        &server,
        &id,
        ("box.pdf", "application/pdf"),
        size,
        content,
    )
    .await?;
    let status = res.status();
    let report: serde_json::Value = res.json().await?;
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(status == 200, "the PDF upload failed: {status} {report}");
    let cards = report["accepted"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        cards == PAGES,
        "{cards} of {PAGES} pages became cards: {}",
        report["rejected"]
    );
    let server_peak = server.peak_rss_mib()?;
    drop(server);
    let tools_peak = sampling.await? as f64 / 1024.0;
    let peak = server_peak + tools_peak;
    Ok(Row {
        what: format!(
            "peak RSS while a {PAGES}-page PDF of {:.2} GB is uploaded and split \
             ({:.1} pages/s): server + its PDF tool",
            size as f64 / 1e9,
            PAGES as f64 / secs
        ),
        figure: format!("{peak:.0} MiB ({server_peak:.0} + {tools_peak:.0})"),
        target: "< 200 MB".into(),
        ok: Some(peak < 200.0),
    })
}
