#!/usr/bin/env python3
"""Side-by-side measurements for scripts/bench. Usage: bench.py STACK_ENV PROBE RUNS"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ACCEPT = ("application/vnd.oci.image.manifest.v1+json,"
          "application/vnd.docker.distribution.manifest.v2+json")


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


def measure(cmd, env, runs, setup=None):
    """Median wall seconds and median max RSS (MiB) of `cmd` over `runs` runs."""
    walls, rss = [], []
    for _ in range(runs):
        if setup:
            setup()
        out = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        last = out.stderr.strip().splitlines()[-1]
        if out.returncode != 0 and not re.fullmatch(r"[\d.]+ \d+", last):
            sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
        m = re.search(r"([\d.]+) (\d+)$", out.stderr.strip())
        walls.append(float(m.group(1)))
        rss.append(int(m.group(2)) / 1024)
    return statistics.median(walls), statistics.median(rss)


def main():
    env_file, probe, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    env = load_env(env_file)
    reg, host, pw, stack = env["STACK_REGISTRY"], env["STACK_ECR_HOST"], env["STACK_REGISTRY_PASSWORD"], env["STACK_DIR"]
    ca = os.path.join(stack, "ca.pem")
    certs = os.path.join(stack, "skopeo-certs")
    out = tempfile.mkdtemp()
    manifest = json.loads(subprocess.check_output(
        ["curl", "-sf", "--cacert", ca, "-u", f"AWS:{pw}", "-H", f"Accept: {ACCEPT}",
         f"https://{reg}/v2/consultingfirm/big/manifests/latest"]))
    layer = manifest["layers"][0]
    print(f"runs per figure: {runs} (median); machine: {os.cpu_count()} cores\n")

    def clean():
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)

    rows = []
    big = f"{host}/consultingfirm/big:latest"
    rows.append(("probe check, 200 MiB image (pull + verify)", measure([probe, "check", big], env, runs)))
    rows.append(("skopeo copy, 200 MiB image to dir:", measure(
        ["skopeo", "copy", "-q", "--src-cert-dir", certs, "--src-creds", f"AWS:{pw}",
         f"docker://{reg}/consultingfirm/big:latest", f"dir:{out}/img"], env, runs, clean)))
    rows.append(("curl, the 200 MiB blob to /dev/null", measure(
        ["curl", "-sf", "--cacert", ca, "-u", f"AWS:{pw}", "-o", "/dev/null",
         f"https://{reg}/v2/consultingfirm/big/blobs/{layer['digest']}"], env, runs)))

    small = f"{host}/consultingfirm/naming-server-service:latest"
    rows.append(("probe check, small image (whole check)", measure([probe, "check", small], env, runs)))
    chain = (
        "set -e; aws sts get-caller-identity >/dev/null; "
        "pw=$(aws ecr get-login-password --region us-east-1); "
        f"skopeo inspect --cert-dir {certs} --creds AWS:$pw docker://{reg}/consultingfirm/naming-server-service:latest >/dev/null; "
        f"rm -rf {out}/small; skopeo copy -q --src-cert-dir {certs} --src-creds AWS:$pw "
        f"docker://{reg}/consultingfirm/naming-server-service:latest dir:{out}/small"
    )
    rows.append(("manual chain: aws sts + ecr, skopeo inspect + copy", measure(["bash", "-c", chain], env, runs)))

    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'wall s':>7}  {'max RSS MiB':>11}")
    for name, (w, r) in rows:
        print(f"{name:<{width}}  {w:>7.3f}  {r:>11.1f}")
    fig = dict(rows)
    p, s, c = fig[rows[0][0]], fig[rows[1][0]], fig[rows[2][0]]
    ps, mc = fig[rows[3][0]], fig[rows[4][0]]
    print()
    print(f"200 MiB: probe / curl wall = {p[0] / c[0]:.2f}x (aim: within ~1.2x); probe / skopeo wall = {p[0] / s[0]:.2f}x")
    print(f"200 MiB: probe / skopeo max RSS = {p[1] / s[1]:.2f}x (aim: below 1)")
    print(f"small image: probe / manual chain wall = {ps[0] / mc[0]:.3f}x; probe whole check = {ps[0]:.3f} s")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
