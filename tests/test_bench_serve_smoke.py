"""scripts/bench_serve.py runs start to end on the bundled samples: a row per client count, no errors.

No timing is asserted (machines differ); what is checked is that the load generator ran every
request against a real `crnn serve`, that the answers matched offline `crnn recognize`, and that the
server drained and exited 0.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from scripts_util import load_script
from serve_util import SAMPLES, Server

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("client", ["raw", "aiohttp"])
def test_bench_serve_quick_on_samples(tmp_path: Path, client: str) -> None:
    out = tmp_path / "serve.json"
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "scripts" / "bench_serve.py"), "--images", str(ROOT / "crnn_cli" / "samples"),
            "--crops", "12", "--concurrency", "2,5", "--backend", "onnxruntime", "--json", str(out),
            "--client", client,
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "vs offline" in proc.stdout and "p99 ms" in proc.stdout
    report = json.loads(out.read_text())
    assert report["client"] == client and f"client {client}" in proc.stdout
    assert [r["concurrency"] for r in report["rows"]] == [2, 5]
    for row in report["rows"]:
        assert row["requests"] == 12 and row["errors"] == 0 and row["mismatches"] == 0
        assert row["crops_per_s"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
        assert 1 <= row["crops_per_call"] <= 5  # from the server's /metrics: single-crop requests
    assert report["offline_crops_per_s"] > 0 and report["server_exit"] == 0


def test_raw_client_counts_refusals_and_wrong_answers() -> None:
    """The light load generator is a real HTTP client: a 422 is an error, an answer other than the
    expected text a mismatch, and the connection the server keeps open after a 4xx is used again."""
    bench = load_script("bench_serve.py")
    png = sorted(SAMPLES.glob("*.png"))[0].read_bytes()
    bodies = [png, b"not an image", png, png]
    with Server() as s:
        row = asyncio.run(bench.load_raw(s.url, bodies, ["?", "", "?", "?"], 1))
        right = asyncio.run(bench.load_raw(s.url, [png], [row_text(s.url, png)], 1))
    assert row["requests"] == 4 and row["errors"] == 1 and "422" in row["first_error"]
    assert row["mismatches"] == 3  # every image read, none as "?"
    assert right["errors"] == 0 and right["mismatches"] == 0


def test_raw_client_counts_a_misbehaving_server_and_goes_on() -> None:
    """A server that answers 200 with a body that is not JSON (and closes the connection), or does not
    answer at all: each is one counted error, the next request goes out on a new connection, and a
    good answer after them still counts."""
    bench = load_script("bench_serve.py")
    good = json.dumps({"results": [{"text": "ok", "confidence": 1.0}]}).encode()
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            seen.append(length)
            if len(seen) == 1:  # not JSON, and this connection ends here
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
                await writer.drain()
                writer.close()
                return
            if len(seen) == 2:  # never answered
                await asyncio.sleep(30)
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(good), good))
            await writer.drain()

    row = against(handle, bench.load_raw, [b"a", b"bb", b"ccc"], ["ok"] * 3, 1, 0.5)
    assert seen == [1, 2, 3]  # every crop went out, each after the one before failed
    assert row["errors"] == 2 and "not JSON" in row["first_error"] and row["mismatches"] == 0


def test_raw_client_keeps_one_connection_while_the_server_keeps_it_open() -> None:
    """HTTP/1.1 keep-alive: each client sends all its requests on one connection (a new connection a
    request costs both sides CPU that a 2-core benchmark takes from the server)."""
    bench = load_script("bench_serve.py")
    good = json.dumps({"results": [{"text": "ok", "confidence": 1.0}]}).encode()
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
            connections[-1] += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(good), good))
            await writer.drain()

    row = against(handle, bench.load_raw, [b"a"] * 10, ["ok"] * 10, 2)
    assert row["errors"] == 0 and row["mismatches"] == 0
    assert len(connections) == 2 and sum(connections) == 10  # one connection a client, all requests on it


def against(handle, load_raw, *args) -> dict:  # type: ignore[no-untyped-def]
    """``load_raw(url, *args)`` run against an asyncio stand-in server whose connections ``handle`` serves."""

    async def run() -> dict:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await load_raw(f"http://127.0.0.1:{port}", *args)
        finally:
            server.close()

    return asyncio.run(run())


def row_text(url: str, body: bytes) -> str:
    import httpx

    r = httpx.post(url + "/v1/recognize", content=body, headers={"content-type": "image/png"}, timeout=60)
    return r.json()["results"][0]["text"]
