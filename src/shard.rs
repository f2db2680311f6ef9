//! Sharding `serve --watch` over replicas (issue 27): every replica watches every object, and
//! checks and exports only the workloads whose namespace is its shard's. The namespace, not
//! the object, is the unit: its pull secrets, its ServiceAccounts and its cap of checks
//! ([`crate::watch::MAX_CHECKS_PER_NAMESPACE`]) then stay in one process, and the replicas' series
//! are disjoint.
//!
//! The hash is kube-state-metrics' (`pkg/sharding/listwatch.go`, `sharding.keep`): FNV-1a
//! 64-bit of the key's bytes, then Google's jump consistent hash (Lamping and Veach, 2014,
//! arXiv:1406.2294) into `total` buckets. It is stable across versions and platforms (no
//! random seed, no std `Hash`), and a change of `total` from N to N+1 moves only about 1/(N+1)
//! of the namespaces. A namespace's shard can be computed outside the probe with any FNV-1a
//! and jump hash: `jump(fnv1a64(namespace), total)`.

/// Which part of the cluster this replica checks: shard `index` of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

/// What is wrong with a `--shard` / `--total-shards` pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--total-shards must be at least 1 (it is the number of replicas)")]
    NoShards,
    #[error(
        "--shard {index} is not a shard of --total-shards {total}: shards are numbered 0 to {last}",
        last = .total - 1
    )]
    OutOfRange { index: u32, total: u32 },
}

impl Default for Shard {
    /// One process checks everything.
    fn default() -> Self {
        Shard { index: 0, total: 1 }
    }
}

impl Shard {
    pub fn new(index: u32, total: u32) -> Result<Shard, ShardError> {
        match (index, total) {
            (_, 0) => Err(ShardError::NoShards),
            (i, t) if i >= t => Err(ShardError::OutOfRange { index, total }),
            _ => Ok(Shard { index, total }),
        }
    }

    pub fn is_sharded(self) -> bool {
        self.total > 1
    }

    /// Whether this replica checks `namespace`'s workloads.
    pub fn owns(self, namespace: &str) -> bool {
        self.total <= 1 || shard_of(namespace, self.total) == self.index
    }
}

/// The shard of `namespace` among `total`.
pub fn shard_of(namespace: &str, total: u32) -> u32 {
    jump(fnv1a64(namespace.as_bytes()), total)
}

/// FNV-1a, 64 bits (the offset basis and prime of the FNV specification).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Jump consistent hash: the bucket in `0..buckets` of `key` (`buckets` >= 1), as the paper's
/// reference code and go-jump compute it.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a 64 test values of the FNV specification's test suite (Noll's `test_fnv.c`,
    /// also in draft-eastlake-fnv): "", "a", "foobar".
    #[test]
    fn fnv1a64_agrees_with_the_specifications_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// go-jump's `TestHash` table (github.com/dgryski/go-jump, jump_test.go, "generated from
    /// the reference C++ code"): the bucket of each key for 1, 2, ... buckets.
    #[test]
    fn jump_agrees_with_go_jumps_table() {
        let table: [(u64, &[u32]); 4] = [
            (0, &[0; 20]),
            (
                1,
                &[0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17],
            ),
            (
                0xdead_beef,
                &[0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16],
            ),
            (
                0x0ddc_0ffe_ebad_f00d,
                &[0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15],
            ),
        ];
        for (key, buckets) in table {
            for (i, want) in buckets.iter().enumerate() {
                assert_eq!(jump(key, i as u32 + 1), *want, "jump({key:#x}, {})", i + 1);
            }
        }
    }

    /// kube-state-metrics' `TestSharding` (pkg/sharding/listwatch_test.go): the key
    /// "test_uid" is shard 0 of 2, and only shard 0 keeps it.
    #[test]
    fn the_same_shard_as_kube_state_metrics() {
        assert_eq!(shard_of("test_uid", 2), 0);
        assert!(Shard::new(0, 2).unwrap().owns("test_uid"));
        assert!(!Shard::new(1, 2).unwrap().owns("test_uid"));
    }

    /// Every namespace is exactly one shard's, whatever the number of shards; growing from N
    /// to N+1 shards moves a namespace only to the new shard.
    #[test]
    fn every_namespace_has_exactly_one_shard_and_growing_moves_few() {
        let namespaces: Vec<String> = (0..2000).map(|i| format!("team-{i:04}")).collect();
        for total in 1..=8 {
            for ns in &namespaces {
                let owners = (0..total)
                    .filter(|i| Shard::new(*i, total).unwrap().owns(ns))
                    .count();
                assert_eq!(owners, 1, "{ns} of {total}");
            }
        }
        let moved = namespaces
            .iter()
            .filter(|ns| shard_of(ns, 4) != shard_of(ns, 5))
            .inspect(|ns| assert_eq!(shard_of(ns, 5), 4, "{ns} moves only to the new shard"))
            .count();
        // About a fifth move from 4 to 5 shards (a modulo would move four fifths).
        assert!((300..500).contains(&moved), "{moved} of 2000 moved");
    }

    /// The Python of docs/watch-sharding.md, run on team-000 .. team-011 for 2 shards, gave
    /// these: the page's recipe and the code agree.
    #[test]
    fn the_documented_recipe_gives_the_same_shards() {
        let by_docs = [1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0];
        for (i, want) in by_docs.iter().enumerate() {
            assert_eq!(shard_of(&format!("team-{i:03}"), 2), *want, "team-{i:03}");
        }
    }

    #[test]
    fn bad_pairs_are_refused_with_what_to_do() {
        assert_eq!(Shard::new(0, 0), Err(ShardError::NoShards));
        let e = Shard::new(2, 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--shard 2 is not a shard of --total-shards 2: shards are numbered 0 to 1"
        );
        assert!(!Shard::default().is_sharded());
        assert!(Shard::default().owns("anything"));
    }
}
