"""Loopback load test of ``qstar serve``: many concurrent clients, zero errors, latency percentiles.

    python -m benchmarks.serve_load [--model default|random|PATH|hf:DIR] [--clients 50] [--requests 10]
                                    [--max-tokens 16] [--reasoning-every 0]

Starts ``qstar serve`` as a separate process on 127.0.0.1 (a free port), waits for it, then runs
``--clients`` concurrent clients that each send ``--requests`` chat completions one after the
other (every ``--reasoning-every``-th request, if > 0, asks for ``reasoning: {"mode": "mcts",
"budget": 4}`` on a Game-of-24 puzzle; the others are plain System-1 generations of
``--max-tokens`` tokens, which the server batches across clients). The whole run is bounded by
``--max-seconds``. ``--model random`` serves a randomly initialised tiny GPT (what is measured
is then the server, not the model's answers). Writes benchmarks/results/serve_load.json with
requests/s and p50/p90/p99 latency; exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.common import write_json

PUZZLES = ["4 9 10 13", "1 1 4 6", "2 3 5 12", "3 3 8 8", "1 5 5 5"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_checkpoint(directory: Path) -> str:
    from qstar.policy.tinygpt.checkpoint import save_checkpoint
    from qstar.policy.tinygpt.model import GPT, GPTConfig
    from qstar.policy.tinygpt.tokenizer import Tokenizer

    tokenizer = Tokenizer()
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_layer=2, n_head=2, n_embd=64), seed=0)
    save_checkpoint(directory / "random", model, tokenizer, meta={"note": "random model for the load test"})
    return str(directory / "random")


def start_server(model: str, port: int, threads: int, log: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "qstar.cli.main",
        "serve",
        "--port",
        str(port),
        "--model",
        model,
        "--threads",
        str(threads),
    ]
    with log.open("w") as sink:  # a file, not a pipe: a full pipe would stall the server
        return subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)


def wait_ready(proc: subprocess.Popen, root_url: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"qstar serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{root_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"qstar serve did not answer within {timeout_s} s")


def run_clients(base_url: str, args: argparse.Namespace) -> tuple[list[float], list[str]]:
    """``args.clients`` threads, each its own connection (as independent clients are), each
    sending ``args.requests`` requests one after another. (One shared async connection pool
    was measured to queue requests on the client side and hide the server's behaviour.)"""
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + args.max_seconds

    def client(c: int) -> None:
        with httpx.Client(base_url=base_url, timeout=args.request_timeout) as http:
            for r in range(args.requests):
                if time.monotonic() > deadline:
                    errors.append("run exceeded --max-seconds")
                    return
                n = c * args.requests + r
                body: dict = {"model": "m", "max_tokens": args.max_tokens}  # unseeded requests batch together
                puzzle = PUZZLES[n % len(PUZZLES)]
                if args.reasoning_every and n % args.reasoning_every == 0:
                    body["messages"] = [{"role": "user", "content": puzzle}]
                    body["reasoning"] = {"mode": "mcts", "budget": 4, "task": "game24"}
                else:
                    body["messages"] = [{"role": "user", "content": f"game24: {puzzle}\n"}]
                start = time.perf_counter()
                try:
                    resp = http.post("/chat/completions", json=body)
                    if resp.status_code != 200:
                        errors.append(f"HTTP {resp.status_code}: {resp.text[:200]}")
                        continue
                    resp.json()["choices"][0]["message"]["content"]
                except (httpx.HTTPError, KeyError, ValueError) as err:
                    errors.append(f"{type(err).__name__}: {err}")
                    continue
                latencies.append(time.perf_counter() - start)

    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(client, range(args.clients)))
    return latencies, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default', 'random', a checkpoint dir or hf:DIR")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=10, help="requests per client, sent one after another")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument(
        "--reasoning-every", type=int, default=0, help="every N-th request uses reasoning (0: none)"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    ap.add_argument("--request-timeout", type=float, default=120.0)
    ap.add_argument("--max-seconds", type=float, default=600.0, help="bound on the whole run")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = random_checkpoint(Path(tmp)) if args.model == "random" else args.model
        port, log = free_port(), Path(tmp) / "server.log"
        root_url = f"http://127.0.0.1:{port}"
        base_url = f"{root_url}/v1"
        proc = start_server(model, port, args.threads, log)
        try:
            wait_ready(proc, root_url, log, timeout_s=120)
            start = time.perf_counter()
            latencies, errors = run_clients(base_url, args)
            seconds = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    total = args.clients * args.requests
    result = {
        "model": args.model,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "requests": total,
        "completed": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:5],
        "max_tokens": args.max_tokens,
        "reasoning_every": args.reasoning_every,
        "server_threads": args.threads,
        "seconds": round(seconds, 3),
        "requests_per_s": round(len(latencies) / seconds, 2) if seconds else 0.0,
        "latency_ms": {f"p{q}": round(1000 * percentile(latencies, q), 1) for q in (50, 90, 99)}
        | {"max": round(1000 * max(latencies), 1)}
        if latencies
        else {},
        "cpu_count": os.cpu_count(),
    }
    print(
        f"{len(latencies)}/{total} ok, {len(errors)} errors, {result['requests_per_s']} req/s, "
        f"latency {result['latency_ms']}"
    )
    write_json("serve_load", result, args.out)
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
