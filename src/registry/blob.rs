//! Blob verification while the bytes stream: digest and size are checked chunk by chunk, and
//! nothing is kept, so memory stays flat whatever the layer size.

use sha2::{Digest as _, Sha256, Sha512};

/// Why a blob's bytes cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("unsupported digest {0:?} (sha256 and sha512 are)")]
    UnsupportedDigest(String),
    #[error("content digest is {actual}, the manifest says {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error("received {received} bytes, the manifest says {expected}")]
    Truncated { expected: u64, received: u64 },
    #[error("received more than the {expected} bytes the manifest says")]
    Oversized { expected: u64 },
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
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
        let hasher = match digest.split_once(':') {
            Some(("sha256", hex)) if hex.len() == 64 => Hasher::Sha256(Sha256::new()),
            Some(("sha512", hex)) if hex.len() == 128 => Hasher::Sha512(Sha512::new()),
            _ => return Err(VerifyError::UnsupportedDigest(digest.to_string())),
        };
        Ok(Verifier {
            hasher,
            expected_digest: digest.to_ascii_lowercase(),
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
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(chunk),
            Hasher::Sha512(h) => h.update(chunk),
        }
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
        let actual = match self.hasher {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        };
        if actual != self.expected_digest {
            return Err(VerifyError::DigestMismatch {
                expected: self.expected_digest,
                actual,
            });
        }
        Ok(self.received)
    }
}

/// The sha256 digest of a complete body (manifests, which are small and capped).
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
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
        for bad in ["md5:abc", "sha256:short", "nocolon"] {
            assert!(matches!(
                Verifier::new(bad, 1),
                Err(VerifyError::UnsupportedDigest(_))
            ));
        }
    }
}
