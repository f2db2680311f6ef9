//! Go's own `filepath.Match` table, and a differential check against Go's chunk-by-chunk
//! algorithm over every short pattern (invalid UTF-8 bytes included).

use super::*;

// golang/go src/path/filepath/match_test.go @ 14c40f9472efbb9423f6e98b1681a0ad8a516da8,
// matchTests (non-Windows): the glob's spec, escapes and bad patterns included. 56 cases;
// the oracle below must agree with them too.
#[test]
fn go_filepath_match_tests() {
    const BAD: Result<bool, PatternError> = Err(PatternError::BadGlob);
    let cases: &[(&str, &str, Result<bool, PatternError>)] = &[
        ("abc", "abc", Ok(true)),
        ("*", "abc", Ok(true)),
        ("*c", "abc", Ok(true)),
        ("a*", "a", Ok(true)),
        ("a*", "abc", Ok(true)),
        ("a*", "ab/c", Ok(false)),
        ("a*/b", "abc/b", Ok(true)),
        ("a*/b", "a/c/b", Ok(false)),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
        ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
        ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
        ("ab[c]", "abc", Ok(true)),
        ("ab[b-d]", "abc", Ok(true)),
        ("ab[e-g]", "abc", Ok(false)),
        ("ab[^c]", "abc", Ok(false)),
        ("ab[^b-d]", "abc", Ok(false)),
        ("ab[^e-g]", "abc", Ok(true)),
        ("a\\*b", "a*b", Ok(true)),
        ("a\\*b", "ab", Ok(false)),
        ("a?b", "a☺b", Ok(true)),
        ("a[^a]b", "a☺b", Ok(true)),
        ("a???b", "a☺b", Ok(false)),
        ("a[^a][^a][^a]b", "a☺b", Ok(false)),
        ("[a-ζ]*", "α", Ok(true)),
        ("*[a-ζ]", "A", Ok(false)),
        ("a?b", "a/b", Ok(false)),
        ("a*b", "a/b", Ok(false)),
        ("[\\]a]", "]", Ok(true)),
        ("[\\-]", "-", Ok(true)),
        ("[x\\-]", "x", Ok(true)),
        ("[x\\-]", "-", Ok(true)),
        ("[x\\-]", "z", Ok(false)),
        ("[\\-x]", "x", Ok(true)),
        ("[\\-x]", "-", Ok(true)),
        ("[\\-x]", "a", Ok(false)),
        ("[]a]", "]", BAD),
        ("[-]", "-", BAD),
        ("[x-]", "x", BAD),
        ("[x-]", "-", BAD),
        ("[x-]", "z", BAD),
        ("[-x]", "x", BAD),
        ("[-x]", "-", BAD),
        ("[-x]", "a", BAD),
        ("\\", "a", BAD),
        ("[a-b-c]", "a", BAD),
        ("[", "a", BAD),
        ("[^", "a", BAD),
        ("[^bc", "a", BAD),
        ("a[", "a", BAD),
        ("a[", "ab", BAD),
        ("a[", "x", BAD),
        ("a/b[", "x", BAD),
        ("*x", "xxx", Ok(true)),
    ];
    assert_eq!(cases.len(), 56);
    for (pattern, name, want) in cases {
        assert_eq!(
            &glob(pattern.as_bytes(), name.as_bytes()),
            want,
            "{pattern} vs {name}"
        );
        let oracle = go_match(pattern.as_bytes(), name.as_bytes());
        assert_eq!(oracle, want.map_err(|_| ()), "oracle: {pattern} vs {name}");
    }
}

#[test]
fn malformed_chunks_are_errors_only_when_reached() {
    // Real Go 1.19 `filepath.Match` gives the same (unlike `path.Match`).
    assert_eq!(glob(b"a*[", b""), Ok(false));
    assert_eq!(glob(b"a*[", b"b"), Ok(false));
    assert_eq!(glob(b"a*[", b"ab"), Err(PatternError::BadGlob));
    assert_eq!(glob(b"[", b""), Err(PatternError::BadGlob));
    assert_eq!(glob(b"x*y*\\", b"xy"), Err(PatternError::BadGlob));
    assert_eq!(glob(b"x*y*\\", b"x"), Ok(false));
}

fn glob(pattern: &[u8], name: &[u8]) -> Result<bool, PatternError> {
    glob_match(&compile_glob(pattern), name, &mut 0)
}

// ---- differential check against Go's own algorithm ----

/// Go's `filepath.Match` as Go runs it: chunk by chunk, each chunk at its leftmost place and
/// checked in full when tried; chunks after one that matches nowhere are not checked. A test
/// oracle only: its cost is not bounded the same way.
fn go_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, ()> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = go_scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        if let Some(t) = go_match_chunk(chunk, name)?
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                if let Some(t) = go_match_chunk(chunk, &name[i + 1..])?
                    && (!pattern.is_empty() || t.is_empty())
                {
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn go_scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while pattern.first() == Some(&b'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let (mut in_range, mut i) = (false, 0);
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

fn go_match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, ()> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        failed |= s.is_empty();
        match c {
            b'[' => {
                let mut rune = 0;
                if !failed {
                    let (r, n) = decode_rune(s);
                    rune = r;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let (mut hit, mut ranges) = (false, 0);
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = go_get_esc(chunk)?;
                    let (hi, rest) = if rest[0] == b'-' {
                        go_get_esc(&rest[1..])?
                    } else {
                        (lo, rest)
                    };
                    chunk = rest;
                    hit |= lo <= rune && rune <= hi;
                    ranges += 1;
                }
                failed |= hit == negated;
            }
            b'?' => {
                if !failed {
                    failed |= s[0] == b'/';
                    s = &s[decode_rune(s).1..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(());
                    }
                }
                if !failed {
                    failed |= chunk[0] != s[0];
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok((!failed).then_some(s))
}

fn go_get_esc(mut chunk: &[u8]) -> Result<(u32, &[u8]), ()> {
    match chunk.first() {
        None | Some(b'-' | b']') => return Err(()),
        Some(b'\\') => chunk = &chunk[1..],
        Some(_) => {}
    }
    if chunk.is_empty() {
        return Err(());
    }
    let (rune, n) = decode_rune(chunk);
    if (rune == REPLACEMENT && n == 1) || n == chunk.len() {
        return Err(());
    }
    Ok((rune, &chunk[n..]))
}

fn strings_over(alphabet: &[u8], max_len: usize) -> Vec<Vec<u8>> {
    let mut all = vec![vec![]];
    let mut last = vec![vec![]];
    for _ in 0..max_len {
        last = last
            .iter()
            .flat_map(|s: &Vec<u8>| {
                alphabet.iter().map(move |&b| {
                    let mut t = s.clone();
                    t.push(b);
                    t
                })
            })
            .collect();
        all.extend(last.iter().cloned());
    }
    all
}

#[test]
fn glob_agrees_with_go_on_every_short_pattern() {
    // 0xC3 0xA9 is `é`; alone, each is an invalid byte.
    let patterns = strings_over(b"a*?[]^-\\\xC3\xA9", 4);
    let names = strings_over(b"ab/\xC3\xA9", 3);
    for pattern in &patterns {
        let elems = compile_glob(pattern);
        for name in &names {
            let mut steps = 0;
            let ours = glob_match(&elems, name, &mut steps).map_err(|_| ());
            let bound = (name.len() as u64 + 1) * (elems.len() as u64 + 1);
            assert!(steps <= bound, "{pattern:?} vs {name:?}: {steps} steps");
            assert_eq!(ours, go_match(pattern, name), "{pattern:?} vs {name:?}");
        }
    }
}

#[test]
fn glob_agrees_with_go_on_longer_random_inputs() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let pattern_bytes = b"ab**?[]^-\\\xC3\xA9";
    let name_bytes = b"aab/\xC3\xA9";
    for _ in 0..100_000 {
        let pattern: Vec<u8> = (0..next(10))
            .map(|_| pattern_bytes[next(pattern_bytes.len())])
            .collect();
        let name: Vec<u8> = (0..next(10))
            .map(|_| name_bytes[next(name_bytes.len())])
            .collect();
        let ours = glob_match(&compile_glob(&pattern), &name, &mut 0).map_err(|_| ());
        assert_eq!(ours, go_match(&pattern, &name), "{pattern:?} vs {name:?}");
    }
}

#[test]
fn decodes_runes_as_go_does() {
    assert_eq!(decode_rune(b"a"), (0x61, 1));
    assert_eq!(decode_rune("é!".as_bytes()), (0xe9, 2));
    assert_eq!(decode_rune("☺".as_bytes()), (0x263a, 3));
    assert_eq!(decode_rune("😀".as_bytes()), (0x1f600, 4));
    assert_eq!(decode_rune("\u{FFFD}".as_bytes()), (REPLACEMENT, 3));
    for invalid in [
        &b"\xC3"[..],
        b"\xA9",
        b"\xC0\x80",
        b"\xED\xA0\x80",
        b"\xF5\x80\x80\x80",
    ] {
        assert_eq!(decode_rune(invalid), (REPLACEMENT, 1), "{invalid:?}");
    }
}
