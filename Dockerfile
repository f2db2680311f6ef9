# syntax=docker/dockerfile:1
#
#   docker build -t ecr-pull-probe .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/ecr-pull-probe:TAG --push .
#
# The runtime image holds the binary and nothing else it could use: no shell, no package
# manager, no writable path needed. It runs under any uid (OpenShift assigns an arbitrary one
# with gid 0): nothing in it assumes the uid set below.

# Both bases are pinned by digest (the tag says what it is, the digest what is built): a tag
# moves under a rebuild, a digest does not. To bump, read the new index digest, e.g.
#   skopeo inspect --format '{{.Digest}}' docker://docker.io/library/rust:1.95-bookworm
#   skopeo inspect --format '{{.Digest}}' docker://gcr.io/distroless/cc-debian12:latest
# and replace both here in one reviewed commit.
FROM docker.io/library/rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
WORKDIR /src
# Dependencies first, in their own layer, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && install -m 0755 target/release/ecr-pull-probe /ecr-pull-probe

# glibc (the binary links it dynamically) and the Debian CA bundle; no shell.
FROM gcr.io/distroless/cc-debian12:latest@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
COPY --from=build /ecr-pull-probe /usr/local/bin/ecr-pull-probe
USER 65532
ENTRYPOINT ["/usr/local/bin/ecr-pull-probe"]
CMD ["--help"]
