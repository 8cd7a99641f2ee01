//! Glyph lookup for the on-screen text.
//!
//! Uses the public-domain 8x8 bitmaps of `font8x8` (Basic Latin, Latin-1, Greek), scaled
//! up by whole pixels when drawn: no font files, no rasteriser, and identical output on
//! every machine. Characters it lacks are drawn as `?`.

use font8x8::{BASIC_FONTS, GREEK_FONTS, LATIN_FONTS, UnicodeFonts};

/// Glyph side in font pixels.
pub(crate) const GLYPH: u32 = 8;

/// The 8 rows of `c`, top first; bit `i` of a row is column `i` from the left.
pub(crate) fn glyph(c: char) -> [u8; 8] {
    BASIC_FONTS
        .get(c)
        .or_else(|| LATIN_FONTS.get(c))
        .or_else(|| GREEK_FONTS.get(c))
        .or_else(|| BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_characters() {
        assert_eq!(glyph(' '), [0; 8]);
        assert_ne!(glyph('A'), [0; 8]);
        assert_ne!(glyph('ü'), [0; 8]);
        assert_eq!(glyph('\u{1F600}'), glyph('?'));
        // 'l' (lower-case L) and 'I' differ, so names are not mangled.
        assert_ne!(glyph('l'), glyph('I'));
    }
}
