#!/usr/bin/env python3
"""Side-by-side measurements for scripts/bench. Usage: bench.py STACK_ENV PROBE RUNS

Every peer runs at its best: curl is measured over HTTP/1.1 and HTTP/2 and the faster is the
anchor; the fetch-and-verify CPU floor is curl's CPU plus `openssl dgst -sha256` of the bytes.
Runs alternate (one run of every command, then the next round), so a machine that gets busier
or quieter during the bench moves every figure alike and the ratios stay fair.

BENCH_BASELINE=PATH adds a second probe binary (an older build) to every round, measured the
same way, so a change is compared with what it replaces in one run.
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
    """CPU seconds (user + sys) each of the stack's servers has used so far, from
    /proc/PID/stat: {"registry": s, "moto": s}."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, pid in SERVERS.items():
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            used[name] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            used[name] = 0.0
    return used


class Figure:
    """Runs of one command: wall s, CPU s (user+sys), max RSS MiB, and the CPU seconds the
    stack's registry and all its servers (registry and moto) spent answering it (on a 2-core
    machine they share the cores with the command)."""

    def __init__(self, name, cmd, setup=None):
        self.name, self.cmd, self.setup = name, cmd, setup
        self.wall, self.cpu, self.rss, self.registry, self.server = [], [], [], [], []

    def med(self, what):
        return statistics.median(getattr(self, what))

    def row(self, width):
        def trio(xs, fmt):
            return "/".join(fmt.format(x) for x in (min(xs), statistics.median(xs), max(xs)))
        return (f"{self.name:<{width}}  {trio(self.wall, '{:.3f}'):>19}  "
                f"{trio(self.cpu, '{:.2f}'):>16}  {trio(self.rss, '{:.1f}'):>16}  "
                f"{trio(self.registry, '{:.2f}'):>16}  {trio(self.server, '{:.2f}'):>16}")

    def run_once(self, env):
        if self.setup:
            self.setup()
        before = server_cpu()
        p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", *self.cmd], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        after = server_cpu()
        m = re.search(r"([\d.]+) ([\d.]+) ([\d.]+) (\d+)$", p.stderr.strip())
        if p.returncode != 0 or not m:
            sys.exit(f"failed: {' '.join(self.cmd)}\n{p.stderr}")
        self.wall.append(float(m.group(1)))
        self.cpu.append(float(m.group(2)) + float(m.group(3)))
        self.rss.append(int(m.group(4)) / 1024)
        self.registry.append(after.get("registry", 0.0) - before.get("registry", 0.0))
        self.server.append(sum(after.values()) - sum(before.values()))


def alternate(figures, env, runs):
    """One run of every figure per round, `runs` rounds."""
    for _ in range(runs):
        for f in figures:
            f.run_once(env)


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
    print(f"runs per figure: {runs}, alternating, shown as min/median/max; machine: {os.cpu_count()} cores\n")

    curl = ["curl", "-sf", "--cacert", ca, "-u", f"AWS:{pw}", "-o", "/dev/null"]
    big = f"{host}/consultingfirm/big:latest"
    small = f"{host}/consultingfirm/naming-server-service:latest"
    gate = [f"{host}/consultingfirm/gate-{i:02d}:latest" for i in range(1, GATE + 1)]
    # The blob on disk for `openssl dgst`, the hashing floor (page cache: no disk in it).
    blob_file = os.path.join(out, "blob")
    subprocess.run([*curl[:-1], blob_file, "--http1.1", blob_url], check=True)
    imgs = os.path.join(out, "imgs")

    def clean():
        shutil.rmtree(imgs, ignore_errors=True)
        os.makedirs(imgs)

    def probes(binary, label):
        return (Figure(f"probe check{label}, 200 MiB image (pull + verify)", [binary, "check", big]),
                Figure(f"probe check{label}, small image (whole check)", [binary, "check", small]),
                Figure(f"probe check{label}, {GATE}-image gate", [binary, "check", "--concurrency", "16", *gate]))

    probe_big, probe_small, probe_gate = probes(probe, "")
    baseline = os.environ.get("BENCH_BASELINE")
    base = probes(baseline, " (baseline)") if baseline else ()
    skopeo_big = Figure("skopeo copy, 200 MiB image to dir:", [
        "skopeo", "copy", "-q", "--src-cert-dir", certs, "--src-creds", f"AWS:{pw}",
        f"docker://{reg}/consultingfirm/big:latest", f"dir:{imgs}/img"], clean)
    curl1 = Figure("curl --http1.1, the 200 MiB blob to /dev/null", [*curl, "--http1.1", blob_url])
    curl2 = Figure("curl --http2, the 200 MiB blob to /dev/null", [*curl, "--http2", blob_url])

    # What the probe does with the bytes, done by the peers at their best: curl piped into a
    # hasher, so fetching and hashing overlap on two processes (two cores); both protocols,
    # the faster counts.
    def piped(proto):
        fetch = shlex.join([*curl[:-2], proto, "-o", "-", blob_url])
        return Figure(f"curl {proto} | openssl dgst -sha256 (fetch and verify)",
                      ["bash", "-c", f"set -o pipefail; {fetch} | openssl dgst -sha256 >/dev/null"])

    piped1, piped2 = piped("--http1.1"), piped("--http2")
    dgst = Figure("openssl dgst -sha256 of the same bytes", ["openssl", "dgst", "-sha256", blob_file])

    def chain(label, repos):
        steps = ["set -e", "aws sts get-caller-identity >/dev/null",
                 "pw=$(aws ecr get-login-password --region us-east-1)"]
        for r in repos:
            steps.append(f"skopeo inspect --cert-dir {certs} --creds AWS:$pw docker://{reg}/consultingfirm/{r}:latest >/dev/null")
            steps.append(f"rm -rf {imgs}/{r}; skopeo copy -q --src-cert-dir {certs} --src-creds AWS:$pw "
                         f"docker://{reg}/consultingfirm/{r}:latest dir:{imgs}/{r}")
        return Figure(label, ["bash", "-c", "; ".join(steps)], clean)

    chain_small = chain("manual chain, small image: aws sts + ecr, skopeo inspect + copy", ["naming-server-service"])
    chain_gate = chain(f"manual chain, {GATE} images", [f"gate-{i:02d}" for i in range(1, GATE + 1)])

    figures = [probe_big, *base[:1], curl1, curl2, piped1, piped2, dgst, skopeo_big,
               probe_small, *base[1:2], probe_gate, *base[2:], chain_small, chain_gate]
    alternate(figures, env, runs)
    os.remove(blob_file)

    width = max(len(f.name) for f in figures)
    print(f"{'what':<{width}}  {'wall s':>19}  {'CPU s':>16}  {'max RSS MiB':>16}  "
          f"{'registry CPU s':>16}  {'servers CPU s':>16}")
    for f in figures:
        print(f.row(width))
    anchor = min((curl1, curl2), key=lambda f: f.med("wall"))
    pipe = min((piped1, piped2), key=lambda f: f.med("wall"))
    floor_cpu = anchor.med("cpu") + dgst.med("cpu")
    print()
    print(f"anchor: the faster curl is {anchor.name.split(',')[0]} ({anchor.med('wall'):.3f} s); "
          f"the faster pipeline is {pipe.name.split(' (')[0]} ({pipe.med('wall'):.3f} s)")
    for p, g, s, label in [(probe_big, probe_gate, probe_small, "")] + (
            [(base[0], base[2], base[1], " (baseline)")] if base else []):
        print(f"200 MiB{label}: probe / fastest curl wall = {p.med('wall') / anchor.med('wall'):.2f}x (goal <= 1.2x)")
        print(f"200 MiB{label}: probe CPU / (curl CPU + openssl dgst CPU) = {p.med('cpu') / floor_cpu:.2f}x (goal <= 1.0x)")
        print(f"200 MiB{label}: probe / (fastest curl | openssl dgst) wall = {p.med('wall') / pipe.med('wall'):.2f}x "
              f"(goal <= 0.8x; the same fetch-and-verify by the peers, overlapped on two processes)")
        print(f"200 MiB{label}: probe max RSS / curl's = {p.med('rss') / anchor.med('rss'):.2f}x (goal <= 1.1x)")
        print(f"{GATE}-image gate{label} / one small check wall = {g.med('wall') / s.med('wall'):.2f}x (goal <= 2.5x)")
    # When the server is the bound: its CPU per second of the client's wall time. On two
    # cores, a registry near 1.0 holds one core for the whole transfer.
    for f in (probe_big, anchor, pipe, probe_gate):
        print(f"registry CPU share while serving {f.name.split(',')[0]}: {f.med('registry'):.2f} s of "
              f"{f.med('wall'):.2f} s wall = {f.med('registry') / f.med('wall'):.2f} core "
              f"({os.cpu_count()} cores in all; client {f.med('cpu'):.2f} s CPU)")
    print(f"200 MiB: probe / skopeo wall = {probe_big.med('wall') / skopeo_big.med('wall'):.2f}x; "
          f"max RSS = {probe_big.med('rss') / skopeo_big.med('rss'):.2f}x")
    print(f"{GATE}-image gate / manual chain over the same images = {probe_gate.med('wall') / chain_gate.med('wall'):.3f}x (goal <= 0.05x)")
    print(f"small image: probe / manual chain wall = {probe_small.med('wall') / chain_small.med('wall'):.3f}x")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
