//! Small PDFs written by hand, for tests of the page split: pages that are
//! one embedded JPEG each (as document scanners write them), pages of
//! text in a standard font, and hostile files (a password, a content
//! stream that takes forever to read).

use std::io::{Cursor, Write};

use image::{ColorType, ImageDecoder, ImageReader};

/// A PDF of the objects `objects` (object `i + 1` is `objects[i]`; object
/// 1 must be the catalog), with `trailer` added to the trailer dictionary.
fn document(objects: &[Vec<u8>], trailer: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(object);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R {trailer}>>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A stream object: `dict` entries, then `data`.
fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

/// Object 1 the catalog, object 2 the page tree of the pages `kids`
/// (object numbers).
fn catalog_and_tree(kids: &[usize]) -> [Vec<u8>; 2] {
    let kids: Vec<String> = kids.iter().map(|k| format!("{k} 0 R")).collect();
    [
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            kids.len()
        )
        .into_bytes(),
    ]
}

/// A PDF with one page per JPEG, each page exactly its image (one point
/// per pixel), the JPEG's bytes embedded unchanged (DCTDecode) — a
/// scanner's PDF.
pub fn jpeg_pdf(jpegs: &[Vec<u8>]) -> Vec<u8> {
    jpeg_pdf_with(jpegs, "")
}

fn jpeg_pdf_with(jpegs: &[Vec<u8>], trailer: &str) -> Vec<u8> {
    let pages: Vec<usize> = (0..jpegs.len()).map(|i| 3 + 3 * i).collect();
    let mut objects = catalog_and_tree(&pages).to_vec();
    for (i, jpeg) in jpegs.iter().enumerate() {
        let decoder = ImageReader::new(Cursor::new(jpeg))
            .with_guessed_format()
            .expect("reading from memory cannot fail")
            .into_decoder()
            .expect("a JPEG");
        let (w, h) = decoder.dimensions();
        let space = match decoder.color_type() {
            ColorType::L8 => "/DeviceGray",
            _ => "/DeviceRGB",
        };
        let page = 3 + 3 * i;
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w} {h}] \
                 /Resources << /XObject << /Im0 {} 0 R >> >> /Contents {} 0 R >>",
                page + 1,
                page + 2
            )
            .into_bytes(),
        );
        objects.push(stream(
            &format!(
                "/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace {space} \
                 /BitsPerComponent 8 /Filter /DCTDecode"
            ),
            jpeg,
        ));
        objects.push(stream(
            "",
            format!("q {w} 0 0 {h} 0 0 cm /Im0 Do Q").as_bytes(),
        ));
    }
    document(&objects, trailer)
}

/// A PDF of US-letter pages, each with one line of text in Helvetica (a
/// standard font, not embedded): pages with no image, to be rendered.
pub fn text_pdf(lines: &[&str]) -> Vec<u8> {
    let pages: Vec<usize> = (0..lines.len()).map(|i| 4 + 2 * i).collect();
    let mut objects = catalog_and_tree(&pages).to_vec();
    objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec());
    for (i, line) in lines.iter().enumerate() {
        let text = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                 /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                5 + 2 * i
            )
            .into_bytes(),
        );
        objects.push(stream(
            "",
            format!("BT /F1 36 Tf 72 700 Td ({text}) Tj ET").as_bytes(),
        ));
    }
    document(&objects, "")
}

/// A PDF of `jpegs` that needs a password to be opened: a standard
/// security handler whose keys match no empty password.
pub fn encrypted_pdf(jpegs: &[Vec<u8>]) -> Vec<u8> {
    let (o, u, id) = ("4f".repeat(32), "55".repeat(32), "1d".repeat(16));
    jpeg_pdf_with(
        jpegs,
        &format!(
            "/Encrypt << /Filter /Standard /V 1 /R 2 /O <{o}> /U <{u}> /P -4 >> \
             /ID [<{id}> <{id}>] "
        ),
    )
}

/// A one-page PDF whose page is a Flate stream of `ops` line drawings: a
/// few hundred KB that take a reader seconds per million (a PDF bomb).
pub fn content_bomb_pdf(ops: usize) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let line = b"0 0 m 612 792 l S\n".repeat(1000);
    for _ in 0..ops.div_ceil(1000) {
        z.write_all(&line).expect("writing to memory cannot fail");
    }
    let content = z.finish().expect("writing to memory cannot fail");
    let mut objects = catalog_and_tree(&[3]).to_vec();
    objects
        .push(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_vec());
    objects.push(stream("/Filter /FlateDecode", &content));
    document(&objects, "")
}
