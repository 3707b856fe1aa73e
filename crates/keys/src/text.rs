//! Checks for names people read and trust at a glance (device names,
//! custom field and attachment names), shared by the crates that accept
//! them from other devices.

/// Whether `c` is invisible yet changes how the text around it reads:
/// bidi marks and overrides, zero-width and blank fillers, line
/// separators, tags, variation selectors. "Laptop" must look like what
/// it is, and "scan", U+202E, "fdp.exe" must not pass for a PDF.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Whether `c` shows nothing in text and is no part of an emoji's or a
/// script's joining: an invisible character ([`is_invisible`]) but the
/// zero-width joiner and non-joiner and the variation selectors (emoji,
/// Persian, Indic scripts, CJK variants keep them).
pub fn shows_nothing(c: char) -> bool {
    is_invisible(c)
        && !matches!(c, '\u{200C}' | '\u{200D}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Whether `c` may not appear in a name shown to people: a control
/// character or an invisible one ([`is_invisible`]).
pub fn hides_text(c: char) -> bool {
    c.is_control() || is_invisible(c)
}
