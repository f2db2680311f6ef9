//! Blob verification while the bytes stream: digest and size are checked chunk by chunk, and
//! nothing is kept, so memory stays flat whatever the layer size.

use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// Why a blob's bytes cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("digest {digest:?} is not sha256, sha384 or sha512 with its length of lowercase hex")]
    UnsupportedDigest { digest: String },
    #[error("content digest is {actual}, the manifest says {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error("received {received} bytes, the manifest says {expected}")]
    Truncated { expected: u64, received: u64 },
    #[error("received more than the {expected} bytes the manifest says")]
    Oversized { expected: u64 },
}

/// The digest algorithms a puller verifies (go-digest's registered set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }
}

/// Checks a digest read from the wire or the command line against the OCI grammar for the
/// algorithms we verify: `sha256|sha384|sha512`, `:`, then exactly the algorithm's length of
/// lowercase hex. Anything else never becomes part of a URL: a registry once sent
/// `sha256:/../../admin/keys?x=…` as a layer digest (issue 15).
pub fn parse_digest(digest: &str) -> Result<Algorithm, VerifyError> {
    let unsupported = || VerifyError::UnsupportedDigest {
        digest: shorten(digest),
    };
    let (algo, hex) = digest.split_once(':').ok_or_else(unsupported)?;
    let algo = match algo {
        "sha256" => Algorithm::Sha256,
        "sha384" => Algorithm::Sha384,
        "sha512" => Algorithm::Sha512,
        _ => return Err(unsupported()),
    };
    let lower_hex = hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex.len() != algo.hex_len() || !lower_hex {
        return Err(unsupported());
    }
    Ok(algo)
}

/// A wire string cut to a length fit for an error message.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    fn new(algo: Algorithm) -> Hasher {
        match algo {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(chunk),
            Hasher::Sha384(h) => h.update(chunk),
            Hasher::Sha512(h) => h.update(chunk),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha384(h) => format!("sha384:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// The digest of a complete body (manifests, which are small and capped) in `algo`.
pub fn digest_of(algo: Algorithm, bytes: &[u8]) -> String {
    let mut h = Hasher::new(algo);
    h.update(bytes);
    h.finish()
}

/// Incremental check of one blob against its descriptor.
pub struct Verifier {
    hasher: Hasher,
    expected_digest: String,
    expected_size: u64,
    received: u64,
}

impl Verifier {
    pub fn new(digest: &str, size: u64) -> Result<Self, VerifyError> {
        Ok(Verifier {
            hasher: Hasher::new(parse_digest(digest)?),
            expected_digest: digest.to_string(),
            expected_size: size,
            received: 0,
        })
    }

    /// Feeds a chunk; fails as soon as the blob is longer than declared, so a hostile server
    /// cannot make the probe read forever.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), VerifyError> {
        self.received += chunk.len() as u64;
        if self.received > self.expected_size {
            return Err(VerifyError::Oversized {
                expected: self.expected_size,
            });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// Checks the end of the stream: the size first (a short read explains a wrong digest).
    pub fn finish(self) -> Result<u64, VerifyError> {
        if self.received != self.expected_size {
            return Err(VerifyError::Truncated {
                expected: self.expected_size,
                received: self.received,
            });
        }
        let actual = self.hasher.finish();
        if actual != self.expected_digest {
            return Err(VerifyError::DigestMismatch {
                expected: self.expected_digest,
                actual,
            });
        }
        Ok(self.received)
    }
}

/// The sha256 digest of a complete body: what a registry names a manifest by.
pub fn sha256_digest(bytes: &[u8]) -> String {
    digest_of(Algorithm::Sha256, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn accepts_the_right_bytes_in_any_chunking() {
        let mut v = Verifier::new(HELLO, 5).unwrap();
        v.update(b"he").unwrap();
        v.update(b"").unwrap();
        v.update(b"llo").unwrap();
        assert_eq!(v.finish(), Ok(5));
        assert_eq!(sha256_digest(b"hello"), HELLO);
    }

    #[test]
    fn catches_wrong_short_and_long_content() {
        let mut v = Verifier::new(HELLO, 5).unwrap();
        v.update(b"jello").unwrap();
        assert!(matches!(
            v.finish(),
            Err(VerifyError::DigestMismatch { .. })
        ));

        let mut v = Verifier::new(HELLO, 5).unwrap();
        v.update(b"hel").unwrap();
        assert_eq!(
            v.finish(),
            Err(VerifyError::Truncated {
                expected: 5,
                received: 3
            })
        );

        let mut v = Verifier::new(HELLO, 5).unwrap();
        assert_eq!(
            v.update(b"hello!"),
            Err(VerifyError::Oversized { expected: 5 })
        );
    }

    #[test]
    fn supports_sha512_and_rejects_other_digests() {
        let d = format!("sha512:{}", hex::encode(Sha512::digest(b"x")));
        let mut v = Verifier::new(&d, 1).unwrap();
        v.update(b"x").unwrap();
        assert!(v.finish().is_ok());
        let upper = format!("sha256:{}", "A".repeat(64));
        let traversal = format!("sha256:/../../../../admin/keys?x={}", "a".repeat(38));
        for bad in [
            "md5:abc",
            "sha256:short",
            "nocolon",
            &upper,
            &traversal,
            "../../../other/secret/manifests/prod",
        ] {
            assert!(matches!(
                Verifier::new(bad, 1),
                Err(VerifyError::UnsupportedDigest { .. })
            ));
        }
    }
}
