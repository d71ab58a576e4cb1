//! Image inspection: is a file an image we can read, which format, how big.
//!
//! Formats are recognised by content (magic bytes), never by file name.
//! Dimensions come from the header and are checked against the pixel limit
//! *before* any pixel is decoded, so a small file declaring 100,000 ×
//! 100,000 pixels is refused without allocating anything. Then the image is
//! decoded once, with allocation limits, to catch truncated or corrupt data.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use image::{ImageFormat, ImageReader, Limits};

/// Default most pixels an image may have: 100 MP.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// The formats cardex accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG / JFIF / EXIF.
    Jpeg,
    /// PNG, 8 or 16 bit.
    Png,
    /// TIFF; the first page is used.
    Tiff,
    /// WebP, lossy or lossless.
    Webp,
    /// GIF; the first frame is used.
    Gif,
}

impl Format {
    fn from_image(format: ImageFormat) -> Option<Self> {
        Some(match format {
            ImageFormat::Jpeg => Self::Jpeg,
            ImageFormat::Png => Self::Png,
            ImageFormat::Tiff => Self::Tiff,
            ImageFormat::WebP => Self::Webp,
            ImageFormat::Gif => Self::Gif,
            _ => return None,
        })
    }

    /// Lower-case name, as stored and shown (`jpeg`, `png`...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Tiff => "tiff",
            Self::Webp => "webp",
            Self::Gif => "gif",
        }
    }

    /// File extension for stored files.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Tiff => "tif",
            Self::Webp => "webp",
            Self::Gif => "gif",
        }
    }
}

/// What inspection learned about a valid image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// The format, from the content.
    pub format: Format,
    /// Width in pixels as stored.
    pub width: u32,
    /// Height in pixels as stored.
    pub height: u32,
}

/// Why a file is not an acceptable image. Each maps to a stable code.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// Content is not a known image format.
    #[error("the file is not an image (its content matches no supported format)")]
    NotAnImage,
    /// A known image format that cardex does not read.
    #[error("{0} images are not supported; use JPEG, PNG, TIFF, WebP or GIF")]
    Unsupported(String),
    /// The header declares more pixels than allowed.
    #[error("the image declares {width} × {height} pixels, more than the limit of {limit} pixels")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit.
        limit: u64,
    },
    /// The header is fine but the pixel data is damaged or cut short.
    #[error("the image is damaged or truncated: {0}")]
    Corrupt(String),
    /// The file could not be read.
    #[error("the file could not be read: {0}")]
    Io(#[from] std::io::Error),
}

impl ImageError {
    /// `Ok` when a `width` × `height` image is within `max_pixels`; the
    /// refusal every decoder gives before it allocates anything.
    pub fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<(), Self> {
        if u64::from(width) * u64::from(height) > max_pixels {
            return Err(Self::TooManyPixels {
                width,
                height,
                limit: max_pixels,
            });
        }
        Ok(())
    }

    /// A stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_file",
            Self::NotAnImage => "not_an_image",
            Self::Unsupported(_) => "unsupported_format",
            Self::TooManyPixels { .. } => "image_too_large",
            Self::Corrupt(_) => "corrupt_image",
            Self::Io(_) => "unreadable_file",
        }
    }
}

/// Checks that `path` holds a readable image of at most `max_pixels`, by
/// content: header first, then one full decode under allocation limits.
pub fn inspect(path: &Path, max_pixels: u64) -> Result<ImageInfo, ImageError> {
    let mut file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Err(ImageError::Empty);
    }
    let guessed = ImageReader::new(BufReader::new(&mut file)).with_guessed_format()?;
    let format = match guessed.format() {
        None => return Err(ImageError::NotAnImage),
        Some(f) => {
            Format::from_image(f).ok_or_else(|| ImageError::Unsupported(format!("{f:?}")))?
        }
    };
    drop(guessed);

    // The JPEG decoder reads its whole input into memory before parsing,
    // even for the header. A JPEG's header is at its start, so the header
    // pass sees only a prefix; other formats stream (TIFF may keep its
    // directory at the end, so it must see the whole file).
    file.rewind()?;
    let header_bytes = match format {
        Format::Jpeg => JPEG_HEADER_LIMIT,
        _ => u64::MAX,
    };
    let (width, height) = open_as(&mut file, format, header_bytes)
        .into_dimensions()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt("the image has no pixels".into()));
    }
    ImageError::check_pixels(width, height, max_pixels)?;

    // Compressed data is smaller than its raw pixels, so the decoder never
    // needs more than that; trailing junk beyond it is ignored, and memory
    // stays bounded by the pixel limit rather than by the file size.
    file.rewind()?;
    let raw_size = u64::from(width) * u64::from(height) * 8 + 1024 * 1024;
    let mut reader = open_as(&mut file, format, raw_size);
    reader.limits(decode_limits(max_pixels));
    reader
        .decode()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    // A JPEG decoder fills a cut-off image with grey rather than failing;
    // the missing end-of-image marker is what gives it away.
    if format == Format::Jpeg && !jpeg_has_end(&mut file)? {
        return Err(ImageError::Corrupt(
            "the JPEG ends before its image data does (no end-of-image marker); the file is cut short".into(),
        ));
    }
    Ok(ImageInfo {
        format,
        width,
        height,
    })
}

/// Whether a JPEG has its end-of-image marker (`FF D9`) after the start of
/// its first scan. Marker segments before the scan (EXIF with its own
/// thumbnail, tables) are skipped by their lengths; inside entropy-coded
/// data every `FF` is stuffed or a restart marker, so `FF D9` there can
/// only be the real end.
fn jpeg_has_end(file: &mut File) -> std::io::Result<bool> {
    file.rewind()?;
    let mut r = BufReader::new(file);
    let mut byte = || -> std::io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        match r.read_exact(&mut b) {
            Ok(()) => Ok(Some(b[0])),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    };
    if (byte()?, byte()?) != (Some(0xFF), Some(0xD8)) {
        return Ok(false);
    }
    // Segments up to the first start-of-scan.
    loop {
        if byte()? != Some(0xFF) {
            return Ok(false);
        }
        let mut marker = byte()?;
        while marker == Some(0xFF) {
            marker = byte()?; // fill bytes
        }
        match marker {
            None | Some(0xD9) => return Ok(false),
            Some(0xDA) => break,
            Some(0x01 | 0xD0..=0xD8) => continue, // no length
            Some(_) => {
                let (Some(hi), Some(lo)) = (byte()?, byte()?) else {
                    return Ok(false);
                };
                for _ in 2..u16::from_be_bytes([hi, lo]) {
                    if byte()?.is_none() {
                        return Ok(false);
                    }
                }
            }
        }
    }
    let mut after_ff = false;
    while let Some(b) = byte()? {
        if after_ff && b == 0xD9 {
            return Ok(true);
        }
        // `FF FF …` is fill: still waiting for the marker byte.
        after_ff = b == 0xFF;
    }
    Ok(false)
}

/// How much of a JPEG the header pass may read.
const JPEG_HEADER_LIMIT: u64 = 16 * 1024 * 1024;

fn open_as(
    file: &mut File,
    format: Format,
    max_bytes: u64,
) -> ImageReader<BufReader<std::io::Take<&mut File>>> {
    ImageReader::with_format(
        BufReader::new(file.take(max_bytes)),
        format_to_image(format),
    )
}

fn format_to_image(format: Format) -> ImageFormat {
    match format {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Tiff => ImageFormat::Tiff,
        Format::Webp => ImageFormat::WebP,
        Format::Gif => ImageFormat::Gif,
    }
}

/// Allocation limits for decoding an image of at most `max_pixels`: room
/// for 16-bit RGBA (8 bytes a pixel) plus decoder scratch space.
pub fn decode_limits(max_pixels: u64) -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(10));
    limits
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb};
    use std::io::Write;

    fn write_png(dir: &Path, name: &str, w: u32, h: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        ImageBuffer::from_pixel(w, h, Rgb([200u8, 10, 10]))
            .save_with_format(&path, ImageFormat::Png)
            .unwrap();
        path
    }

    fn write_jpeg(dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        ImageBuffer::from_fn(64, 48, |x, y| Rgb([x as u8 * 3, y as u8 * 5, 90u8]))
            .save_with_format(&path, ImageFormat::Jpeg)
            .unwrap();
        path
    }

    #[test]
    fn accepts_real_images_whatever_their_name() {
        let tmp = tempfile::tempdir().unwrap();
        let png = write_png(tmp.path(), "looks-like.txt", 30, 20);
        let info = inspect(&png, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(
            info,
            ImageInfo {
                format: Format::Png,
                width: 30,
                height: 20
            }
        );
        let jpg = write_jpeg(tmp.path(), "a.png");
        assert_eq!(
            inspect(&jpg, DEFAULT_MAX_PIXELS).unwrap().format,
            Format::Jpeg
        );
    }

    #[test]
    fn refuses_empty_and_non_images() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("e.jpg");
        File::create(&empty).unwrap();
        assert!(matches!(
            inspect(&empty, DEFAULT_MAX_PIXELS),
            Err(ImageError::Empty)
        ));
        let text = tmp.path().join("t.jpg");
        std::fs::write(&text, "just some text, not a JPEG").unwrap();
        assert_eq!(
            inspect(&text, DEFAULT_MAX_PIXELS).unwrap_err().code(),
            "not_an_image"
        );
        let html = tmp.path().join("h.png");
        std::fs::write(&html, "<!doctype html><html><body>hi</body></html>").unwrap();
        assert_eq!(
            inspect(&html, DEFAULT_MAX_PIXELS).unwrap_err().code(),
            "not_an_image"
        );
    }

    #[test]
    fn refuses_jpegs_cut_short_that_a_decoder_would_fill_with_grey() {
        let tmp = tempfile::tempdir().unwrap();
        for progressive in [false, true] {
            let whole = cardex_testkit::scan_jpeg(900, 700, progressive);
            let path = tmp.path().join("scan.jpg");
            std::fs::write(&path, &whole).unwrap();
            inspect(&path, DEFAULT_MAX_PIXELS).expect("the whole scan is fine");
            std::fs::write(&path, cardex_testkit::cut_to_a_third(&whole)).unwrap();
            let err = inspect(&path, DEFAULT_MAX_PIXELS).unwrap_err();
            assert_eq!(
                err.code(),
                "corrupt_image",
                "progressive={progressive}: {err}"
            );
            // Trailing bytes after the end (some cameras add them) are fine.
            let mut padded = whole.clone();
            padded.extend_from_slice(b"trailing junk");
            std::fs::write(&path, &padded).unwrap();
            inspect(&path, DEFAULT_MAX_PIXELS).expect("junk after the end is harmless");
        }
    }

    #[test]
    fn refuses_truncated_images() {
        let tmp = tempfile::tempdir().unwrap();
        let jpg = write_jpeg(tmp.path(), "a.jpg");
        let bytes = std::fs::read(&jpg).unwrap();
        std::fs::write(&jpg, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(
            inspect(&jpg, DEFAULT_MAX_PIXELS).unwrap_err().code(),
            "corrupt_image"
        );
        let png = write_png(tmp.path(), "b.png", 50, 50);
        let bytes = std::fs::read(&png).unwrap();
        std::fs::write(&png, &bytes[..bytes.len() - 30]).unwrap();
        assert_eq!(
            inspect(&png, DEFAULT_MAX_PIXELS).unwrap_err().code(),
            "corrupt_image"
        );
    }

    #[test]
    fn refuses_declared_pixel_bombs_before_decoding() {
        let tmp = tempfile::tempdir().unwrap();
        let bomb = tmp.path().join("bomb.png");
        let mut f = File::create(&bomb).unwrap();
        f.write_all(&cardex_testkit::png_declaring(100_000, 100_000))
            .unwrap();
        drop(f);
        let err = inspect(&bomb, DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooManyPixels {
                    width: 100_000,
                    height: 100_000,
                    ..
                }
            ),
            "{err:?}"
        );
        // The limit is configurable.
        let small = write_png(tmp.path(), "s.png", 100, 100);
        assert_eq!(
            inspect(&small, 9_999).unwrap_err().code(),
            "image_too_large"
        );
        assert!(inspect(&small, 10_000).is_ok());
    }

    #[test]
    fn refuses_known_but_unsupported_formats() {
        let tmp = tempfile::tempdir().unwrap();
        let bmp = tmp.path().join("x.bmp");
        // A BMP signature: recognised by content, not supported.
        std::fs::write(&bmp, b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0").unwrap();
        let err = inspect(&bmp, DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(
            matches!(err.code(), "unsupported_format" | "not_an_image"),
            "{err:?}"
        );
    }

    #[test]
    fn trailing_junk_does_not_reach_memory() {
        // A JPEG followed by 64 MiB of junk: the check reads a bounded
        // prefix, so it succeeds without loading the junk.
        let tmp = tempfile::tempdir().unwrap();
        let path = write_jpeg(tmp.path(), "long.jpg");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&vec![0u8; 64 << 20]).unwrap();
        drop(f);
        assert_eq!(
            inspect(&path, DEFAULT_MAX_PIXELS).unwrap().format,
            Format::Jpeg
        );
    }
}
