//! Go's `path/filepath.Match` (golang/go `src/path/filepath/match.go`): `*`, `?`, `[...]`
//! classes and `\` escapes, compiled once and matched with two pointers, no recursion.
//!
//! A malformed pattern is an error only once matching reaches the malformed chunk (the part
//! after the last `*` before the fault): `filepath.Match` checks each chunk it tries in full but
//! stops at the first chunk that matches nowhere (unlike `path.Match`, which checks the rest).

use super::PatternError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Elem {
    /// A run of `*`: any bytes but `/`.
    Star,
    /// A literal byte (`\` escapes included).
    Byte(u8),
    /// `?`: one rune but `/`.
    AnyRune,
    /// `[...]` / `[^...]`: one rune in (or out of) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(u32, u32)>,
    },
    /// Stands for the first malformed chunk and all after it: reaching it is `ErrBadPattern`.
    Malformed,
}

/// Parses a glob as `filepath.Match` reads it. From the first syntax error on, the chunk that
/// holds it is replaced by `Malformed`.
pub(super) fn compile_glob(pattern: &[u8]) -> Vec<Elem> {
    let mut elems = Vec::new();
    if compile_into(pattern, &mut elems).is_err() {
        let chunk_start = elems
            .iter()
            .rposition(|e| *e == Elem::Star)
            .map_or(0, |i| i + 1);
        elems.truncate(chunk_start);
        elems.push(Elem::Malformed);
    }
    elems
}

fn compile_into(pattern: &[u8], elems: &mut Vec<Elem>) -> Result<(), PatternError> {
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' => {
                if elems.last() != Some(&Elem::Star) {
                    elems.push(Elem::Star);
                }
                i += 1;
            }
            b'?' => {
                elems.push(Elem::AnyRune);
                i += 1;
            }
            b'\\' => {
                let &b = pattern.get(i + 1).ok_or(PatternError::BadGlob)?;
                elems.push(Elem::Byte(b));
                i += 2;
            }
            b'[' => {
                i += 1;
                let negated = pattern.get(i) == Some(&b'^');
                i += usize::from(negated);
                let mut ranges = Vec::new();
                loop {
                    if pattern.get(i) == Some(&b']') && !ranges.is_empty() {
                        i += 1;
                        break;
                    }
                    let (lo, next) = class_char(pattern, i)?;
                    let (hi, next) = if pattern[next] == b'-' {
                        class_char(pattern, next + 1)?
                    } else {
                        (lo, next)
                    };
                    ranges.push((lo, hi));
                    i = next;
                }
                elems.push(Elem::Class { negated, ranges });
            }
            b => {
                elems.push(Elem::Byte(b));
                i += 1;
            }
        }
    }
    Ok(())
}

/// Go's `getEsc`: one possibly escaped rune of a class, and the index after it, which must not
/// be the end of the pattern.
fn class_char(pattern: &[u8], mut i: usize) -> Result<(u32, usize), PatternError> {
    match pattern.get(i) {
        None | Some(b'-' | b']') => return Err(PatternError::BadGlob),
        Some(b'\\') => i += 1,
        Some(_) => {}
    }
    if i >= pattern.len() {
        return Err(PatternError::BadGlob);
    }
    let (rune, len) = decode_rune(&pattern[i..]);
    if (rune == REPLACEMENT && len == 1) || i + len >= pattern.len() {
        return Err(PatternError::BadGlob);
    }
    Ok((rune, i + len))
}

pub(super) const REPLACEMENT: u32 = 0xFFFD;

/// `utf8.DecodeRune` on a non-empty slice: an invalid byte decodes as U+FFFD of length 1.
pub(super) fn decode_rune(s: &[u8]) -> (u32, usize) {
    let len = match s[0] {
        0x00..=0x7f => return (u32::from(s[0]), 1),
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return (REPLACEMENT, 1),
    };
    match s.get(..len).map(std::str::from_utf8) {
        Some(Ok(text)) => (text.chars().next().map_or(REPLACEMENT, u32::from), len),
        _ => (REPLACEMENT, 1),
    }
}

/// How many bytes `elem` (not a star) matches at the start of `text`.
fn match_one(elem: &Elem, text: &[u8]) -> Option<usize> {
    let first = *text.first()?;
    match elem {
        Elem::Byte(b) => (first == *b).then_some(1),
        Elem::AnyRune => (first != b'/').then(|| decode_rune(text).1),
        Elem::Class { negated, ranges } => {
            let (rune, len) = decode_rune(text);
            let hit = ranges.iter().any(|&(lo, hi)| lo <= rune && rune <= hi);
            (hit != *negated).then_some(len)
        }
        Elem::Star | Elem::Malformed => None,
    }
}

/// Whole-`text` match. Two pointers and the last star's restart point: each restart moves that
/// point one byte right and it never moves left, so at most `(len(text)+1) × (elems+1)` steps
/// (counted in `steps`). Same answers and errors as Go's chunk-by-chunk greedy `Match`: a chunk is
/// reached once the one before it matched somewhere, as Go reaches it.
pub(super) fn glob_match(
    elems: &[Elem],
    text: &[u8],
    steps: &mut u64,
) -> Result<bool, PatternError> {
    let (mut p, mut t) = (0, 0);
    // (element after the last star, text index that star's match currently ends at)
    let mut restart: Option<(usize, usize)> = None;
    loop {
        *steps += 1;
        match elems.get(p) {
            Some(Elem::Star) => {
                p += 1;
                restart = Some((p, t));
                continue;
            }
            Some(Elem::Malformed) => return Err(PatternError::BadGlob),
            Some(elem) => {
                if let Some(len) = match_one(elem, &text[t..]) {
                    p += 1;
                    t += len;
                    continue;
                }
            }
            None if t == text.len() => return Ok(true),
            None => {}
        }
        match restart {
            // A star cannot take a `/`.
            Some((after_star, end)) if end < text.len() && text[end] != b'/' => {
                restart = Some((after_star, end + 1));
                p = after_star;
                t = end + 1;
            }
            _ => return Ok(false),
        }
    }
}

#[cfg(test)]
mod tests;
