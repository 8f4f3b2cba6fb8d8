"""`crnn serve` under load: single-crop clients on loopback vs offline `crnn recognize`, same crops, same run.

    python scripts/bench_serve.py                          # IIIT5K + IC15 crops, 16 and 64 clients
    python scripts/bench_serve.py --quick                  # smoke run: 64 crops, 4 and 16 clients
    python scripts/bench_serve.py --images DIR --concurrency 16,64 --crops 2000 --json serve.json

Offline: the Recognizer that `crnn recognize` runs, over the crops' paths (read, decode, preprocess,
infer, decode), timed in this process before the server starts. Served: `crnn serve` in a subprocess
on a free loopback port, then for each concurrency level C a bounded asyncio load generator (--client
raw, the default: asyncio streams and httptools' response parser; or aiohttp): C clients, each sending
one crop per request and waiting for the answer before sending the next, until every crop was sent
once. Reported per level: crops/s, its ratio to offline, p50 / p99 latency, errors
(non-200 answers or failed connections) and mismatches (an answer that differs from offline's text).

Client and server share the machine's cores, as they do for any single-machine loopback test. The
issue's target: served >= 0.7 x offline with zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
PORT_LINE = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
REQUEST_TIMEOUT_S = 60.0  # a request without an answer by then is an error (aiohttp's total timeout too)


async def load_raw(
    url: str, bodies: list[bytes], texts: list[str], concurrency: int, timeout: float = REQUEST_TIMEOUT_S
) -> dict[str, Any]:
    """The same clients as ``load`` on bare asyncio streams, each answer read by httptools' response
    parser (the C HTTP parser uvicorn itself uses): about a fifth of aiohttp's CPU a request, which on
    a 2-core machine is CPU the server gets back (see the README's table, both clients).

    Like aiohttp's, a request that takes over ``timeout`` seconds, a dropped connection and an answer
    that is not the JSON the API promises each count as one error, and the run goes on; a connection
    the server marks ``Connection: close`` is not used again."""
    import httptools

    host, port = url.removeprefix("http://").rsplit(":", 1)
    tally = Tally(bodies, texts)

    class Reply:
        """httptools callbacks: the body's pieces, whether the connection may be used again, and whether
        the message is complete."""

        def __init__(self) -> None:
            self.body: list[bytes] = []
            self.done = False
            self.keep_alive = False
            self.parser: httptools.HttpResponseParser | None = None

        def on_headers_complete(self) -> None:
            # Asked here: once the message is complete the parser has reset and always says False,
            # which would open a new connection for every request.
            assert self.parser is not None
            self.keep_alive = self.parser.should_keep_alive()

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            self.done = True

    async def exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
    ) -> tuple[int, bytes, bool]:
        """One request on the connection: (status, body, whether the connection may be used again)."""
        head = (
            f"POST /v1/recognize HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode("ascii") + body)
        reply = Reply()
        parser = reply.parser = httptools.HttpResponseParser(reply)
        while not reply.done:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the connection before the answer was complete")
            parser.feed_data(data)
        return parser.get_status_code(), b"".join(reply.body), reply.keep_alive

    deadline_scope = getattr(asyncio, "timeout", None)

    async def client() -> None:
        reader = writer = None
        while (i := tally.next()) is not None:
            start = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, int(port))
                assert reader is not None
                if deadline_scope is None:  # Python 3.10: wait_for runs the exchange as a task of its own
                    status, body, keep = await asyncio.wait_for(exchange(reader, writer, bodies[i]), timeout)
                else:  # 3.11+: a deadline on this task, no extra task a request on the client's hot path
                    async with deadline_scope(timeout):
                        status, body, keep = await exchange(reader, writer, bodies[i])
            except asyncio.TimeoutError:
                tally.failed(TimeoutError(f"no answer within {timeout:g} s"))
                keep = False
            except (OSError, httptools.HttpParserError) as exc:
                tally.failed(exc)
                keep = False
            else:
                try:
                    answer = json.loads(body) if status == 200 else body
                except ValueError as exc:
                    tally.failed(ValueError(f"a 200 answer that is not JSON: {exc}"))
                else:
                    tally.answered(i, start, status, answer)
            if not keep and writer is not None:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(concurrency))), timeout=600)
    return tally.row(concurrency, time.perf_counter() - start)


class Tally:
    """What a load run counts: the crops to send (handed out in order, each once), every answered
    request's latency, the errors (non-200 answers, failed connections) and wrong answers."""

    def __init__(self, bodies: list[bytes], texts: list[str]) -> None:
        self.bodies, self.texts = bodies, texts
        self.sent = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.mismatches = 0

    def next(self) -> int | None:
        """The next crop's index, or None once every crop was sent (the clients stop: bounded)."""
        if self.sent >= len(self.bodies):
            return None
        self.sent += 1
        return self.sent - 1

    def failed(self, exc: BaseException) -> None:
        self.errors.append(f"{type(exc).__name__}: {exc}")

    def answered(self, i: int, start: float, status: int, answer: Any) -> None:
        self.latencies.append(time.perf_counter() - start)
        if status != 200:
            self.errors.append(f"{status}: {str(answer)[:200]}")
            return
        try:
            text = answer["results"][0]["text"]
        except (KeyError, IndexError, TypeError):
            self.errors.append(f"200 without results[0].text: {str(answer)[:200]}")
            return
        if text != self.texts[i]:
            self.mismatches += 1

    def row(self, concurrency: int, seconds: float) -> dict[str, Any]:
        ms = sorted(x * 1000 for x in self.latencies)
        return {
            "concurrency": concurrency,
            "requests": len(self.bodies),
            "crops_per_s": len(self.bodies) / seconds,
            "p50_ms": statistics.median(ms) if ms else float("nan"),
            "p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else float("nan"),
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else None,
            "mismatches": self.mismatches,
        }


def find_crops(images: Path | None, n: int) -> list[Path]:
    """n crops: from --images, else IIIT5K and IC15 alternating (both are word crops of real scenes)."""
    if images is not None:
        found = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            sys.exit(f"bench_serve: no images under {images}")
        return [found[i % len(found)] for i in range(n)]
    sets = []
    for folder in ("iiit5k_train", "ic15_train"):
        root = REAL / folder
        if not root.is_dir():
            sys.exit(f"bench_serve: {root} is missing; pass --images DIR")
        sets.append(sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
    mixed = [p for pair in zip(*sets) for p in pair]
    return mixed[:n]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process ``pid`` and the processes under it (Linux /proc;
    0.0 elsewhere): the server and its worker processes."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                children = task / "children"
                if children.exists():
                    todo += [int(c) for c in children.read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def batch_counts(url: str) -> tuple[float, float]:
    """(crops, model calls) the server has counted so far, from its /metrics (crnn_batch_size). With
    --workers N a scrape reaches one worker: then the mean is that worker's."""
    import httpx

    text = httpx.get(url + "/metrics", timeout=10).text
    found = dict.fromkeys(("crnn_batch_size_sum", "crnn_batch_size_count"), 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] = float(value)
    return found["crnn_batch_size_sum"], found["crnn_batch_size_count"]


def offline(paths: list[Path], args: argparse.Namespace) -> tuple[float, list[str], str, str | None, float]:
    """(crops/s, texts, backend, OpenVINO hint, CPU seconds a crop) of the Recognizer `crnn recognize`
    uses, warm."""
    from crnn_cli.core.recognizer import Recognizer

    # `crnn recognize` as a user runs it: its default threads (all cores) and batch, whatever --threads
    # and --workers the server is given.
    with Recognizer(args.model, args.backend) as rec:
        list(rec.recognize(paths[: min(len(paths), 64)]))  # warm-up: first-call costs are not throughput
        start, cpu = time.perf_counter(), time.process_time()
        results = list(rec.recognize(paths))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        backend = rec.backend.name
        hint = rec.selection.hint if rec.selection is not None else None  # what "auto" chose with it
    failed = [r for r in results if r.error]
    if failed:
        sys.exit(f"bench_serve: offline recognize failed on {failed[0].error}")
    return len(paths) / seconds, [r.text for r in results], backend, hint, cpu / len(paths)


class Server:
    """`crnn serve` on 127.0.0.1, port chosen by the kernel; stopped with SIGTERM."""

    def __init__(self, args: argparse.Namespace, backend: str, hint: str | None) -> None:
        cmd = [sys.executable, "-m", "crnn_cli", "serve", "--host", "127.0.0.1", "--port", "0",
               "--backend", backend, "--workers", str(args.workers), "--max-batch", str(args.max_batch),
               "--max-wait-ms", str(args.max_wait_ms)]  # fmt: skip
        if args.model:
            cmd += ["--model", args.model]
        if hint:
            cmd += ["--hint", hint]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.instances:
            cmd += ["--instances", str(args.instances)]
        # The default log level: a deployed server logs each request, so the benchmark pays for it too.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_url()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # read all along, so the pipe never fills and stalls the server
            if len(self.lines) < 1000:
                self.lines.append(line)

    def _wait_url(self, timeout: float = 300) -> str:
        import httpx

        deadline = time.monotonic() + timeout
        url = ""
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in list(self.lines):
                m = PORT_LINE.search(line)
                if m:
                    url = f"http://127.0.0.1:{m.group(1)}"
            if url:
                try:
                    if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                        return url
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        self.stop()
        sys.exit("bench_serve: crnn serve did not become ready:\n" + "".join(self.lines[-20:]))

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode


async def load(url: str, bodies: list[bytes], texts: list[str], concurrency: int) -> dict[str, Any]:
    """C clients, one crop a request, each crop sent once; latency of every request.

    aiohttp, not httpx: the load generator shares the cores with the server, and httpx's client spent
    so much of them that it set the pace (64 clients: 90 crops/s through httpx, 440 through aiohttp,
    against the same server in the same minute).
    """
    import aiohttp

    tally = Tally(bodies, texts)

    async def client(http: aiohttp.ClientSession) -> None:
        while (i := tally.next()) is not None:
            start = time.perf_counter()
            try:
                async with http.post(
                    url + "/v1/recognize", data=bodies[i], headers={"content-type": "image/png"}
                ) as r:
                    status = r.status
                    answer = await r.json() if status == 200 else await r.text()
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:  # ValueError: bad JSON
                tally.failed(exc)
                continue
            tally.answered(i, start, status, answer)

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=concurrency)  # one keep-alive connection per client
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return tally.row(concurrency, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=Path, default=None, help="folder of crops (default: IIIT5K + IC15)")
    ap.add_argument("--crops", type=int, default=2000, help="crops per level (each sent once)")
    ap.add_argument("--concurrency", default="16,64", help="client counts, comma-separated")
    ap.add_argument("--model", default=None)
    ap.add_argument("--backend", default=None, help="default: what `crnn recognize` picks (auto)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--instances", type=int, default=None, help="model instances a worker (crnn serve's default)"
    )
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument(
        "--client", choices=("raw", "aiohttp"), default="raw",
        help="load generator: asyncio streams + httptools (raw, lighter) or aiohttp",
    )  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="smoke run: 64 crops, 4 and 16 clients")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.quick:
        args.crops, args.concurrency = min(args.crops, 64), "4,16"
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

    paths = find_crops(args.images, args.crops)
    bodies = [p.read_bytes() for p in paths]
    rate, texts, backend, hint, offline_cpu = offline(paths, args)
    server = Server(args, backend, hint)
    rows = []
    try:
        generator = load_raw if args.client == "raw" else load
        asyncio.run(generator(server.url, bodies[: min(len(bodies), 32)], texts, 4))  # warm-up
        for c in levels:
            served, client = cpu_seconds(server.proc.pid), time.process_time()
            crops, calls = batch_counts(server.url)
            row = asyncio.run(generator(server.url, bodies, texts, c))
            crops_after, calls_after = batch_counts(server.url)
            row["crops_per_call"] = (crops_after - crops) / max(calls_after - calls, 1)
            row["server_cpu_ms"] = 1000 * (cpu_seconds(server.proc.pid) - served) / len(bodies)
            row["client_cpu_ms"] = 1000 * (time.process_time() - client) / len(bodies)
            row["vs_offline"] = row["crops_per_s"] / rate
            rows.append(row)
    finally:
        code = server.stop()
    print(f"crnn serve vs offline recognize: {len(paths)} crops, backend {backend}, "
          f"{args.workers} worker(s), --instances {args.instances or 'default'}, --threads {args.threads or 'default'}, "
          f"--max-batch {args.max_batch}, client {args.client}, "
          f"--max-wait-ms {args.max_wait_ms}")  # fmt: skip
    print(
        f"offline `crnn recognize` (Recognizer, warm): {rate:.0f} crops/s, CPU {1000 * offline_cpu:.2f} ms a crop"
    )
    print(
        f"{'clients':>8} {'crops/s':>9} {'vs offline':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'mismatch':>8}"
        f" {'server CPU ms/crop':>19} {'client CPU ms/crop':>19} {'crops a call':>12}"
    )
    for r in rows:
        print(f"{r['concurrency']:>8} {r['crops_per_s']:>9.0f} {r['vs_offline']:>10.2f} {r['p50_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {r['errors']:>7} {r['mismatches']:>8} {r['server_cpu_ms']:>19.2f} "
              f"{r['client_cpu_ms']:>19.2f} {r['crops_per_call']:>12.1f}")  # fmt: skip
        if r["first_error"]:
            print(f"         first error: {r['first_error']}")
    print(f"server exit code after SIGTERM: {code}")
    if args.json:
        report = {"offline_crops_per_s": rate, "offline_cpu_ms": 1000 * offline_cpu, "backend": backend, "crops": len(paths), "client": args.client, "rows": rows,
                  "server_exit": code}  # fmt: skip
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if code == 0 and all(r["errors"] == 0 and r["mismatches"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
