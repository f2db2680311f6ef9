//! Link flags for the shipped binary only (tests and dependencies are untouched).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    // Relative relocations packed as DT_RELR (binutils >= 2.38, glibc >= 2.36: Debian 12, the
    // runtime image's base). The release binary's 1.5 MB `.rela.dyn` of a position-independent
    // executable becomes 14 KB, and it stays position-independent (ASLR). ld records a need for
    // the GLIBC_ABI_DT_RELR version, so a glibc older than 2.36 refuses the binary at load with
    // that name instead of running it wrongly. Measured in BENCHMARKS.md.
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
