#!/usr/bin/env python3
"""Side-by-side measurements for scripts/bench. Usage: bench.py STACK_ENV PROBE RUNS

Every peer runs at its best: curl is measured over HTTP/1.1 and HTTP/2 and the faster is the
anchor; the fetch-and-verify CPU floor is curl's CPU plus `openssl dgst -sha256` of the bytes.
"""
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile

ACCEPT = ("application/vnd.oci.image.manifest.v1+json,"
          "application/vnd.docker.distribution.manifest.v2+json")
GATE = 16


def load_env(path):
    env = dict(os.environ)
    for line in open(path):
        if line.startswith("export "):
            k, v = line[len("export "):].strip().split("=", 1)
            env[k] = v
        elif line.startswith("unset "):
            for k in line.split()[1:]:
                env.pop(k, None)
    return env


SERVERS = {}  # name -> pid of the stack's servers (registry, moto), set in main()


def server_cpu():
    """CPU seconds (user + sys) the stack's servers have used so far, from /proc/PID/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in SERVERS.values():
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


class Figure:
    """Runs of one command: wall s, CPU s (user+sys), max RSS MiB, and the CPU seconds the
    stack's servers spent answering it (on a 2-core machine they share the cores)."""

    def __init__(self, name, runs):
        self.name = name
        self.wall = [r[0] for r in runs]
        self.cpu = [r[1] for r in runs]
        self.rss = [r[2] for r in runs]
        self.server = [r[3] for r in runs]

    def med(self, what):
        return statistics.median(getattr(self, what))

    def row(self, width):
        def trio(xs, fmt):
            return "/".join(fmt.format(x) for x in (min(xs), statistics.median(xs), max(xs)))
        return (f"{self.name:<{width}}  {trio(self.wall, '{:.3f}'):>19}  "
                f"{trio(self.cpu, '{:.2f}'):>16}  {trio(self.rss, '{:.1f}'):>16}  "
                f"{trio(self.server, '{:.2f}'):>16}")


def measure(name, cmd, env, runs, setup=None):
    out = []
    for _ in range(runs):
        if setup:
            setup()
        before = server_cpu()
        p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", *cmd], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        served = server_cpu() - before
        m = re.search(r"([\d.]+) ([\d.]+) ([\d.]+) (\d+)$", p.stderr.strip())
        if p.returncode != 0 or not m:
            sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr}")
        out.append((float(m.group(1)), float(m.group(2)) + float(m.group(3)),
                    int(m.group(4)) / 1024, served))
    return Figure(name, out)


def main():
    env_file, probe, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    env = load_env(env_file)
    reg, host, pw, stack = env["STACK_REGISTRY"], env["STACK_ECR_HOST"], env["STACK_REGISTRY_PASSWORD"], env["STACK_DIR"]
    # The AWS CLI caches assumed-role credentials under ~/.aws/cli/cache; credentials of an
    # earlier stack's moto would read as another account. Each stack gets its own HOME.
    env["HOME"] = stack
    for name in ("registry", "moto"):
        try:
            SERVERS[name] = int(open(os.path.join(stack, f"{name}.pid")).read().strip())
        except (OSError, ValueError):
            pass
    ca = os.path.join(stack, "ca.pem")
    certs = os.path.join(stack, "skopeo-certs")
    out = tempfile.mkdtemp()
    manifest = json.loads(subprocess.check_output(
        ["curl", "-sf", "--cacert", ca, "-u", f"AWS:{pw}", "-H", f"Accept: {ACCEPT}",
         f"https://{reg}/v2/consultingfirm/big/manifests/latest"]))
    layer = manifest["layers"][0]
    blob_url = f"https://{reg}/v2/consultingfirm/big/blobs/{layer['digest']}"
    print(f"runs per figure: {runs}, shown as min/median/max; machine: {os.cpu_count()} cores\n")

    def clean():
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)

    curl = ["curl", "-sf", "--cacert", ca, "-u", f"AWS:{pw}", "-o", "/dev/null"]
    big = f"{host}/consultingfirm/big:latest"
    probe_big = measure("probe check, 200 MiB image (pull + verify)", [probe, "check", big], env, runs)
    skopeo_big = measure("skopeo copy, 200 MiB image to dir:", [
        "skopeo", "copy", "-q", "--src-cert-dir", certs, "--src-creds", f"AWS:{pw}",
        f"docker://{reg}/consultingfirm/big:latest", f"dir:{out}/img"], env, runs, clean)
    curl1 = measure("curl --http1.1, the 200 MiB blob to /dev/null", [*curl, "--http1.1", blob_url], env, runs)
    curl2 = measure("curl --http2, the 200 MiB blob to /dev/null", [*curl, "--http2", blob_url], env, runs)
    anchor = min((curl1, curl2), key=lambda f: f.med("wall"))
    best = "--http1.1" if anchor is curl1 else "--http2"
    # What the probe does with the bytes, done by the peers at their best: the fastest curl
    # piped into a hasher, so fetching and hashing overlap on two processes (two cores).
    piped = measure(f"curl {best} | openssl dgst -sha256 (fetch and verify)", [
        "bash", "-c", f"set -o pipefail; {shlex.join([*curl[:-2], best, '-o', '-', blob_url])} | openssl dgst -sha256 >/dev/null"],
        env, runs)
    blob_file = os.path.join(out, "blob")
    subprocess.run([*curl[:-1], blob_file, "--http1.1", blob_url], check=True)
    dgst = measure("openssl dgst -sha256 of the same bytes", ["openssl", "dgst", "-sha256", blob_file], env, runs)
    os.remove(blob_file)

    small = f"{host}/consultingfirm/naming-server-service:latest"
    probe_small = measure("probe check, small image (whole check)", [probe, "check", small], env, runs)
    gate = [f"{host}/consultingfirm/gate-{i:02d}:latest" for i in range(1, GATE + 1)]
    probe_gate = measure(f"probe check, {GATE}-image gate", [probe, "check", "--concurrency", "16", *gate], env, runs)

    def chain(repos):
        steps = ["set -e", "aws sts get-caller-identity >/dev/null",
                 "pw=$(aws ecr get-login-password --region us-east-1)"]
        for r in repos:
            steps.append(f"skopeo inspect --cert-dir {certs} --creds AWS:$pw docker://{reg}/consultingfirm/{r}:latest >/dev/null")
            steps.append(f"rm -rf {out}/{r}; skopeo copy -q --src-cert-dir {certs} --src-creds AWS:$pw "
                         f"docker://{reg}/consultingfirm/{r}:latest dir:{out}/{r}")
        return ["bash", "-c", "; ".join(steps)]

    chain_small = measure("manual chain, small image: aws sts + ecr, skopeo inspect + copy",
                          chain(["naming-server-service"]), env, runs)
    chain_gate = measure(f"manual chain, {GATE} images", chain([f"gate-{i:02d}" for i in range(1, GATE + 1)]), env, runs)

    figures = [probe_big, skopeo_big, curl1, curl2, piped, dgst, probe_small, probe_gate, chain_small, chain_gate]
    width = max(len(f.name) for f in figures)
    print(f"{'what':<{width}}  {'wall s':>19}  {'CPU s':>16}  {'max RSS MiB':>16}  {'servers CPU s':>16}")
    for f in figures:
        print(f.row(width))
    p = probe_big
    floor_cpu = anchor.med("cpu") + dgst.med("cpu")
    print()
    print(f"anchor: the faster curl is {anchor.name.split(',')[0]} ({anchor.med('wall'):.3f} s)")
    print(f"200 MiB: probe / fastest curl wall = {p.med('wall') / anchor.med('wall'):.2f}x (goal <= 1.2x)")
    print(f"200 MiB: probe CPU / (curl CPU + openssl dgst CPU) = {p.med('cpu') / floor_cpu:.2f}x (goal <= 1.1x)")
    print(f"200 MiB: probe / (fastest curl | openssl dgst) wall = {p.med('wall') / piped.med('wall'):.2f}x "
          f"(the same fetch-and-verify by the peers, overlapped on two processes)")
    print(f"200 MiB: the registry's own CPU while serving the blob to curl: {anchor.med('server'):.2f} s "
          f"of {anchor.med('wall'):.2f} s wall ({os.cpu_count()} cores in all)")
    print(f"200 MiB: probe / skopeo wall = {p.med('wall') / skopeo_big.med('wall'):.2f}x; max RSS = {p.med('rss') / skopeo_big.med('rss'):.2f}x")
    print(f"{GATE}-image gate / one small check wall = {probe_gate.med('wall') / probe_small.med('wall'):.2f}x (goal <= 2x)")
    print(f"{GATE}-image gate / manual chain over the same images = {probe_gate.med('wall') / chain_gate.med('wall'):.3f}x (goal <= 0.05x)")
    print(f"small image: probe / manual chain wall = {probe_small.med('wall') / chain_small.med('wall'):.3f}x")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
