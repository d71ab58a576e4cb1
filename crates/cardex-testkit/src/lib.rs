//! Fixtures for tests and benchmarks: small images of every supported
//! format, hostile files (pixel bombs, truncated data) and hand-built
//! multipart bodies that no well-behaved client would send, and small
//! hand-written PDFs.

pub mod cards;
pub mod pdf;

use std::io::Cursor;

use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb};

/// A small image whose pixels depend on `seed`, so fixtures never collide.
pub fn image_bytes(format: ImageFormat, seed: u32) -> Vec<u8> {
    let s = seed.to_le_bytes();
    let img = ImageBuffer::from_fn(40, 30, |x, y| {
        Rgb([
            s[0] ^ (x as u8).wrapping_mul(7),
            s[1] ^ (y as u8).wrapping_mul(11),
            s[2] ^ s[3],
        ])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format)
        .expect("encoding a small RGB image in memory cannot fail");
    out.into_inner()
}

/// A small PNG, unique per seed.
pub fn png(seed: u32) -> Vec<u8> {
    image_bytes(ImageFormat::Png, seed)
}

/// A small JPEG, unique per seed.
pub fn jpeg(seed: u32) -> Vec<u8> {
    image_bytes(ImageFormat::Jpeg, seed)
}

/// A PNG with 16 bits a channel, as archival scanners write.
pub fn png16(seed: u32) -> Vec<u8> {
    let s = (seed & 0xFFFF) as u16;
    let img = ImageBuffer::from_fn(40, 30, |x, y| {
        Rgb([s ^ (x as u16 * 1500), y as u16 * 2000, 40_000u16])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb16(img)
        .write_to(&mut out, ImageFormat::Png)
        .expect("encoding a small 16-bit image in memory cannot fail");
    out.into_inner()
}

/// A scan-sized JPEG (`w` × `h`, detailed enough to be several hundred
/// KB), baseline or progressive, as scanners and cameras write them.
pub fn scan_jpeg(w: u16, h: u16, progressive: bool) -> Vec<u8> {
    let pixels: Vec<u8> = (0..u32::from(w) * u32::from(h))
        .flat_map(|i| {
            let (x, y) = (i % u32::from(w), i / u32::from(w));
            let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 13;
            [v as u8, (v >> 8) as u8 ^ x as u8, y as u8]
        })
        .collect();
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 90);
    encoder.set_progressive(progressive);
    encoder
        .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encoding an RGB JPEG in memory cannot fail");
    out
}

/// The first third of `bytes`: a file whose transfer broke off early.
pub fn cut_to_a_third(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len() / 3].to_vec()
}

/// A CMYK JPEG, as print workflows and some scanners write.
pub fn cmyk_jpeg(seed: u32) -> Vec<u8> {
    let (w, h) = (40u16, 30u16);
    let pixels: Vec<u8> = (0..u32::from(w) * u32::from(h))
        .flat_map(|i| [(i as u8) ^ seed as u8, 60, 120, 10])
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&pixels, w, h, jpeg_encoder::ColorType::Cmyk)
        .expect("encoding a small CMYK JPEG in memory cannot fail");
    out
}

/// An animated GIF of two 40 × 30 frames: dark, then bright.
pub fn animated_gif(seed: u32) -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame, Rgba, RgbaImage};
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder
            .set_repeat(Repeat::Infinite)
            .expect("writing to memory cannot fail");
        for colour in [[seed as u8 % 32, 0, 0, 255], [250, 250, 250, 255]] {
            let frame = Frame::from_parts(
                RgbaImage::from_pixel(40, 30, Rgba(colour)),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            );
            encoder
                .encode_frame(frame)
                .expect("encoding a small frame in memory cannot fail");
        }
    }
    out
}

/// A TIFF with one page for each (width, height), page `i` a plain grey of
/// level `i * 80`.
pub fn multipage_tiff(pages: &[(u32, u32)]) -> Vec<u8> {
    use tiff::encoder::{TiffEncoder, colortype::RGB8};
    let mut out = Cursor::new(Vec::new());
    let mut encoder = TiffEncoder::new(&mut out).expect("writing to memory cannot fail");
    for (i, &(w, h)) in pages.iter().enumerate() {
        let level = (i * 80) as u8;
        encoder
            .write_image::<RGB8>(w, h, &vec![level; (w * h * 3) as usize])
            .expect("encoding a small page in memory cannot fail");
    }
    out.into_inner()
}

/// A JPEG stored `w` × `h` (landscape), its left half black and its right
/// half white, tagged with EXIF orientation 6: upright, it is `h` × `w`
/// with the black half on top.
pub fn sideways_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = ImageBuffer::from_fn(w, h, |x, _| {
        if x < w / 2 {
            Rgb([0u8, 0, 0])
        } else {
            Rgb([255u8, 255, 255])
        }
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg)
        .expect("encoding a small RGB image in memory cannot fail");
    with_exif_orientation(&out.into_inner(), 6)
}

/// A PNG file of a few dozen bytes whose header declares `w` × `h` pixels:
/// signature, IHDR, an empty IDAT and IEND, as a decompression bomb looks.
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (&b"IHDR"[..], ihdr.as_slice()),
        // An empty zlib stream: no pixel data at all.
        (
            &b"IDAT"[..],
            &[0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1][..],
        ),
        (&b"IEND"[..], &[][..]),
    ] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    out
}

/// Inserts an EXIF APP1 segment holding only an Orientation tag.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one IFD entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The first half of `bytes`: a truncated file.
pub fn truncated(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.len() / 2].to_vec()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The structural similarity (SSIM) of two images of the same size, on
/// their grey levels: the mean over 8 × 8 windows, 4 pixels apart, with
/// the usual constants ((0.01 × 255)², (0.03 × 255)²). 1 is identical;
/// cardex takes 0.98 or more as looking the same.
pub fn ssim(a: &DynamicImage, b: &DynamicImage) -> f64 {
    let (a, b) = (a.to_luma8(), b.to_luma8());
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "SSIM needs images of one size"
    );
    let (w, h) = a.dimensions();
    assert!(w >= 8 && h >= 8, "SSIM needs at least 8 × 8 pixels");
    const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
    const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);
    let (mut total, mut windows) = (0.0, 0u32);
    for y0 in (0..=h - 8).step_by(4) {
        for x0 in (0..=w - 8).step_by(4) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for y in y0..y0 + 8 {
                for x in x0..x0 + 8 {
                    let (pa, pb) = (
                        f64::from(a.get_pixel(x, y)[0]),
                        f64::from(b.get_pixel(x, y)[0]),
                    );
                    sa += pa;
                    sb += pb;
                    saa += pa * pa;
                    sbb += pb * pb;
                    sab += pa * pb;
                }
            }
            let n = 64.0;
            let (ma, mb) = (sa / n, sb / n);
            let (va, vb, cov) = (saa / n - ma * ma, sbb / n - mb * mb, sab / n - ma * mb);
            total += ((2.0 * ma * mb + C1) * (2.0 * cov + C2))
                / ((ma * ma + mb * mb + C1) * (va + vb + C2));
            windows += 1;
        }
    }
    total / f64::from(windows)
}

/// One part of a hand-built multipart body.
#[derive(Debug, Clone)]
pub struct Part {
    /// The form field name (`files` for uploads).
    pub name: String,
    /// Raw bytes of the `filename` parameter, if any (may hold NUL etc.).
    pub file_name: Option<Vec<u8>>,
    /// The content.
    pub bytes: Vec<u8>,
}

impl Part {
    /// A file part.
    pub fn file(name: &str, file_name: &str, bytes: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            file_name: Some(file_name.as_bytes().to_vec()),
            bytes,
        }
    }
}

/// The boundary used by [`multipart_body`].
pub const BOUNDARY: &str = "cardex-test-boundary-7MA4YWxkTrZu0gW";

/// A multipart/form-data body of `parts`, and its content type.
pub fn multipart_body(parts: &[Part]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{}\"", p.name).as_bytes(),
        );
        if let Some(f) = &p.file_name {
            body.extend_from_slice(b"; filename=\"");
            body.extend_from_slice(f);
            body.push(b'"');
        }
        body.extend_from_slice(b"\r\nContent-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(&p.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// `../shared/sample-cards`, beside the repository (as CI has it).
pub fn sample_cards_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/sample-cards")
}

/// The sample cards' `truth.jsonl` lines of one kind (`labeled` or
/// `catalog`), optionally only those that have field `with`.
pub fn sample_truth(kind: &str, with: Option<&str>) -> Vec<serde_json::Value> {
    let dir = sample_cards_dir();
    let text = std::fs::read_to_string(dir.join("truth.jsonl"))
        .unwrap_or_else(|e| panic!("the sample cards are expected at {}: {e}", dir.display()));
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|c| c["kind"] == kind && with.is_none_or(|f| c["fields"].get(f).is_some()))
        .collect()
}
