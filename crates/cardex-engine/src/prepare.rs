//! Pre-processing for a model: decode within limits, downscale the longest
//! side with a SIMD resizer, turn upright from the EXIF orientation, and
//! encode as JPEG with a SIMD encoder. An image that is already a small
//! enough, upright JPEG is sent as it is, byte for byte. A larger plain
//! JPEG never becomes RGB: libjpeg-turbo decodes it to its Y, Cb and Cr
//! planes, already reduced (1/2, 1/4 or 1/8, in the DCT domain) to above
//! the target size; the planes are resized and turned one by one and
//! encoded as they are.

use std::io::Cursor;
use std::path::Path;

use fast_image_resize::images::{Image as FrImage, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::image::{ImageError, decode_limits};
use crate::turbo::{Decompressor, Plane, Scale};

/// How images are prepared for a model.
#[derive(Debug, Clone, Copy)]
pub struct PrepareOptions {
    /// Longest side sent to the model, in pixels.
    pub max_side: u32,
    /// Most pixels a source image may have.
    pub max_pixels: u64,
    /// JPEG quality of re-encoded images, 1–100.
    pub jpeg_quality: u8,
    /// Prepare plain JPEGs with libjpeg-turbo, on their YCbCr planes,
    /// reduced in the DCT domain by 1/2, 1/4 or 1/8 to above the target
    /// size, which costs a fraction of a full decode to RGB. Off, every
    /// image is decoded at full size to RGB with the `image` crate (what
    /// the benchmark and the tests compare against).
    pub scaled_jpeg_decode: bool,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        Self {
            max_side: 1536,
            max_pixels: crate::image::DEFAULT_MAX_PIXELS,
            jpeg_quality: 90,
            scaled_jpeg_decode: true,
        }
    }
}

/// An image ready to send: encoded bytes and what they are.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its MIME type (`image/jpeg`).
    pub mime: &'static str,
    /// Width after orientation and scaling.
    pub width: u32,
    /// Height after orientation and scaling.
    pub height: u32,
    /// True when the original file is sent unchanged.
    pub passthrough: bool,
}

/// Prepares the image file at `path` for a model.
pub fn prepare_file(path: &Path, options: &PrepareOptions) -> Result<PreparedImage, ImageError> {
    prepare(std::fs::read(path)?, options)
}

/// What a JPEG's frame header (SOFn) declares.
#[derive(Debug, PartialEq)]
struct JpegFrame {
    /// The SOF marker: 0xC0 baseline, 0xC1 extended, 0xC2 progressive, …
    marker: u8,
    /// Bits a sample.
    precision: u8,
    /// Colour components: 1 grey, 3 YCbCr or RGB, 4 CMYK or YCCK.
    components: u8,
}

/// Walks a JPEG's marker segments to its frame header.
fn jpeg_frame(bytes: &[u8]) -> Option<JpegFrame> {
    let mut i = 2; // after SOI
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        // SOF0–SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            return Some(JpegFrame {
                marker,
                precision: *bytes.get(i + 4)?,
                components: *bytes.get(i + 9)?,
            });
        }
        i += 2 + usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
    }
    None
}

/// Prepares encoded image bytes for a model.
pub fn prepare(bytes: Vec<u8>, options: &PrepareOptions) -> Result<PreparedImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(&bytes)).with_guessed_format()?;
    let format = reader.format().ok_or(ImageError::NotAnImage)?;
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    ImageError::check_pixels(width, height, options.max_pixels)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // A small upright JPEG goes as it is, if it is one that every server's
    // decoder reads: 8-bit baseline or progressive, grey or YCbCr (not
    // CMYK, which image's decoder hides by converting).
    let plain_colour = matches!(
        jpeg_frame(&bytes),
        Some(JpegFrame {
            marker: 0xC0..=0xC2,
            precision: 8,
            components: 1 | 3
        })
    );
    if format == ImageFormat::Jpeg
        && plain_colour
        && orientation == Orientation::NoTransforms
        && width.max(height) <= options.max_side
    {
        drop(decoder);
        return Ok(PreparedImage {
            bytes,
            mime: "image/jpeg",
            width,
            height,
            passthrough: true,
        });
    }
    let target = target_size((width, height), options.max_side);
    // CMYK, 12-bit, lossless and arithmetic-coded JPEGs, RGB-coded ones,
    // and any that libjpeg-turbo finds fault with (even a warning, such as
    // data cut short), take the full decode, which treats them as it
    // always has.
    if format == ImageFormat::Jpeg && plain_colour && options.scaled_jpeg_decode {
        match prepare_jpeg_planes(&bytes, target, orientation, options) {
            Ok(prepared) => return Ok(prepared),
            Err(e) => tracing::debug!("planar JPEG preparation failed, decoding in full: {e}"),
        }
    }
    decoder
        .set_limits(decode_limits(options.max_pixels))
        .map_err(corrupt)?;
    let rgb = DynamicImage::from_decoder(decoder)
        .map_err(corrupt)?
        .into_rgb8();
    let extent = (f64::from(rgb.width()), f64::from(rgb.height()));
    let mut img = DynamicImage::ImageRgb8(resize_rgb(rgb, extent, target)?);
    // Turning a small image is cheaper than a large one; the longest side
    // is the same either way.
    img.apply_orientation(orientation);
    let rgb = img.into_rgb8();
    let (w, h) = rgb.dimensions();
    // libjpeg-turbo's encoder, 4:2:0 chroma as cameras and scanners write
    // it: about half the time of a Rust one.
    let out = crate::turbo::encode_rgb(&rgb, options.jpeg_quality)?;
    Ok(PreparedImage {
        bytes: out,
        mime: "image/jpeg",
        width: w,
        height: h,
        passthrough: false,
    })
}

/// Prepares a YCbCr or grey JPEG on its planes: decoded by libjpeg-turbo
/// at the largest DCT-domain reduction fit for `target`
/// ([`Scale::for_target`]), each plane resized (chroma to half the target,
/// 4:2:0, whatever the source's subsampling) and turned, and encoded from
/// the planes. A grey JPEG gets neutral chroma, so every prepared image
/// is a colour JPEG as the full decode makes it. The work is done in
/// buffers kept from earlier preparations ([`Scratch`]).
fn prepare_jpeg_planes(
    bytes: &[u8],
    target: (u32, u32),
    orientation: Orientation,
    options: &PrepareOptions,
) -> Result<PreparedImage, ImageError> {
    let mut scratch = Scratch::take();
    let prepared = prepare_jpeg_planes_in(&mut scratch, bytes, target, orientation, options);
    scratch.give_back();
    prepared
}

/// [`prepare_jpeg_planes`] with the buffers of `scratch`, which it leaves
/// there for the next preparation (what it can get back of them).
fn prepare_jpeg_planes_in(
    scratch: &mut Scratch,
    bytes: &[u8],
    target: (u32, u32),
    orientation: Orientation,
    options: &PrepareOptions,
) -> Result<PreparedImage, ImageError> {
    let mut turbo = Decompressor::new()?;
    let header = turbo.header(bytes)?;
    let size = (header.width, header.height);
    let scale = Scale::for_target(size, target);
    let planes = turbo.decode_planes_into(bytes, &header, scale, options.max_pixels, |len| {
        scratch.buffer(len)
    })?;
    // The picture in each decoded plane, without the padding of a
    // non-integral scale or of a subsampled plane's last sample.
    let extent = scale.extent(size);
    // Where a target side is odd, its last chroma sample covers one luma
    // sample, not two; resizing the chroma to whole samples moves colour by
    // at most half a pixel at that far edge.
    let chroma_target = (target.0.div_ceil(2), target.1.div_ceil(2));
    let unscaled = extent == (f64::from(target.0), f64::from(target.1));
    let y = scratch.resize_plane(planes.y, extent, target)?;
    let [cb, cr] = match planes.chroma {
        // Already the target's 4:2:0 chroma (a small JPEG that is only
        // turned): kept as it is.
        Some([cb, cr])
            if unscaled
                && planes.chroma_step == (2, 2)
                && (cb.width, cb.height) == chroma_target =>
        {
            [cb, cr]
        }
        Some(chroma) => {
            let (across, down) = planes.chroma_step;
            let chroma_extent = (extent.0 / f64::from(across), extent.1 / f64::from(down));
            let [cb, cr] = chroma;
            [
                scratch.resize_plane(cb, chroma_extent, chroma_target)?,
                scratch.resize_plane(cr, chroma_extent, chroma_target)?,
            ]
        }
        None => [neutral_plane(chroma_target), neutral_plane(chroma_target)],
    };
    // Turning small planes is cheaper than a large image; 4:2:0 planes
    // stay 4:2:0 however they are turned.
    let (y, cb, cr) = (
        orient_plane(y, orientation)?,
        orient_plane(cb, orientation)?,
        orient_plane(cr, orientation)?,
    );
    let out = crate::turbo::encode_planes_420(&y, &cb, &cr, options.jpeg_quality)?;
    let (width, height) = (y.width, y.height);
    for plane in [y, cb, cr] {
        scratch.keep(plane.samples);
    }
    Ok(PreparedImage {
        bytes: out,
        mime: "image/jpeg",
        width,
        height,
        passthrough: false,
    })
}

/// The buffers planar preparations work in, kept from one to the next:
/// the decoded planes (4.5–9 MB for a 12 MP scan at 1/2), the resized
/// ones and the resizer's own. Fresh, their pages cost the kernel a fault
/// and a zeroed page per 4 KB on first touch, 2–6 ms a 12 MP scan
/// (`cardex-bench prepare`). Preparations run one a core at a time, so
/// the pool holds one set a core.
#[derive(Default)]
struct Scratch {
    /// Buffers free for any plane, decoded or resized.
    buffers: Vec<Vec<u8>>,
    /// The SIMD resizer, which keeps its intermediate buffer.
    resizer: Resizer,
}

/// Scratch buffers not in use.
static SCRATCH: std::sync::Mutex<Vec<Scratch>> = std::sync::Mutex::new(Vec::new());

/// The cores, read once: `available_parallelism` reads the cgroup's CPU
/// quota from files on Linux, too slow to ask for every card.
static CORES: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| std::thread::available_parallelism().map_or(2, usize::from));

impl Scratch {
    /// Most buffers one set keeps: three decoded planes, three resized.
    const BUFFERS: usize = 6;
    /// Most bytes one set may keep, three times a 12 MP 4:4:4 scan's
    /// (13 MB); a set grown past it by a rare huge scan is dropped after
    /// use.
    const MAX_BYTES: usize = 40 << 20;

    /// A set from the pool, or a new one.
    fn take() -> Self {
        Self::pool().pop().unwrap_or_default()
    }

    /// The pool; a preparation that panicked holding it left it whole.
    fn pool() -> std::sync::MutexGuard<'static, Vec<Scratch>> {
        SCRATCH
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts this set back in the pool, unless it holds too much or the
    /// pool has one a core already.
    fn give_back(self) {
        let bytes = self.buffers.iter().map(Vec::capacity).sum::<usize>()
            + self.resizer.size_of_internal_buffers();
        if bytes > Self::MAX_BYTES {
            return;
        }
        let mut pool = Self::pool();
        if pool.len() < *CORES {
            pool.push(self);
        }
    }

    /// The smallest free buffer of at least `len` bytes' capacity, else
    /// the largest (to grow), else a new one. Its contents are stale.
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        let fits = (0..self.buffers.len())
            .filter(|&i| self.buffers[i].capacity() >= len)
            .min_by_key(|&i| self.buffers[i].capacity());
        let largest = (0..self.buffers.len()).max_by_key(|&i| self.buffers[i].capacity());
        fits.or(largest)
            .map(|i| self.buffers.swap_remove(i))
            .unwrap_or_default()
    }

    /// Keeps `buffer` for a later plane.
    fn keep(&mut self, buffer: Vec<u8>) {
        if buffer.capacity() > 0 && self.buffers.len() < Self::BUFFERS {
            self.buffers.push(buffer);
        }
    }

    /// Resizes the top-left `extent` of `plane` to exactly `target`, as
    /// [`resize_rgb`] does pixels, into a kept buffer, and keeps `plane`'s.
    fn resize_plane(
        &mut self,
        plane: Plane,
        extent: (f64, f64),
        target: (u32, u32),
    ) -> Result<Plane, ImageError> {
        let size = (plane.width, plane.height);
        if size == target && extent == (f64::from(size.0), f64::from(size.1)) {
            return Ok(plane);
        }
        let src =
            ImageRef::new(size.0, size.1, &plane.samples, PixelType::U8).map_err(corrupt_resize)?;
        let len = target.0 as usize * target.1 as usize;
        let mut into = self.buffer(len);
        into.reserve_exact(len.saturating_sub(into.len()));
        into.resize(len, 0);
        let mut dst = FrImage::from_vec_u8(target.0, target.1, into, PixelType::U8)
            .map_err(corrupt_resize)?;
        resize_image(
            &mut self.resizer,
            &src,
            &mut dst,
            Some(extent),
            FilterType::Bilinear,
        )?;
        self.keep(plane.samples);
        Ok(Plane {
            width: target.0,
            height: target.1,
            samples: dst.into_vec(),
        })
    }
}

/// A chroma plane of no colour.
fn neutral_plane((width, height): (u32, u32)) -> Plane {
    Plane {
        width,
        height,
        samples: vec![128; width as usize * height as usize],
    }
}

/// `plane` turned upright from `orientation`.
fn orient_plane(plane: Plane, orientation: Orientation) -> Result<Plane, ImageError> {
    if orientation == Orientation::NoTransforms {
        return Ok(plane);
    }
    let grey = image::GrayImage::from_raw(plane.width, plane.height, plane.samples)
        .ok_or_else(|| ImageError::Corrupt("a plane has the wrong size".into()))?;
    let mut img = DynamicImage::ImageLuma8(grey);
    img.apply_orientation(orientation);
    let grey = img.into_luma8();
    Ok(Plane {
        width: grey.width(),
        height: grey.height(),
        samples: grey.into_raw(),
    })
}

/// The size with the longest side at most `max_side`, aspect kept.
fn target_size((w, h): (u32, u32), max_side: u32) -> (u32, u32) {
    let longest = w.max(h);
    if longest <= max_side {
        return (w, h);
    }
    let scale = f64::from(max_side) / f64::from(longest);
    (
        ((f64::from(w) * scale).round() as u32).clamp(1, max_side),
        ((f64::from(h) * scale).round() as u32).clamp(1, max_side),
    )
}

/// Resizes the top-left `extent` of `img` (all of it but the padding a
/// scaled decode leaves) to exactly `target`; a no-op when it already is.
fn resize_rgb(
    img: image::RgbImage,
    extent: (f64, f64),
    (nw, nh): (u32, u32),
) -> Result<image::RgbImage, ImageError> {
    let (w, h) = img.dimensions();
    if (w, h) == (nw, nh) && extent == (f64::from(w), f64::from(h)) {
        return Ok(img);
    }
    // A triangle filter scaled to the reduction averages every source
    // pixel, as an area filter does, at half the cost of Catmull-Rom.
    let pixels = resize_pixels(
        img.into_raw(),
        (w, h),
        Some(extent),
        (nw, nh),
        PixelType::U8x3,
        FilterType::Bilinear,
    )?;
    image::RgbImage::from_raw(nw, nh, pixels)
        .ok_or_else(|| ImageError::Corrupt("resized buffer has the wrong size".into()))
}

/// Resizes raw 8-bit pixels with the SIMD resizer, from the top-left
/// `extent` of the source when given, else all of it.
fn resize_pixels(
    pixels: Vec<u8>,
    (w, h): (u32, u32),
    extent: Option<(f64, f64)>,
    (nw, nh): (u32, u32),
    kind: PixelType,
    filter: FilterType,
) -> Result<Vec<u8>, ImageError> {
    let src = FrImage::from_vec_u8(w, h, pixels, kind).map_err(corrupt_resize)?;
    let mut dst = FrImage::new(nw, nh, kind);
    resize_image(&mut Resizer::new(), &src, &mut dst, extent, filter)?;
    Ok(dst.into_vec())
}

/// Resizes `src` into `dst` with `resizer` and a convolution `filter`,
/// from the top-left `extent` of `src` when given, else all of it.
fn resize_image(
    resizer: &mut Resizer,
    src: &impl fast_image_resize::IntoImageView,
    dst: &mut FrImage,
    extent: Option<(f64, f64)>,
    filter: FilterType,
) -> Result<(), ImageError> {
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
    if let Some((ew, eh)) = extent {
        options = options.crop(0.0, 0.0, ew, eh);
    }
    resizer.resize(src, dst, &options).map_err(corrupt_resize)
}

/// A resizer's refusal (sizes or buffers that do not fit), as an error.
fn corrupt_resize(e: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt(e.to_string())
}

/// Shortest longest-side an OCR input should have: about 300 dpi for a
/// 5-inch card. Smaller scans are scaled up (at most 3×).
pub const OCR_MIN_SIDE: u32 = 1500;
/// Largest skew corrected, in degrees.
const MAX_SKEW: f32 = 5.0;

/// Pre-processing for OCR: grayscale, low-resolution scans scaled up to
/// about 300 dpi, small rotations (up to 5°) straightened.
pub fn for_ocr(img: DynamicImage) -> Result<image::GrayImage, ImageError> {
    let gray = upscale(img.into_luma8())?;
    let angle = estimate_skew(&gray);
    Ok(if angle.abs() >= 0.2 {
        rotate(&gray, angle)
    } else {
        gray
    })
}

/// MIME type of a card prepared for OCR: binary PGM, 8-bit grey, lossless.
pub const OCR_MIME: &str = "image/x-portable-graymap";

/// Longest side an OCR input keeps: about 480 dpi for a 5-inch card, 300
/// for a letter-size sheet. More only makes Tesseract slower.
pub const OCR_MAX_SIDE: u32 = 2400;

impl PreparedImage {
    /// A grey image for OCR, carried losslessly (as PGM, [`OCR_MIME`]).
    pub fn from_gray(gray: &image::GrayImage) -> Self {
        let (width, height) = gray.dimensions();
        let mut bytes = format!("P5\n{width} {height}\n255\n").into_bytes();
        bytes.extend_from_slice(gray.as_raw());
        Self {
            bytes,
            mime: OCR_MIME,
            width,
            height,
            passthrough: false,
        }
    }

    /// The grey image, when this was made by [`PreparedImage::from_gray`].
    pub fn gray(&self) -> Option<image::GrayImage> {
        if self.mime != OCR_MIME {
            return None;
        }
        let header = format!("P5\n{} {}\n255\n", self.width, self.height);
        let pixels = self.bytes.strip_prefix(header.as_bytes())?;
        image::GrayImage::from_raw(self.width, self.height, pixels.to_vec())
    }
}

/// Prepares the image file at `path` for OCR, from the original: decoded
/// within `max_pixels`, turned upright from its EXIF orientation, grey,
/// scaled only to the resolution Tesseract wants ([`OCR_MAX_SIDE`], and
/// [`for_ocr`]'s upscaling of small scans) and straightened. Nothing is
/// re-compressed, so small type stays sharp.
pub fn prepare_for_ocr(path: &Path, max_pixels: u64) -> Result<PreparedImage, ImageError> {
    prepare_bytes_for_ocr(&std::fs::read(path)?, max_pixels)
}

/// [`prepare_for_ocr`] from encoded bytes.
pub fn prepare_bytes_for_ocr(bytes: &[u8], max_pixels: u64) -> Result<PreparedImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    reader.format().ok_or(ImageError::NotAnImage)?;
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    ImageError::check_pixels(width, height, max_pixels)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    decoder
        .set_limits(decode_limits(max_pixels))
        .map_err(corrupt)?;
    let gray = DynamicImage::from_decoder(decoder)
        .map_err(corrupt)?
        .into_luma8();
    let (nw, nh) = target_size(gray.dimensions(), OCR_MAX_SIDE);
    let gray = if (nw, nh) == gray.dimensions() {
        gray
    } else {
        let (w, h) = gray.dimensions();
        let pixels = resize_pixels(
            gray.into_raw(),
            (w, h),
            None,
            (nw, nh),
            PixelType::U8,
            FilterType::Bilinear,
        )?;
        image::GrayImage::from_raw(nw, nh, pixels)
            .ok_or_else(|| ImageError::Corrupt("resized buffer has the wrong size".into()))?
    };
    let mut img = DynamicImage::ImageLuma8(gray);
    img.apply_orientation(orientation);
    Ok(PreparedImage::from_gray(&for_ocr(img)?))
}

fn upscale(img: image::GrayImage) -> Result<image::GrayImage, ImageError> {
    let (w, h) = img.dimensions();
    let longest = w.max(h);
    if longest >= OCR_MIN_SIDE {
        return Ok(img);
    }
    let factor = (f64::from(OCR_MIN_SIDE) / f64::from(longest)).min(3.0);
    let (nw, nh) = (
        (f64::from(w) * factor) as u32,
        (f64::from(h) * factor) as u32,
    );
    let pixels = resize_pixels(
        img.into_raw(),
        (w, h),
        None,
        (nw, nh),
        PixelType::U8,
        FilterType::CatmullRom,
    )?;
    image::GrayImage::from_raw(nw, nh, pixels)
        .ok_or_else(|| ImageError::Corrupt("resized buffer has the wrong size".into()))
}

/// The skew of the text, in degrees (positive: lines fall to the right),
/// from horizontal projection profiles of dark pixels: the angle at which
/// rows of text line up best gives the sharpest profile.
pub fn estimate_skew(img: &image::GrayImage) -> f32 {
    let (w, h) = img.dimensions();
    let step = (w.max(h) / 800).max(1);
    let mut dark = Vec::new();
    for y in (0..h).step_by(step as usize) {
        for x in (0..w).step_by(step as usize) {
            if img.get_pixel(x, y)[0] < 110 {
                dark.push((x as f32, y as f32));
            }
        }
    }
    if dark.len() < 50 {
        return 0.0;
    }
    let sharpness = |deg: f32| -> f64 {
        let t = deg.to_radians().tan();
        let rows = (h + w) as usize / step as usize + 2;
        let mut hist = vec![0u32; rows * 2];
        let offset = rows as f32;
        for &(x, y) in &dark {
            let r = ((y - x * t) / step as f32 + offset) as usize;
            if let Some(b) = hist.get_mut(r) {
                *b += 1;
            }
        }
        hist.iter().map(|&c| f64::from(c) * f64::from(c)).sum()
    };
    let best = |from: f32, to: f32, by: f32| {
        let mut best = (0.0f32, f64::MIN);
        let mut a = from;
        while a <= to + 1e-4 {
            let s = sharpness(a);
            if s > best.1 {
                best = (a, s);
            }
            a += by;
        }
        best.0
    };
    let coarse = best(-MAX_SKEW, MAX_SKEW, 0.5);
    best(coarse - 0.5, coarse + 0.5, 0.1)
}

/// Rotates by `-angle` degrees about the centre (undoing a skew of
/// `angle`), bilinear, filling with white.
fn rotate(img: &image::GrayImage, angle: f32) -> image::GrayImage {
    let (w, h) = img.dimensions();
    let (sin, cos) = angle.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    image::GrayImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        // Source of this output pixel: rotate back by +angle.
        let sx = cx + dx * cos - dy * sin;
        let sy = cy + dx * sin + dy * cos;
        if sx < 0.0 || sy < 0.0 || sx >= (w - 1) as f32 || sy >= (h - 1) as f32 {
            return image::Luma([255]);
        }
        let (x0, y0) = (sx as u32, sy as u32);
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let p = |x, y| f32::from(img.get_pixel(x, y)[0]);
        let top = p(x0, y0) * (1.0 - fx) + p(x0 + 1, y0) * fx;
        let bottom = p(x0, y0 + 1) * (1.0 - fx) + p(x0 + 1, y0 + 1) * fx;
        image::Luma([(top * (1.0 - fy) + bottom * fy).round() as u8])
    })
}

fn corrupt(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(l) => {
            ImageError::Corrupt(format!("over the decoding limits: {l}"))
        }
        other => ImageError::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GenericImageView, ImageBuffer, Rgb};

    fn encode(img: &image::RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A landscape image, red on the left half, blue on the right.
    fn halves(w: u32, h: u32) -> image::RgbImage {
        ImageBuffer::from_fn(w, h, |x, _| {
            if x < w / 2 {
                Rgb([220, 0, 0])
            } else {
                Rgb([0, 0, 220])
            }
        })
    }

    #[test]
    fn reused_scratch_prepares_as_fresh_buffers_do() {
        // Buffers left by a larger image, by another subsampling, by a
        // grey or a turned one, or by a decode that failed, must not show
        // through in the next image.
        let card =
            std::fs::read(cardex_testkit::sample_cards_dir().join("card-01-0002.jpg")).unwrap();
        let mut full_chroma = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut full_chroma, 90);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_1_1);
        let pixels = halves(1300, 1000);
        encoder
            .encode(pixels.as_raw(), 1300, 1000, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let mut grey = Cursor::new(Vec::new());
        image::GrayImage::from_fn(1400, 900, |x, y| image::Luma([((x ^ y) & 0xFF) as u8]))
            .write_to(&mut grey, ImageFormat::Jpeg)
            .unwrap();
        let small = encode(&halves(300, 200), ImageFormat::Jpeg);
        let turned = Orientation::Rotate90;
        let upright = Orientation::NoTransforms;
        let images = [
            (full_chroma, 800, upright),
            (cardex_testkit::scan_jpeg(3000, 2000, false), 1536, upright),
            (card.clone(), 700, upright),
            (cardex_testkit::truncated(&card), 700, upright),
            (card.clone(), 500, turned),
            (grey.into_inner(), 1000, upright),
            // Only turned: its chroma is kept as decoded.
            (small, 300, turned),
            (cardex_testkit::scan_jpeg(2400, 1800, true), 900, upright),
            (encode(&halves(1200, 900), ImageFormat::Jpeg), 1000, upright),
        ];
        let mut kept = Scratch::default();
        for (i, (bytes, max_side, orientation)) in images.iter().enumerate() {
            let options = PrepareOptions {
                max_side: *max_side,
                ..Default::default()
            };
            let size = Decompressor::new().unwrap().header(bytes).unwrap();
            let target = target_size((size.width, size.height), *max_side);
            let prepare = |scratch: &mut Scratch| {
                prepare_jpeg_planes_in(scratch, bytes, target, *orientation, &options)
                    .map(|p| p.bytes)
                    .map_err(|e| e.to_string())
            };
            let reused = prepare(&mut kept);
            assert_eq!(reused, prepare(&mut Scratch::default()), "image {i}");
            assert_eq!(reused.is_err(), i == 3, "image {i}: {reused:?}");
            assert!(!kept.buffers.is_empty(), "image {i}: nothing kept");
            let bytes = kept.buffers.iter().map(Vec::capacity).sum::<usize>();
            assert!(bytes <= Scratch::MAX_BYTES, "image {i}: {bytes} bytes kept");
        }
    }

    #[test]
    fn small_upright_jpegs_pass_through_unchanged() {
        let bytes = encode(&halves(300, 200), ImageFormat::Jpeg);
        let p = prepare(bytes.clone(), &PrepareOptions::default()).unwrap();
        assert!(p.passthrough);
        assert_eq!(p.bytes, bytes);
        assert_eq!((p.width, p.height), (300, 200));
    }

    #[test]
    fn large_images_are_downscaled_keeping_aspect() {
        let bytes = encode(&halves(4000, 3000), ImageFormat::Png);
        let p = prepare(bytes, &PrepareOptions::default()).unwrap();
        assert!(!p.passthrough);
        assert_eq!((p.width, p.height), (1536, 1152));
        let img = image::load_from_memory(&p.bytes).unwrap();
        assert_eq!(img.dimensions(), (1536, 1152));
        assert_eq!(image::guess_format(&p.bytes).unwrap(), ImageFormat::Jpeg);
        // Colours survive: left red, right blue.
        let left = img.get_pixel(100, 500);
        let right = img.get_pixel(1400, 500);
        assert!(left[0] > 180 && left[2] < 60, "{left:?}");
        assert!(right[2] > 180 && right[0] < 60, "{right:?}");
    }

    #[test]
    fn other_formats_become_jpeg() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Tiff,
            ImageFormat::WebP,
            ImageFormat::Gif,
        ] {
            let p = prepare(encode(&halves(64, 48), format), &PrepareOptions::default()).unwrap();
            assert_eq!(
                image::guess_format(&p.bytes).unwrap(),
                ImageFormat::Jpeg,
                "{format:?}"
            );
            assert_eq!((p.width, p.height), (64, 48));
        }
    }

    #[test]
    fn jpeg_frame_headers_are_read() {
        let rgb = cardex_testkit::jpeg(1);
        let frame = jpeg_frame(&rgb).unwrap();
        assert_eq!(
            (frame.marker, frame.precision, frame.components),
            (0xC0, 8, 3)
        );
        let cmyk = jpeg_frame(&cardex_testkit::cmyk_jpeg(1)).unwrap();
        assert_eq!(cmyk.components, 4);
        let tagged = cardex_testkit::with_exif_orientation(&rgb, 6);
        assert_eq!(jpeg_frame(&tagged), Some(frame));
        assert_eq!(jpeg_frame(&rgb[..20]), None);
        assert_eq!(jpeg_frame(b"\xFF\xD8\xFF"), None);
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 60 × 40 JPEG tagged "rotate 90° clockwise" must arrive 40 × 60,
        // with the left (red) half now on top.
        let jpeg = encode(&halves(60, 40), ImageFormat::Jpeg);
        let tagged = cardex_testkit::with_exif_orientation(&jpeg, 6);
        let p = prepare(tagged, &PrepareOptions::default()).unwrap();
        assert!(!p.passthrough);
        assert_eq!((p.width, p.height), (40, 60));
        let img = image::load_from_memory(&p.bytes).unwrap();
        let top = img.get_pixel(20, 5);
        let bottom = img.get_pixel(20, 55);
        assert!(top[0] > 150 && top[2] < 90, "top {top:?}");
        assert!(bottom[2] > 150 && bottom[0] < 90, "bottom {bottom:?}");
    }

    #[test]
    fn pixel_limit_is_checked_before_decoding() {
        let bomb = cardex_testkit::png_declaring(100_000, 100_000);
        let err = prepare(bomb, &PrepareOptions::default()).unwrap_err();
        assert_eq!(err.code(), "image_too_large");
        assert_eq!(
            prepare(Vec::new(), &PrepareOptions::default())
                .unwrap_err()
                .code(),
            "empty_file"
        );
        assert_eq!(
            prepare(b"not an image".to_vec(), &PrepareOptions::default())
                .unwrap_err()
                .code(),
            "not_an_image"
        );
    }

    /// `bytes` prepared with `options` twice: with the scaled JPEG decode
    /// and with the full one.
    fn scaled_and_full(bytes: &[u8], options: PrepareOptions) -> (PreparedImage, PreparedImage) {
        let scaled = prepare(bytes.to_vec(), &options).unwrap();
        let full = PrepareOptions {
            scaled_jpeg_decode: false,
            ..options
        };
        (scaled, prepare(bytes.to_vec(), &full).unwrap())
    }

    /// SSIM of two prepared images, which must be of one size.
    fn ssim(a: &PreparedImage, b: &PreparedImage) -> f64 {
        assert_eq!((a.width, a.height), (b.width, b.height));
        cardex_testkit::ssim(
            &image::load_from_memory(&a.bytes).unwrap(),
            &image::load_from_memory(&b.bytes).unwrap(),
        )
    }

    /// The scale libjpeg-turbo decodes a plain JPEG at for `max_side`,
    /// after checking that it does (rather than leaving it to the full
    /// decode, which would make any comparison trivial).
    fn scaled_decode(jpeg: &[u8], max_side: u32) -> Scale {
        let size = image::load_from_memory(jpeg).unwrap().dimensions();
        let target = target_size(size, max_side);
        let scale = Scale::for_target(size, target);
        let mut turbo = Decompressor::new().unwrap();
        let header = turbo.header(jpeg).unwrap();
        let planes = turbo.decode_planes(jpeg, &header, scale, u64::MAX).unwrap();
        // The luma plane is padded to whole chroma samples.
        let (w, h) = scale.of(size);
        assert!(
            (w..=w + 1).contains(&planes.y.width) && (h..=h + 1).contains(&planes.y.height),
            "{}×{} for {w}×{h}",
            planes.y.width,
            planes.y.height
        );
        scale
    }

    #[test]
    fn scaled_decode_looks_like_the_full_decode_on_the_sample_cards() {
        // The cards are at most 1536 px, so they go through as they are at
        // the default size; smaller sizes make the reductions happen. (At
        // under 180 px, the re-encode's own 8 × 8 blocks outweigh any
        // difference in decoding; 1/8 is tried on the 12 MP scans.)
        let mut cards: Vec<_> = std::fs::read_dir(cardex_testkit::sample_cards_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .collect();
        cards.sort();
        assert!(cards.len() >= 10, "sample cards missing: {cards:?}");
        let mut scales = std::collections::BTreeSet::new();
        for path in &cards {
            let bytes = std::fs::read(path).unwrap();
            for max_side in [1000, 700, 512, 360, 180] {
                let options = PrepareOptions {
                    max_side,
                    ..Default::default()
                };
                let (scaled, full) = scaled_and_full(&bytes, options);
                if scaled.passthrough {
                    assert!(full.passthrough);
                    continue;
                }
                let similar = ssim(&scaled, &full);
                let scale = scaled_decode(&bytes, max_side);
                assert!(
                    similar >= 0.98,
                    "{} to {max_side} px at {scale:?}: SSIM {similar:.4}",
                    path.display()
                );
                scales.insert(scale);
            }
        }
        assert_eq!(
            scales.into_iter().collect::<Vec<_>>(),
            [Scale::Full, Scale::Half, Scale::Quarter]
        );
    }

    #[test]
    fn scaled_decode_looks_like_the_full_decode_on_12_mp_scans() {
        // A sample card at 12 MP, baseline and progressive, as a scanner
        // writes it.
        let card = image::open(cardex_testkit::sample_cards_dir().join("card-01-0002.jpg"))
            .unwrap()
            .into_rgb8();
        let big = resize_pixels(
            card.clone().into_raw(),
            card.dimensions(),
            None,
            (4000, 2441),
            PixelType::U8x3,
            FilterType::CatmullRom,
        )
        .unwrap();
        for progressive in [false, true] {
            let mut jpeg = Vec::new();
            let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
            encoder.set_progressive(progressive);
            encoder
                .encode(&big, 4000, 2441, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            assert_eq!(
                jpeg_frame(&jpeg).unwrap().marker,
                0xC0 + u8::from(progressive) * 2
            );
            for (max_side, scale) in [
                (1536, Scale::Half),
                (500, Scale::Quarter),
                (250, Scale::Eighth),
            ] {
                assert_eq!(scaled_decode(&jpeg, max_side), scale);
                let options = PrepareOptions {
                    max_side,
                    ..Default::default()
                };
                let (scaled, full) = scaled_and_full(&jpeg, options);
                assert_eq!(scaled.width.max(scaled.height), max_side);
                let similar = ssim(&scaled, &full);
                assert!(
                    similar >= 0.98,
                    "progressive {progressive}, {max_side} px: SSIM {similar:.4}"
                );
            }
        }
        // Noise in every pixel, the hardest case for any resizer.
        let noise = cardex_testkit::scan_jpeg(4000, 3000, false);
        assert_eq!(scaled_decode(&noise, 1536), Scale::Half);
        let (scaled, full) = scaled_and_full(&noise, PrepareOptions::default());
        assert_eq!((scaled.width, scaled.height), (1536, 1152));
        let similar = ssim(&scaled, &full);
        assert!(similar >= 0.98, "12 MP noise: SSIM {similar:.4}");
    }

    #[test]
    fn scaled_decode_orients_and_reads_grey_jpegs() {
        // Stored 4000 × 2500, black left half, tagged "rotate 90°": upright
        // 960 × 1536 with the black half on top, both ways alike.
        let sideways = cardex_testkit::sideways_jpeg(4000, 2500);
        assert_eq!(scaled_decode(&sideways, 1536), Scale::Half);
        let (scaled, full) = scaled_and_full(&sideways, PrepareOptions::default());
        assert_eq!((scaled.width, scaled.height), (960, 1536));
        let img = image::load_from_memory(&scaled.bytes).unwrap();
        assert!(img.get_pixel(480, 100)[0] < 40, "black on top");
        assert!(img.get_pixel(480, 1436)[0] > 215, "white below");
        assert!(ssim(&scaled, &full) >= 0.98);
        // One grey component.
        let grey = image::GrayImage::from_fn(4000, 2600, |x, y| {
            image::Luma([if (x / 40 + y / 40) % 2 == 0 { 30 } else { 220 }])
        });
        let mut jpeg = Cursor::new(Vec::new());
        grey.write_to(&mut jpeg, ImageFormat::Jpeg).unwrap();
        let jpeg = jpeg.into_inner();
        assert_eq!(jpeg_frame(&jpeg).unwrap().components, 1);
        assert_eq!(scaled_decode(&jpeg, 1536), Scale::Half);
        let (scaled, full) = scaled_and_full(&jpeg, PrepareOptions::default());
        assert_eq!((scaled.width, scaled.height), (1536, 998));
        assert!(ssim(&scaled, &full) >= 0.98);
    }

    #[test]
    fn every_chroma_subsampling_keeps_its_colours_in_place() {
        // Four coloured quadrants with dark ruled lines, stored with each
        // subsampling libjpeg-turbo names: prepared on the planes, each
        // must look like the full decode, colours and edges in place.
        let colours = [[200, 40, 40], [40, 170, 60], [50, 70, 200], [235, 230, 210]];
        let (w, h) = (3001u16, 2001u16);
        let picture = image::RgbImage::from_fn(u32::from(w), u32::from(h), |x, y| {
            if y % 50 < 3 {
                return Rgb([20, 20, 20]);
            }
            Rgb(colours[usize::from(x >= 1500) + 2 * usize::from(y >= 1000)])
        });
        use jpeg_encoder::SamplingFactor as F;
        for factor in [F::F_1_1, F::F_2_1, F::F_2_2, F::F_1_2, F::F_4_1] {
            let mut jpeg = Vec::new();
            let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 92);
            encoder.set_sampling_factor(factor);
            encoder
                .encode(picture.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
                .unwrap();
            let (scaled, full) = scaled_and_full(&jpeg, PrepareOptions::default());
            assert_eq!((scaled.width, scaled.height), (1536, 1024), "{factor:?}");
            let similar = ssim(&scaled, &full);
            assert!(similar >= 0.98, "{factor:?}: SSIM {similar:.4}");
            let (a, b) = (
                image::load_from_memory(&scaled.bytes).unwrap().into_rgb8(),
                image::load_from_memory(&full.bytes).unwrap().into_rgb8(),
            );
            let diff: u64 = a
                .as_raw()
                .iter()
                .zip(b.as_raw())
                .map(|(&p, &q)| u64::from(p.abs_diff(q)))
                .sum();
            let mean = diff as f64 / a.as_raw().len() as f64;
            assert!(mean < 3.0, "{factor:?}: mean difference {mean:.2}");
            // The middle of each quadrant has its colour.
            for (i, colour) in colours.iter().enumerate() {
                let (x, y) = (384 + 768 * (i as u32 % 2), 275 + 512 * (i as u32 / 2));
                let got = a.get_pixel(x, y).0;
                for c in 0..3 {
                    assert!(
                        got[c].abs_diff(colour[c]) <= 12,
                        "{factor:?}: quadrant {i} is {got:?}, not {colour:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn planes_are_turned_for_every_orientation_at_odd_sizes() {
        // 601 × 401, 4:2:0, a red block in the top-left corner: small enough
        // to need no resize, so only the turn (and the kept chroma) acts.
        let picture = image::RgbImage::from_fn(601, 401, |x, y| {
            Rgb(if x < 150 && y < 100 {
                [210, 30, 30]
            } else {
                [240, 240, 235]
            })
        });
        let mut plain = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut plain, 92);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        encoder
            .encode(picture.as_raw(), 601, 401, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        for orientation in 2..=8u16 {
            let jpeg = cardex_testkit::with_exif_orientation(&plain, orientation);
            let (planar, full) = scaled_and_full(&jpeg, PrepareOptions::default());
            assert!(!planar.passthrough);
            assert_eq!(
                (planar.width, planar.height),
                (full.width, full.height),
                "orientation {orientation}"
            );
            let similar = ssim(&planar, &full);
            assert!(
                similar >= 0.98,
                "orientation {orientation}: SSIM {similar:.4}"
            );
            // The red block is wherever the full decode put it.
            let (a, b) = (
                image::load_from_memory(&planar.bytes).unwrap().into_rgb8(),
                image::load_from_memory(&full.bytes).unwrap().into_rgb8(),
            );
            let reds = |img: &image::RgbImage| {
                img.enumerate_pixels()
                    .filter(|(_, _, p)| p[0] > 150 && p[1] < 90)
                    .map(|(x, y, _)| (x, y))
                    .fold((u32::MAX, u32::MAX, 0, 0), |(x0, y0, x1, y1), (x, y)| {
                        (x0.min(x), y0.min(y), x1.max(x), y1.max(y))
                    })
            };
            let (got, want) = (reds(&a), reds(&b));
            let close = |p: u32, q: u32| p.abs_diff(q) <= 2;
            assert!(
                close(got.0, want.0)
                    && close(got.1, want.1)
                    && close(got.2, want.2)
                    && close(got.3, want.3),
                "orientation {orientation}: red at {got:?}, not {want:?}"
            );
        }
    }

    #[test]
    fn planes_are_encoded_only_when_laid_out_for_420() {
        let plane = |width, height| Plane {
            width,
            height,
            samples: vec![128; (width * height) as usize],
        };
        let jpeg =
            crate::turbo::encode_planes_420(&plane(101, 75), &plane(51, 38), &plane(51, 38), 90)
                .unwrap();
        let img = image::load_from_memory(&jpeg).unwrap();
        assert_eq!(img.dimensions(), (101, 75));
        assert!(
            img.to_rgb8()
                .pixels()
                .all(|p| p.0.iter().all(|&c| c.abs_diff(128) <= 1))
        );
        for (cb, cr) in [
            ((50, 38), (51, 38)),
            ((51, 38), (51, 37)),
            ((101, 75), (101, 75)),
        ] {
            let err = crate::turbo::encode_planes_420(
                &plane(101, 75),
                &plane(cb.0, cb.1),
                &plane(cr.0, cr.1),
                90,
            )
            .unwrap_err();
            assert!(err.to_string().contains("4:2:0"), "{err}");
        }
    }

    #[test]
    fn odd_jpegs_take_the_full_decode() {
        // CMYK: libjpeg-turbo would need colour management; the full
        // decode converts it, so both ways give the same bytes.
        let cmyk = cardex_testkit::cmyk_jpeg(3);
        let (scaled, full) = scaled_and_full(&cmyk, PrepareOptions::default());
        assert_eq!(scaled.bytes, full.bytes);
        assert_eq!((scaled.width, scaled.height), (40, 30));
        // Cut short: libjpeg-turbo's warning sends it the full way, which
        // fills in grey as it always has (uploads refuse such files before
        // this, in `image::inspect`).
        let cut = cardex_testkit::cut_to_a_third(&cardex_testkit::scan_jpeg(2000, 1500, false));
        let (scaled, full) = scaled_and_full(&cut, PrepareOptions::default());
        assert_eq!(scaled.bytes, full.bytes);
        assert_eq!((scaled.width, scaled.height), (1536, 1152));
    }

    /// White page with dark horizontal bars (text lines), skewed by `deg`.
    fn lines_page(deg: f32) -> image::GrayImage {
        let t = deg.to_radians().tan();
        image::GrayImage::from_fn(1200, 800, |x, y| {
            let yy = y as f32 - (x as f32 - 600.0) * t;
            let on_line = (yy as i32).rem_euclid(60) < 8 && (100..1100).contains(&x);
            image::Luma([if on_line { 20 } else { 240 }])
        })
    }

    #[test]
    fn skew_is_measured_and_straightened() {
        for deg in [-3.0f32, -1.0, 0.0, 2.0, 4.0] {
            let est = estimate_skew(&lines_page(deg));
            assert!((est - deg).abs() <= 0.2, "skew {deg}: estimated {est}");
        }
        let fixed = for_ocr(DynamicImage::ImageLuma8(lines_page(3.0))).unwrap();
        let left = estimate_skew(&fixed);
        assert!(left.abs() <= 0.2, "after straightening: {left}");
    }

    #[test]
    fn ocr_reads_the_original_grey_and_upright() {
        // Light halves (no dark pixels, so no skew is seen).
        let light = |w: u32, h: u32| {
            ImageBuffer::from_fn(w, h, |x, _| {
                Rgb(if x < w / 2 { [200; 3] } else { [250; 3] })
            })
        };
        // A large PNG: grey, full resolution up to OCR_MAX_SIDE, no JPEG.
        let png = encode(&light(3000, 2000), ImageFormat::Png);
        let p = prepare_bytes_for_ocr(&png, crate::image::DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(p.mime, OCR_MIME);
        assert_eq!((p.width, p.height), (2400, 1600));
        let gray = p.gray().unwrap();
        assert_eq!(gray.dimensions(), (2400, 1600));
        let (left, right) = (gray.get_pixel(100, 800)[0], gray.get_pixel(2300, 800)[0]);
        assert_eq!((left, right), (200, 250));
        assert_eq!(gray.get_pixel(1195, 800)[0], left, "edges stay sharp");
        // EXIF orientation is applied; small scans are scaled up.
        let jpeg = encode(&light(600, 400), ImageFormat::Jpeg);
        let tagged = cardex_testkit::with_exif_orientation(&jpeg, 6);
        let p = prepare_bytes_for_ocr(&tagged, crate::image::DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((p.width, p.height), (1000, 1500));
        let gray = p.gray().unwrap();
        assert!(
            gray.get_pixel(500, 50)[0].abs_diff(200) < 10,
            "left half on top"
        );
        assert!(gray.get_pixel(500, 1450)[0].abs_diff(250) < 10);
        // Limits hold as for the model's copy.
        let bomb = cardex_testkit::png_declaring(100_000, 100_000);
        assert_eq!(
            prepare_bytes_for_ocr(&bomb, crate::image::DEFAULT_MAX_PIXELS)
                .unwrap_err()
                .code(),
            "image_too_large"
        );
        assert!(PreparedImage::from_gray(&gray).gray().is_some());
        let model = prepare(jpeg, &PrepareOptions::default()).unwrap();
        assert!(
            model.gray().is_none(),
            "a JPEG for a model is not an OCR image"
        );
    }

    #[test]
    fn small_scans_are_scaled_up_for_ocr() {
        let small =
            DynamicImage::ImageLuma8(image::GrayImage::from_pixel(600, 400, image::Luma([250])));
        let out = for_ocr(small).unwrap();
        assert_eq!(out.dimensions(), (1500, 1000));
        let tiny =
            DynamicImage::ImageLuma8(image::GrayImage::from_pixel(100, 60, image::Luma([250])));
        assert_eq!(
            for_ocr(tiny).unwrap().dimensions(),
            (300, 180),
            "at most 3x"
        );
        let big =
            DynamicImage::ImageLuma8(image::GrayImage::from_pixel(1600, 1000, image::Luma([250])));
        assert_eq!(for_ocr(big).unwrap().dimensions(), (1600, 1000));
    }
}
