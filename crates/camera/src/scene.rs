//! What the camera shows: background, name, local time, frame counter, capture
//! clock and signature strip.
//!
//! ```text
//! +--------------------------------------------+
//! | [Porch                   ]                 |   name (drawn once)
//! | [2025-01-31 17:04:05 CET ]                 |   local time (every frame)
//! | [frame 000123            ]                 |   counter (every frame)
//! |            background colour               |
//! |  [W][B][ capture ms bits ][ crc ][B][W]    |   clock strip (every frame)
//! |  [W][B][ signature bits ][ crc ][B][W]     |   signature strip (drawn once)
//! +--------------------------------------------+
//! ```
//!
//! The clock strip carries the capture time in machine-readable form, so a viewer
//! can measure glass-to-glass latency from decoded pixels
//! ([`crate::read_capture_time`]).
//!
//! A busy camera ([`SimCameraConfig::busy`]) also repaints, every frame, about
//! half of the 8x8 blocks of a region right of centre (above the strips) with
//! new grey levels: detail a viewer's link has to carry, at a bitrate that grows
//! with the picture size, as a real camera's does.
//!
//! Everything static is drawn once; each frame only repaints the dynamic boxes.
//! That keeps drawing to a few microseconds and also lets the encoder code most of the
//! picture as skipped blocks, like a real static camera.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::SimCameraConfig;
use crate::draw::{NEUTRAL, Picture};
use crate::font::GLYPH;
use crate::signature::{BLACK_Y, StripLayout, WHITE_Y, background_yuv, clock_value, strip_cells};

const BLACK: [u8; 3] = [BLACK_Y, NEUTRAL, NEUTRAL];
const WHITE: [u8; 3] = [WHITE_Y, NEUTRAL, NEUTRAL];

pub(crate) struct Scene {
    picture: Picture,
    /// Where the capture time is drawn.
    clock: StripLayout,
    tz: TimeZone,
    /// Picture pixels per font pixel.
    scale: u32,
    margin: u32,
    /// Characters that fit on one label line.
    max_chars: usize,
    /// Widest text (in characters) each label line has shown, so its box erases it.
    label_chars: [usize; 3],
    /// The busy region (x0, y0, x1, y1), if the camera is busy.
    busy: Option<(u32, u32, u32, u32)>,
}

impl Scene {
    pub fn new(cfg: &SimCameraConfig, tz: TimeZone) -> Self {
        let (width, height) = (cfg.width, cfg.height);
        let mut picture = Picture::new(width, height, background_yuv(cfg.signature));

        draw_strip(
            &mut picture,
            StripLayout::for_size(width, height),
            cfg.signature,
        );

        let scale = (height / 180).max(1);
        let margin = (width / 40).max(2) & !1;
        let max_chars = ((width - 2 * margin - 2 * scale) / (GLYPH * scale)) as usize;
        let mut scene = Self {
            picture,
            clock: StripLayout::clock_for_size(width, height),
            tz,
            scale,
            margin,
            max_chars,
            label_chars: [0; 3],
            busy: cfg.busy.then(|| {
                let x0 = (width * 45 / 100) & !7;
                let y0 = (height * 30 / 100) & !7;
                (x0, y0, (width * 96 / 100) & !7, (height * 70 / 100) & !7)
            }),
        };
        scene.label(0, &cfg.name);
        scene
    }

    /// Draws the picture for frame `index` captured at `now`.
    pub fn render(&mut self, now: Timestamp, index: u64) -> &Picture {
        let local = now.to_zoned_datetime(self.tz.clone());
        let time = local.strftime("%Y-%m-%d %H:%M:%S %Z").to_string();
        self.label(1, &time);
        self.label(2, &format!("frame {index:06}"));
        draw_strip(
            &mut self.picture,
            self.clock,
            clock_value(now.as_millisecond()),
        );
        if let Some((x0, y0, x1, y1)) = self.busy {
            // xorshift, seeded by the frame: the same frames for the same index.
            let mut r = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for y in (y0..y1).step_by(8) {
                for x in (x0..x1).step_by(8) {
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    if r & 1 == 1 {
                        let luma = 40 + (r >> 8) as u8 % 176;
                        self.picture
                            .fill_rect(x, y, x + 8, y + 8, [luma, NEUTRAL, NEUTRAL]);
                    }
                }
            }
        }
        &self.picture
    }

    /// Paints label line `line` (0 = top): a black box as wide as the widest text the
    /// line has shown (so previous text is erased), then white text truncated to fit.
    fn label(&mut self, line: u32, text: &str) {
        let s = self.scale;
        let line_height = GLYPH * s + 3 * s;
        let x0 = self.margin;
        let y0 = self.margin + line * line_height;
        let text: String = text.chars().take(self.max_chars).collect();
        let widest = &mut self.label_chars[line as usize];
        *widest = (*widest).max(text.chars().count());
        let box_width = *widest as u32 * GLYPH * s + 2 * s;
        self.picture
            .fill_rect(x0, y0, x0 + box_width, y0 + GLYPH * s + 2 * s, BLACK);
        self.picture.draw_text(x0 + s, y0 + s, s, &text, WHITE_Y);
    }

    #[cfg(test)]
    pub fn picture(&self) -> &Picture {
        &self.picture
    }
}

/// Paints a strip of black and white cells carrying `value`.
fn draw_strip(picture: &mut Picture, strip: StripLayout, value: u32) {
    for (i, white) in strip_cells(value).into_iter().enumerate() {
        let (x0, x1) = strip.cell(i as u32);
        picture.fill_rect(
            x0,
            strip.y0,
            x1,
            strip.y1,
            if white { WHITE } else { BLACK },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{expected_background, read_capture_time, read_signature};

    fn scene(sig: u32, w: u32, h: u32, tz: &str) -> Scene {
        let cfg = SimCameraConfig {
            width: w,
            height: h,
            ..SimCameraConfig::new("Porch", tz, sig)
        };
        Scene::new(&cfg, TimeZone::get(tz).unwrap())
    }

    #[test]
    fn picture_carries_signature_and_background() {
        for (w, h) in [(1280, 720), (640, 360), (128, 72)] {
            let mut s = scene(0xfeed_f00d, w, h, "UTC");
            let rgb = s.render(Timestamp::UNIX_EPOCH, 0).to_rgb();
            assert_eq!(read_signature(&rgb, w, h), Some(0xfeed_f00d), "{w}x{h}");
            assert_eq!(read_capture_time(&rgb, w, h, 0), Some(0), "{w}x{h}");
            let t = Timestamp::from_millisecond(1_796_000_000_123).unwrap();
            let rgb = s.render(t, 1).to_rgb();
            assert_eq!(
                read_capture_time(&rgb, w, h, 1_796_000_004_000),
                Some(1_796_000_000_123),
                "{w}x{h}"
            );
            // Middle right of the picture is plain background.
            let p = (((h / 2) * w + w - w / 10) * 3) as usize;
            let bg = expected_background(0xfeed_f00d);
            for c in 0..3 {
                assert!(
                    rgb[p + c].abs_diff(bg[c]) <= 2,
                    "{:?} vs {bg:?}",
                    &rgb[p..p + 3]
                );
            }
        }
    }

    #[test]
    fn clock_uses_the_camera_time_zone() {
        // 2025-01-31T16:04:05Z is 17:04:05 in Berlin (CET) and 08:04:05 in Los Angeles.
        let now: Timestamp = "2025-01-31T16:04:05Z".parse().unwrap();
        let mut berlin = scene(1, 1280, 720, "Europe/Berlin");
        let mut la = scene(1, 1280, 720, "America/Los_Angeles");
        let expect_berlin = render_text_reference(&berlin, 1, "2025-01-31 17:04:05 CET");
        let expect_la = render_text_reference(&la, 1, "2025-01-31 08:04:05 PST");
        berlin.render(now, 0);
        la.render(now, 0);
        assert!(same_line(berlin.picture(), &expect_berlin, 1, &berlin));
        assert!(same_line(la.picture(), &expect_la, 1, &la));
        assert!(!same_line(berlin.picture(), &expect_la, 1, &berlin));
    }

    #[test]
    fn counter_changes_every_frame() {
        let mut s = scene(1, 640, 360, "UTC");
        let a = s.render(Timestamp::UNIX_EPOCH, 1).to_rgb();
        let b = s.render(Timestamp::UNIX_EPOCH, 2).to_rgb();
        assert_ne!(a, b);
        let again = s.render(Timestamp::UNIX_EPOCH, 1).to_rgb();
        assert_eq!(a, again, "the dynamic label fully erases the previous text");
    }

    #[test]
    fn shorter_text_erases_longer_text() {
        let mut s = scene(1, 640, 360, "UTC");
        s.label(1, "WWWWWWWWWWWW");
        s.label(1, "W");
        let glyph_w = GLYPH * s.scale;
        let line_height = GLYPH * s.scale + 3 * s.scale;
        let y0 = s.margin + line_height;
        let (x0, x1) = (
            s.margin + s.scale + glyph_w,
            s.margin + s.scale + 12 * glyph_w,
        );
        for y in y0..y0 + GLYPH * s.scale {
            for x in x0..x1 {
                assert_eq!(s.picture().luma(x, y), BLACK_Y, "leftover at {x},{y}");
            }
        }
    }

    /// Draws `text` on label line `line` of a fresh copy of the scene's picture.
    fn render_text_reference(s: &Scene, line: u32, text: &str) -> Picture {
        let mut copy = Scene {
            picture: s.picture.clone(),
            tz: s.tz.clone(),
            label_chars: s.label_chars,
            ..*s
        };
        copy.label(line, text);
        copy.picture
    }

    /// Whether label line `line` of `a` and `b` has identical luma.
    fn same_line(a: &Picture, b: &Picture, line: u32, s: &Scene) -> bool {
        let line_height = GLYPH * s.scale + 3 * s.scale;
        let y0 = s.margin + line * line_height;
        (y0..y0 + line_height).all(|y| (0..a.width()).all(|x| a.luma(x, y) == b.luma(x, y)))
    }
}
