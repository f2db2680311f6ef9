# syntax=docker/dockerfile:1
#
#   docker build -t ecr-pull-probe .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/ecr-pull-probe:TAG --push .
#
# The runtime image holds the binary and nothing else it could use: no shell, no package
# manager, no writable path needed. It runs under any uid (OpenShift assigns an arbitrary one
# with gid 0): nothing in it assumes the uid set below.

ARG RUST_VERSION=1.95
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && install -m 0755 target/release/ecr-pull-probe /ecr-pull-probe

# glibc (aws-lc links it) and the Debian CA bundle; no shell.
FROM gcr.io/distroless/cc-debian12
COPY --from=build /ecr-pull-probe /usr/local/bin/ecr-pull-probe
USER 65532
ENTRYPOINT ["/usr/local/bin/ecr-pull-probe"]
CMD ["--help"]
