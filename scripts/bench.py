"""Driver for scripts/bench: see there. Measures the real binary against a real moto server."""
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = pathlib.Path(os.environ["INFRA_VENV"])
RUNS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(binary, args, cwd, env):
    """Runs infra; returns (exit code, seconds, peak RSS in MiB, stdout and stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([binary, *args], cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss / 1024, out.read().decode() + err.read().decode()


def main():
    binary, sizes = sys.argv[1], [int(n) for n in sys.argv[2:]] or [3, 20, 100, 500]
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([VENV / "bin/moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = pathlib.Path(tempfile.mkdtemp(prefix="infra-bench-"))
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_EC2_METADATA_DISABLED="true",
               HOME=str(work), NO_COLOR="1")
    env.pop("AWS_PROFILE", None)
    env.pop("RUST_LOG", None)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        rows = []
        for n in sizes:
            urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset", method="POST"))
            project = work / f"n{n}"
            (project / "stacks").mkdir(parents=True)
            shutil.copy(ROOT / "tests/fixtures/id_test.pub", project / "stacks/id_test.pub")
            cert = json.loads(subprocess.check_output([VENV / "bin/python", ROOT / "tests/world/aws/aws.py", "import-cert",
                                                       work / "certificates"],
                                                      env=env))["arn"]
            stack = (ROOT / "tests/fixtures/moto.toml").read_text().replace("CERT_ARN", cert)
            stack = stack.replace("WORKERS", str(n - 1))
            (project / "stacks/bench.toml").write_text(stack)
            code, apply_s, apply_mb, err = run(binary, ["apply", "--auto-approve", "-v"], project, env)
            assert code == 0, err
            apply_calls = err.count(" call ")
            plans = []
            for _ in range(RUNS):
                code, secs, mb, err = run(binary, ["plan", "--detailed-exitcode", "-v"], project, env)
                assert code == 0, f"plan after apply must show no changes (exit {code}):\n{err[:3000]}"
                plans.append((secs, mb, err.count(" call ")))
            calls = {c for _, _, c in plans}
            rows.append((n, plans[0][2], statistics.median(s for s, _, _ in plans), max(m for _, m, _ in plans),
                         apply_s, apply_calls))
            assert len(calls) == 1, f"call count varies between runs: {calls}"
            print(f"N={n}: done", file=sys.stderr)
        print("| nodes | plan: AWS calls | plan: wall time (median of 3) | plan: peak memory | apply from scratch: wall time | apply: AWS calls |")
        print("|---:|---:|---:|---:|---:|---:|")
        for n, calls, secs, mb, apply_s, apply_calls in rows:
            print(f"| {n} | {calls} | {secs * 1000:.0f} ms | {mb:.1f} MiB | {apply_s:.1f} s | {apply_calls} |")
    finally:
        moto.kill()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
