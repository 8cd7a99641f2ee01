//! The visual signature: which camera a picture came from, readable from decoded pixels.
//!
//! Hearth's isolation tests must be able to look at what a viewer was actually shown (a
//! decoded HLS frame, a JPEG snapshot, possibly scaled) and say whose camera it was. Text
//! is not machine-readable and metadata does not survive a decoder, so every picture
//! carries a strip of large black and white cells along its bottom edge:
//!
//! ```text
//! [W][B] [32 signature bits, MSB first] [16-bit CRC of the signature] [B][W]
//! ```
//!
//! All positions are fractions of the frame size, so the strip is found at any scale.
//! The marker cells calibrate black and white (so brightness or range conversions do not
//! matter), every data cell must be clearly on one side of the midpoint, and the CRC must
//! match; anything else is "no signature" rather than a guess. Cells are 1/52 of 92% of
//! the width (about 23 px at 1280, 11 px at 640) and 9% of the height tall, and only
//! their centre half is sampled, so H.264/JPEG ringing at the edges does not matter.
//!
//! The background colour is derived from the signature too, so two cameras also look
//! different to a person.

use hearth_model::CameraId;
use sha2::{Digest, Sha256};

/// Cells in the strip: 2 start markers, 32 signature bits, 16 CRC bits, 2 end markers.
pub(crate) const CELLS: u32 = 2 + 32 + 16 + 2;

/// Luma (BT.601 limited range) of the strip's white and black cells.
pub(crate) const WHITE_Y: u8 = 235;
pub(crate) const BLACK_Y: u8 = 16;

/// The signature of a camera registered in Hearth: the first 4 bytes (big-endian) of the
/// SHA-256 of its id bytes.
pub fn signature_for(camera: &CameraId) -> u32 {
    first_four(Sha256::digest(camera.as_bytes()).as_slice())
}

/// The signature of a camera run standalone, known only by name: the first 4 bytes
/// (big-endian) of the SHA-256 of the UTF-8 name.
pub fn signature_for_name(name: &str) -> u32 {
    first_four(Sha256::digest(name.as_bytes()).as_slice())
}

fn first_four(digest: &[u8]) -> u32 {
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The RGB colour a decoder shows for the background of a picture with this signature.
///
/// The hue comes from the signature (saturation and value are fixed so text stays
/// readable); the value returned has been through the same BT.601 limited-range YUV
/// conversion the encoder uses, so it is what `ffmpeg -pix_fmt rgb24` gives back, within
/// a few units of compression error.
pub fn expected_background(signature: u32) -> [u8; 3] {
    yuv_to_rgb(background_yuv(signature))
}

/// The background in Y, U, V (BT.601, limited range), as drawn.
pub(crate) fn background_yuv(signature: u32) -> [u8; 3] {
    // Map the whole u32 range onto 0..360 so hues are uniform.
    let hue = ((u64::from(signature) * 360) >> 32) as f32;
    rgb_to_yuv(hsv_to_rgb(hue, 0.6, 0.7))
}

/// Cell colours for a strip carrying `signature` (or a clock value), left to
/// right; `true` is white.
pub(crate) fn strip_cells(signature: u32) -> [bool; CELLS as usize] {
    let mut cells = [false; CELLS as usize];
    cells[0] = true; // start marker: white, black
    cells[CELLS as usize - 1] = true; // end marker: black, white
    let crc = crc16(signature);
    for bit in 0..32 {
        cells[2 + bit] = signature >> (31 - bit) & 1 == 1;
    }
    for bit in 0..16 {
        cells[34 + bit] = crc >> (15 - bit) & 1 == 1;
    }
    cells
}

/// Where a strip sits in a `width` x `height` picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StripLayout {
    pub x0: u32,
    pub x1: u32,
    pub y0: u32,
    pub y1: u32,
}

impl StripLayout {
    /// The signature strip, along the bottom edge.
    pub fn for_size(width: u32, height: u32) -> Self {
        Self {
            x0: width * 4 / 100,
            x1: width * 96 / 100,
            y0: height * 86 / 100,
            y1: height * 95 / 100,
        }
    }

    /// The clock strip, just above the signature strip: the capture time of the
    /// frame, redrawn every frame (see [`read_capture_time`]).
    pub fn clock_for_size(width: u32, height: u32) -> Self {
        Self {
            y0: height * 74 / 100,
            y1: height * 83 / 100,
            ..Self::for_size(width, height)
        }
    }

    /// Pixels to sample for cell `i`: the centre half of its exact (fractional) span.
    pub fn sample_span(&self, i: u32) -> (u32, u32) {
        let w = (self.x1 - self.x0) as f32 / CELLS as f32;
        let start = self.x0 as f32 + w * i as f32;
        centre_half(start, start + w)
    }

    /// Horizontal pixel span `[start, end)` of cell `i`.
    pub fn cell(&self, i: u32) -> (u32, u32) {
        let w = self.x1 - self.x0;
        (self.x0 + w * i / CELLS, self.x0 + w * (i + 1) / CELLS)
    }
}

/// Reads the signature back from a decoded RGB24 picture (`width * height * 3` bytes,
/// rows top to bottom, no padding) of any size.
///
/// Returns `None` when there is no valid strip: the buffer is too small, the markers do
/// not show a clear black/white contrast, a cell is ambiguous, or the CRC fails.
pub fn read_signature(rgb: &[u8], width: u32, height: u32) -> Option<u32> {
    read_strip(rgb, width, height, StripLayout::for_size(width, height))
}

/// Reads the capture time (Unix milliseconds) the camera drew into a decoded RGB24
/// picture, as [`read_signature`] reads the signature.
///
/// The clock strip carries the low 32 bits of the capture time (with the same
/// markers and CRC as the signature strip), which repeat every 49.7 days: the
/// time returned is the one with those bits nearest to `near_ms`, the reader's
/// own clock. A viewer on the camera's machine (or one with a synchronised
/// clock) gets glass-to-glass latency as `now - read_capture_time(..)`.
pub fn read_capture_time(rgb: &[u8], width: u32, height: u32, near_ms: i64) -> Option<i64> {
    let low = read_strip(
        rgb,
        width,
        height,
        StripLayout::clock_for_size(width, height),
    )?;
    Some(nearest_with_low_bits(low, near_ms))
}

/// The value nearest to `near` whose low 32 bits are `low`.
fn nearest_with_low_bits(low: u32, near: i64) -> i64 {
    let base = near & !0xffff_ffff;
    [base - (1 << 32), base, base + (1 << 32)]
        .into_iter()
        .map(|b| b | i64::from(low))
        .min_by_key(|t| t.abs_diff(near))
        .unwrap_or(near)
}

/// The low 32 bits of a capture time, as the clock strip carries them.
pub(crate) fn clock_value(unix_ms: i64) -> u32 {
    unix_ms as u32
}

fn read_strip(rgb: &[u8], width: u32, height: u32, layout: StripLayout) -> Option<u32> {
    let (w, h) = (width as usize, height as usize);
    if width < 32 || height < 18 || rgb.len() < w.checked_mul(h)?.checked_mul(3)? {
        return None;
    }
    let (ry0, ry1) = centre_half(layout.y0 as f32, layout.y1 as f32);
    let mut luma = [0u32; CELLS as usize];
    for (i, mean) in luma.iter_mut().enumerate() {
        let (rx0, rx1) = layout.sample_span(i as u32);
        let (mut sum, mut n) = (0u32, 0u32);
        for y in ry0..ry1 {
            let row = y as usize * w * 3;
            for x in rx0..rx1 {
                let p = row + x as usize * 3;
                sum += luma_of(rgb[p], rgb[p + 1], rgb[p + 2]);
                n += 1;
            }
        }
        *mean = sum / n.max(1);
    }

    let last = CELLS as usize - 1;
    let white = (luma[0] + luma[last]) / 2;
    let black = (luma[1] + luma[last - 1]) / 2;
    // Each marker on its own must be clearly white or black, not just their averages.
    if white < black + 80 || luma[0].min(luma[last]) < black + 60 {
        return None;
    }
    if luma[1].max(luma[last - 1]) + 60 > white {
        return None;
    }
    let mid = (white + black) / 2;
    let margin = (white - black) / 4;
    let mut bits = 0u64;
    for &l in &luma[2..last - 1] {
        let bit = if l >= mid + margin {
            1
        } else if l + margin <= mid {
            0
        } else {
            return None;
        };
        bits = bits << 1 | bit;
    }
    let signature = (bits >> 16) as u32;
    let crc = (bits & 0xffff) as u16;
    (crc16(signature) == crc).then_some(signature)
}

/// Pixels `[lo, hi)` covering the centre half of the span `[a, b)` (fractional pixel
/// coordinates), at least the one pixel under its centre. Sampling around the exact
/// centre matters for narrow cells, whose edge pixels are blends with the neighbours.
fn centre_half(a: f32, b: f32) -> (u32, u32) {
    let centre = (a + b) / 2.0;
    let radius = ((b - a) / 4.0).floor();
    let lo = (centre - radius).floor().max(0.0) as u32;
    let hi = (centre + radius).floor() as u32 + 1;
    (lo, hi.max(lo + 1))
}

/// Approximate BT.601 luma, 0..=255, from RGB.
fn luma_of(r: u8, g: u8, b: u8) -> u32 {
    (77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b)) >> 8
}

/// CRC-16/CCITT-FALSE of the signature's big-endian bytes: catches every single-bit and
/// every burst error up to 16 cells long.
fn crc16(signature: u32) -> u16 {
    let mut crc: u16 = 0xffff;
    for byte in signature.to_be_bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                crc << 1 ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn hsv_to_rgb(hue: f32, saturation: f32, value: f32) -> [u8; 3] {
    let c = value * saturation;
    let h = hue / 60.0;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = value - c;
    let to_u8 = |v: f32| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [to_u8(r), to_u8(g), to_u8(b)]
}

/// RGB to BT.601 limited-range YUV (what decoders assume without VUI colour info).
pub(crate) fn rgb_to_yuv([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    let u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    [clamp_u8(y), clamp_u8(u), clamp_u8(v)]
}

fn yuv_to_rgb([y, u, v]: [u8; 3]) -> [u8; 3] {
    let (y, u, v) = (
        f32::from(y) - 16.0,
        f32::from(u) - 128.0,
        f32::from(v) - 128.0,
    );
    let r = 1.164_383 * y + 1.596_027 * v;
    let g = 1.164_383 * y - 0.391_762 * u - 0.812_968 * v;
    let b = 1.164_383 * y + 2.017_232 * u;
    [clamp_u8(r), clamp_u8(g), clamp_u8(b)]
}

fn clamp_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paints a strip into an RGB buffer the way a perfect decoder would show it.
    pub(crate) fn paint(signature: u32, width: u32, height: u32) -> Vec<u8> {
        let bg = expected_background(signature);
        let mut rgb = bg.repeat((width * height) as usize);
        let layout = StripLayout::for_size(width, height);
        for (i, white) in strip_cells(signature).into_iter().enumerate() {
            let (x0, x1) = layout.cell(i as u32);
            let v = if white { 255 } else { 0 };
            for y in layout.y0..layout.y1 {
                for x in x0..x1 {
                    let p = ((y * width + x) * 3) as usize;
                    rgb[p..p + 3].copy_from_slice(&[v, v, v]);
                }
            }
        }
        rgb
    }

    #[test]
    fn capture_times_are_read_back_near_the_readers_clock() {
        let t: i64 = 1_796_000_000_123; // December 2026
        let low = clock_value(t);
        assert_eq!(nearest_with_low_bits(low, t), t);
        assert_eq!(nearest_with_low_bits(low, t + 5_000), t);
        assert_eq!(nearest_with_low_bits(low, t - 5_000), t);
        // Across a wrap of the low 32 bits, both ways.
        let wrap: i64 = (t & !0xffff_ffff) + (1 << 32);
        for (capture, reader) in [(wrap - 40, wrap + 60), (wrap + 40, wrap - 60)] {
            assert_eq!(nearest_with_low_bits(clock_value(capture), reader), capture);
        }
    }

    #[test]
    fn ids_and_names_hash_to_stable_signatures() {
        let id = CameraId::from_bytes([0u8; 16]);
        // SHA-256 of sixteen zero bytes starts 37 47 08 ff.
        assert_eq!(signature_for(&id), 0x374708ff);
        // SHA-256("") starts e3 b0 c4 42.
        assert_eq!(signature_for_name(""), 0xe3b0c442);
        assert_ne!(signature_for_name("Porch"), signature_for_name("porch"));
        let a = CameraId::random();
        let b = CameraId::random();
        assert_ne!(signature_for(&a), signature_for(&b));
    }

    #[test]
    fn crc_matches_the_reference_check_value() {
        // CRC-16/CCITT-FALSE("123456789") = 0x29B1; check our byte loop on a 4-byte prefix
        // against an independent bitwise computation instead.
        fn reference(bytes: &[u8]) -> u16 {
            let mut crc = 0xffffu16;
            for &b in bytes {
                for i in (0..8).rev() {
                    let bit = (b >> i & 1) as u16;
                    let top = crc >> 15;
                    crc <<= 1;
                    if top ^ bit == 1 {
                        crc ^= 0x1021;
                    }
                }
            }
            crc
        }
        assert_eq!(reference(b"123456789"), 0x29b1);
        for sig in [0u32, 1, 0xdeadbeef, u32::MAX] {
            assert_eq!(crc16(sig), reference(&sig.to_be_bytes()));
        }
    }

    #[test]
    fn strip_layout_has_markers_signature_and_crc() {
        let cells = strip_cells(0x8000_0001);
        assert_eq!(cells.len(), 52);
        assert!(cells[0] && !cells[1], "start marker is white, black");
        assert!(!cells[50] && cells[51], "end marker is black, white");
        assert!(cells[2], "MSB first");
        assert!(cells[2 + 1..2 + 31].iter().all(|c| !c));
        assert!(cells[33], "LSB last");
        let crc = crc16(0x8000_0001);
        for bit in 0..16 {
            assert_eq!(cells[34 + bit], crc >> (15 - bit) & 1 == 1);
        }
    }

    #[test]
    fn reads_back_at_many_sizes() {
        for sig in [
            0u32,
            u32::MAX,
            0xdeadbeef,
            0x0123_4567,
            signature_for_name("Porch"),
        ] {
            for (w, h) in [
                (1280, 720),
                (640, 360),
                (320, 180),
                (1920, 1080),
                (427, 240),
            ] {
                let rgb = paint(sig, w, h);
                assert_eq!(read_signature(&rgb, w, h), Some(sig), "{sig:#x} at {w}x{h}");
            }
        }
    }

    #[test]
    fn rejects_pictures_without_a_valid_strip() {
        let (w, h) = (640, 360);
        // A plain picture.
        assert_eq!(read_signature(&[90u8; 640 * 360 * 3], w, h), None);
        // Too short a buffer.
        let rgb = paint(42, w, h);
        assert_eq!(read_signature(&rgb[..rgb.len() - 1], w, h), None);
        // One flipped data cell breaks the CRC.
        let layout = StripLayout::for_size(w, h);
        let mut flipped = rgb.clone();
        let (x0, x1) = layout.cell(10);
        let old = flipped[((layout.y0 + 5) * w + x0 + 1) as usize * 3];
        for y in layout.y0..layout.y1 {
            for x in x0..x1 {
                let p = ((y * w + x) * 3) as usize;
                flipped[p..p + 3].fill(255 - old);
            }
        }
        assert_eq!(read_signature(&flipped, w, h), None);
        // A grey (ambiguous) cell is refused rather than guessed.
        let mut grey = rgb.clone();
        for y in layout.y0..layout.y1 {
            for x in x0..x1 {
                let p = ((y * w + x) * 3) as usize;
                grey[p..p + 3].fill(128);
            }
        }
        assert_eq!(read_signature(&grey, w, h), None);
        // A mirrored picture reads its bits backwards and fails the CRC.
        let mut mirrored = rgb.clone();
        for row in mirrored.chunks_exact_mut(w as usize * 3) {
            let pixels: Vec<[u8; 3]> = row
                .chunks_exact(3)
                .rev()
                .map(|p| [p[0], p[1], p[2]])
                .collect();
            row.copy_from_slice(pixels.concat().as_slice());
        }
        assert_eq!(read_signature(&mirrored, w, h), None);
    }

    #[test]
    fn backgrounds_differ_and_survive_the_colour_round_trip() {
        let a = expected_background(signature_for_name("Porch"));
        let b = expected_background(signature_for_name("Garden"));
        assert_ne!(a, b);
        for sig in [0u32, 0x4000_0000, 0x8000_0000, 0xc000_0000, u32::MAX] {
            let rgb = expected_background(sig);
            let again = yuv_to_rgb(rgb_to_yuv(rgb));
            for c in 0..3 {
                assert!(
                    rgb[c].abs_diff(again[c]) <= 2,
                    "{sig:#x}: {rgb:?} vs {again:?}"
                );
            }
            // Not washed out: saturation is visible.
            let (max, min) = (*rgb.iter().max().unwrap(), *rgb.iter().min().unwrap());
            assert!(max - min > 60, "{sig:#x}: {rgb:?}");
        }
    }
}
