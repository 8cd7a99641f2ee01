//! An I420 (YUV 4:2:0) picture and the few drawing operations the camera needs.
//!
//! Drawing happens directly in the encoder's input format: a camera at 1280x720 and
//! 15 fps would otherwise spend more time converting RGB to YUV than drawing. Everything
//! on screen is a solid rectangle or a scaled bitmap glyph on a solid box, so the only
//! operations are "fill a rectangle" and "set luma where a glyph bit is on"; glyph boxes
//! keep neutral chroma, which makes white text on black exact at 4:2:0.

use crate::font::{GLYPH, glyph};

/// A planar 4:2:0 picture with tight strides (`width` and `width / 2`).
#[derive(Clone)]
pub(crate) struct Picture {
    width: u32,
    height: u32,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

/// Neutral chroma: grey, black and white have U = V = 128.
pub(crate) const NEUTRAL: u8 = 128;

impl Picture {
    /// A picture of `width` x `height` (both even) filled with `yuv`.
    pub fn new(width: u32, height: u32, yuv: [u8; 3]) -> Self {
        debug_assert!(width & 1 == 0 && height & 1 == 0);
        let luma = (width * height) as usize;
        Self {
            width,
            height,
            y: vec![yuv[0]; luma],
            u: vec![yuv[1]; luma / 4],
            v: vec![yuv[2]; luma / 4],
        }
    }

    #[cfg(test)]
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Fills `[x0, x1) x [y0, y1)` (clipped to the picture) with `yuv`. Chroma covers
    /// every 2x2 block the rectangle touches.
    pub fn fill_rect(&mut self, x0: u32, y0: u32, x1: u32, y1: u32, yuv: [u8; 3]) {
        let (x1, y1) = (x1.min(self.width), y1.min(self.height));
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let w = self.width as usize;
        for row in y0..y1 {
            let start = row as usize * w;
            self.y[start + x0 as usize..start + x1 as usize].fill(yuv[0]);
        }
        let cw = w / 2;
        let (cx0, cx1) = (x0 as usize / 2, (x1 as usize).div_ceil(2));
        for row in y0 / 2..y1.div_ceil(2) {
            let start = row as usize * cw;
            self.u[start + cx0..start + cx1].fill(yuv[1]);
            self.v[start + cx0..start + cx1].fill(yuv[2]);
        }
    }

    /// Draws `text` with its top-left corner at (`x`, `y`), each font pixel `scale` x
    /// `scale` picture pixels, setting only luma (to `luma`) where glyph bits are on.
    /// Characters that would cross the right edge are not drawn.
    pub fn draw_text(&mut self, x: u32, y: u32, scale: u32, text: &str, luma: u8) {
        let advance = GLYPH * scale;
        let w = self.width as usize;
        for (i, c) in text.chars().enumerate() {
            let gx = x + i as u32 * advance;
            if gx + advance > self.width || y + advance > self.height {
                break;
            }
            for (row, bits) in glyph(c).into_iter().enumerate() {
                if bits == 0 {
                    continue;
                }
                for col in 0..GLYPH {
                    if bits >> col & 1 == 0 {
                        continue;
                    }
                    let px = (gx + col * scale) as usize;
                    let py = y + row as u32 * scale;
                    for dy in 0..scale {
                        let start = (py + dy) as usize * w + px;
                        self.y[start..start + scale as usize].fill(luma);
                    }
                }
            }
        }
    }

    /// Luma at (`x`, `y`); for tests.
    #[cfg(test)]
    pub fn luma(&self, x: u32, y: u32) -> u8 {
        self.y[(y * self.width + x) as usize]
    }

    /// Chroma (U, V) of the 2x2 block containing (`x`, `y`); for tests.
    #[cfg(test)]
    pub fn chroma(&self, x: u32, y: u32) -> (u8, u8) {
        let i = ((y / 2) * (self.width / 2) + x / 2) as usize;
        (self.u[i], self.v[i])
    }

    /// Converts to packed RGB24 (BT.601 limited range, nearest chroma), as a decoder
    /// would; lets unit tests run [`crate::read_signature`] without an encoder.
    #[cfg(test)]
    pub fn to_rgb(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.width * self.height * 3) as usize);
        for y in 0..self.height {
            for x in 0..self.width {
                let (u, v) = self.chroma(x, y);
                let (yy, u, v) = (
                    f32::from(self.luma(x, y)) - 16.0,
                    f32::from(u) - 128.0,
                    f32::from(v) - 128.0,
                );
                let c = |f: f32| f.round().clamp(0.0, 255.0) as u8;
                out.push(c(1.164 * yy + 1.596 * v));
                out.push(c(1.164 * yy - 0.392 * u - 0.813 * v));
                out.push(c(1.164 * yy + 2.017 * u));
            }
        }
        out
    }
}

impl openh264::formats::YUVSource for Picture {
    fn dimensions(&self) -> (usize, usize) {
        (self.width as usize, self.height as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let w = self.width as usize;
        (w, w / 2, w / 2)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_rect_clips_and_covers_chroma() {
        let mut p = Picture::new(16, 8, [16, NEUTRAL, NEUTRAL]);
        p.fill_rect(3, 1, 100, 3, [200, 10, 20]);
        assert_eq!(p.luma(2, 1), 16);
        assert_eq!(p.luma(3, 1), 200);
        assert_eq!(p.luma(15, 2), 200);
        assert_eq!(p.luma(15, 3), 16);
        // x = 3 lies in chroma column 1 (pixels 2..4), which the rectangle touches.
        assert_eq!(p.chroma(2, 0), (10, 20));
        assert_eq!(p.chroma(0, 0), (NEUTRAL, NEUTRAL));
        assert_eq!(p.chroma(2, 4), (NEUTRAL, NEUTRAL));
        // Empty and out-of-range rectangles are no-ops.
        let before = p.to_rgb();
        p.fill_rect(5, 5, 5, 7, [0, 0, 0]);
        p.fill_rect(20, 0, 30, 8, [0, 0, 0]);
        assert_eq!(p.to_rgb(), before);
    }

    #[test]
    fn text_is_scaled_glyph_bits() {
        let mut p = Picture::new(64, 32, [16, NEUTRAL, NEUTRAL]);
        p.draw_text(0, 0, 2, "A", 235);
        let rows = glyph('A');
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..8u32 {
                let on = bits >> col & 1 == 1;
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let l = p.luma(col * 2 + dx, row as u32 * 2 + dy);
                    assert_eq!(l == 235, on, "row {row} col {col}");
                }
            }
        }
        // Luma only: chroma stays neutral.
        assert_eq!(p.chroma(4, 4), (NEUTRAL, NEUTRAL));
    }

    #[test]
    fn text_stops_at_the_right_edge() {
        let mut p = Picture::new(20, 10, [16, NEUTRAL, NEUTRAL]);
        // Only two 8-px glyphs fit in 20 px; the third must not wrap or panic.
        p.draw_text(0, 0, 1, "HHH", 235);
        assert!((16..20).all(|x| (0..8).all(|y| p.luma(x, y) == 16)));
        // Too tall: nothing drawn, no panic.
        p.draw_text(0, 5, 1, "H", 100);
        assert!((0..20).all(|x| (5..10).all(|y| p.luma(x, y) != 100)));
    }
}
