#!/usr/bin/env python3
"""Build the test images as OCI layouts, without Docker: the one image builder of the tree.

Each image is written as an OCI image layout directory that `skopeo copy oci:DIR:TAG ...`
pushes to the registry. Contents are deterministic (seeded) so digests are stable across runs,
except the large image, whose layer is random bytes (compressible data would flatter the
benchmark).

The stack (scripts/stack) needs the images before any test runs, and scripts/demo without a
test build, so the builder lives here and the Rust tests call it too: the fault registry
(tests/common/fault.rs) serves the image `--fault-seed N` builds, read back from its layout.

Usage: build_images.py OUT_DIR [--big-mib N]
       build_images.py OUT_DIR --fault-seed N    only OUT_DIR/fault
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


class Layout:
    """One OCI image layout directory with a content-addressed blob store."""

    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        self.refs = []

    def put(self, data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.root, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return "sha256:" + digest, len(data)

    def put_file(self, path):
        """Move an already written file into the store, hashing it in chunks."""
        h = hashlib.sha256()
        size = 0
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
        os.replace(path, os.path.join(self.root, "blobs", "sha256", h.hexdigest()))
        return "sha256:" + h.hexdigest(), size

    def tag(self, tag, media_type, digest, size):
        self.refs.append({
            "mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        })
        with open(os.path.join(self.root, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": self.refs}, f)


def tar_layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def gz(data):
    return gzip.compress(data, mtime=0)


def config_blob(arch, diff_ids):
    return json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Entrypoint": ["/app"], "User": "65532"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }, sort_keys=True).encode()


def put_manifest(layout, arch, layers, diff_ids, title=None):
    """Store the config and the manifest of an image whose layers are stored already."""
    cd, cs = layout.put(config_blob(arch, diff_ids))
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
        "layers": layers,
    }
    if title is not None:
        manifest["annotations"] = {"org.opencontainers.image.title": title}
    return layout.put(json.dumps(manifest, sort_keys=True).encode())


def image(layout, arch, layers, seed, gzipped=True):
    """Store the layers, config and manifest of one single-platform image."""
    descs, diff_ids = [], []
    for raw in layers:
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        blob, media_type = (gz(raw), OCI_LAYER_GZIP) if gzipped else (raw, OCI_LAYER_TAR)
        d, s = layout.put(blob)
        descs.append({"mediaType": media_type, "digest": d, "size": s})
    return put_manifest(layout, arch, descs, diff_ids, title=seed)


def small_layers(seed, count=2, size=64 * 1024):
    rnd = random.Random(seed)
    return [tar_layer([(f"layer{i}/data.bin", rnd.randbytes(size))]) for i in range(count)]


def build_small(out):
    lay = Layout(os.path.join(out, "small"))
    d, s = image(lay, "amd64", small_layers("small"), "small")
    lay.tag("latest", OCI_MANIFEST, d, s)


def build_multiarch(out):
    lay = Layout(os.path.join(out, "multiarch"))
    entries = []
    for arch in ("amd64", "arm64"):
        d, s = image(lay, arch, small_layers("multi-" + arch), "multi-" + arch)
        platform = {"architecture": arch, "os": "linux"}
        if arch == "arm64":
            platform["variant"] = "v8"
        entries.append({"mediaType": OCI_MANIFEST, "digest": d, "size": s, "platform": platform})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
                       sort_keys=True).encode()
    d, s = lay.put(index)
    lay.tag("latest", OCI_INDEX, d, s)


def build_arm64_only(out):
    """An index with an arm64 entry only: on an amd64 node the runtime finds no match."""
    lay = Layout(os.path.join(out, "arm64-only"))
    d, s = image(lay, "arm64", small_layers("arm64-only"), "arm64-only")
    platform = {"architecture": "arm64", "os": "linux", "variant": "v8"}
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": s, "platform": platform}]},
        sort_keys=True).encode()
    d, s = lay.put(index)
    lay.tag("latest", OCI_INDEX, d, s)


def build_big(out, mib):
    lay = Layout(os.path.join(out, "big"))
    tmp = os.path.join(out, "big-layer.tmp")
    with open(tmp, "wb") as f:
        # A tar header then random bytes; uncompressed, like a layer of pre-compressed assets.
        remaining = mib << 20
        info = tarfile.TarInfo("blob.bin")
        info.size = remaining
        f.write(info.tobuf(format=tarfile.PAX_FORMAT))
        while remaining:
            n = min(remaining, 4 << 20)
            f.write(os.urandom(n))
            remaining -= n
        pad = (-(mib << 20)) % 512
        f.write(b"\0" * (pad + 1024))
    ld, ls = lay.put_file(tmp)
    layers = [{"mediaType": OCI_LAYER_TAR, "digest": ld, "size": ls}]
    md, ms = put_manifest(lay, "amd64", layers, [ld])
    lay.tag("latest", OCI_MANIFEST, md, ms)


def build_fault(out, seed):
    """The fault registry's image: one uncompressed layer (its digest is its diff ID) holding a
    file of 256 KiB. `seed` (the fake's port) makes each fake's blobs its own: a runtime keeps
    a failed download (containerd resumes the ingest of the same digest), so two fakes serving
    the same layer would see one's corruption in the other's pull."""
    lay = Layout(os.path.join(out, "fault"))
    data = random.Random(f"fault-{seed}").randbytes(256 * 1024)
    d, s = image(lay, "amd64", [tar_layer([("data", data)])], f"fault-{seed}", gzipped=False)
    lay.tag("latest", OCI_MANIFEST, d, s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--big-mib", type=int, default=0, help="also build a one-layer image of N MiB")
    ap.add_argument("--fault-seed", type=int, help="build only the fault registry's image")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.fault_seed is not None:
        build_fault(args.out, args.fault_seed)
        return
    build_small(args.out)
    build_multiarch(args.out)
    build_arm64_only(args.out)
    if args.big_mib:
        build_big(args.out, args.big_mib)


if __name__ == "__main__":
    main()
