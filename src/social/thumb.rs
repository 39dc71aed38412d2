//! A link card's thumbnail made to fit a platform's byte limit: a JPEG or
//! PNG already small enough goes as it is; anything else is decoded (its
//! size checked before a pixel is decoded, against decompression bombs),
//! scaled down and re-encoded as JPEG until it fits.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Pixels a picture may have before it is decoded at all.
const MAX_PIXELS: u64 = 50_000_000;
/// Memory the decoder may allocate.
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
/// The longest side tried, then smaller ones, each at falling JPEG quality.
const SIDES: [u32; 6] = [2000, 1600, 1200, 900, 600, 400];
const QUALITIES: [u8; 3] = [85, 70, 55];

/// A picture ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumb {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    #[error("not a picture Herald can read: {0}")]
    Unreadable(String),
    #[error("{width}x{height} pixels is more than a thumbnail is made from")]
    TooManyPixels { width: u32, height: u32 },
    #[error("cannot be made smaller than {max} bytes")]
    CannotFit { max: usize },
}

/// `bytes` as a thumbnail of at most `max` bytes.
pub fn fit(bytes: &[u8], max: usize) -> Result<Thumb, ThumbError> {
    let unreadable = |e: &dyn std::fmt::Display| ThumbError::Unreadable(e.to_string());
    let reader = || ImageReader::new(Cursor::new(bytes)).with_guessed_format();
    let format = reader().map_err(|e| unreadable(&e))?.format();
    let (width, height) = reader()
        .map_err(|e| unreadable(&e))?
        .into_dimensions()
        .map_err(|e| unreadable(&e))?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ThumbError::TooManyPixels { width, height });
    }
    match format {
        Some(ImageFormat::Jpeg) if bytes.len() <= max => return Ok(as_is(bytes, "image/jpeg")),
        Some(ImageFormat::Png) if bytes.len() <= max => return Ok(as_is(bytes, "image/png")),
        _ => {}
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut decoder = reader().map_err(|e| unreadable(&e))?;
    decoder.limits(limits);
    let picture = decoder.decode().map_err(|e| unreadable(&e))?;
    for side in SIDES {
        let scaled = if width.max(height) > side {
            picture.thumbnail(side, side)
        } else {
            picture.clone()
        };
        let rgb = DynamicImage::ImageRgb8(scaled.to_rgb8());
        for quality in QUALITIES {
            let mut out = Vec::new();
            JpegEncoder::new_with_quality(&mut out, quality)
                .encode_image(&rgb)
                .map_err(|e| unreadable(&e))?;
            if out.len() <= max {
                return Ok(Thumb {
                    bytes: out,
                    mime: "image/jpeg",
                });
            }
        }
    }
    Err(ThumbError::CannotFit { max })
}

fn as_is(bytes: &[u8], mime: &'static str) -> Thumb {
    Thumb {
        bytes: bytes.to_vec(),
        mime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, RgbImage};

    /// A PNG of `width` x `height` pixels of noise: it compresses badly, so
    /// it is large.
    fn noisy_png(width: u32, height: u32) -> Vec<u8> {
        let mut seed = 0x2545_f491_u32;
        let picture = RgbImage::from_fn(width, height, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            image::Rgb([seed as u8, (seed >> 8) as u8, (seed >> 16) as u8])
        });
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&picture, width, height, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    /// The CRC-32 a PNG chunk ends with.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_small_png_goes_as_it_is() {
        let png = noisy_png(40, 30);
        assert_eq!(fit(&png, 1_000_000).unwrap(), as_is(&png, "image/png"));
    }

    #[test]
    fn a_large_picture_is_scaled_and_re_encoded_under_the_limit() {
        let png = noisy_png(900, 700);
        assert!(png.len() > 1_000_000, "the test picture is {} bytes", png.len());
        let thumb = fit(&png, 1_000_000).unwrap();
        assert_eq!(thumb.mime, "image/jpeg");
        assert!(thumb.bytes.len() <= 1_000_000, "{} bytes", thumb.bytes.len());
        let decoded = image::load_from_memory(&thumb.bytes).unwrap();
        assert_eq!(
            (decoded.width(), decoded.height()),
            (900, 700),
            "scaled only when needed"
        );
        let tight = fit(&png, 60_000).unwrap();
        assert!(tight.bytes.len() <= 60_000);
        let small = image::load_from_memory(&tight.bytes).unwrap();
        assert!(
            small.width() < 900 && small.width() * 7 / 9 == small.height(),
            "aspect kept"
        );
    }

    #[test]
    fn bombs_and_junk_are_refused_before_decoding() {
        // A PNG header claiming 100,000 x 100,000 pixels.
        let mut bomb = noisy_png(1, 1);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(fit(&bomb, 1_000_000), Err(ThumbError::TooManyPixels { .. })));
        assert!(matches!(
            fit(b"<html>not a picture</html>", 1_000_000),
            Err(ThumbError::Unreadable(_))
        ));
        assert!(matches!(
            fit(&noisy_png(300, 300), 200),
            Err(ThumbError::CannotFit { .. })
        ));
    }
}
