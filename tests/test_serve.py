"""`crnn serve` through a real uvicorn server on loopback: answers, batching, limits, errors, logs.

Every test talks HTTP to `crnn serve` started as a subprocess on a free port (serve_util.Server); the
answers are checked against `crnn recognize` on the same files.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import jsonschema
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from serve_util import Server, real_crops, sample_paths

from crnn_cli.cli import cli
from crnn_cli.commands.serve import split_cores


def recognize_cli(paths: list[Path], *extra: str) -> list[dict]:
    """What `crnn recognize --format jsonl` says about ``paths`` (same backend as the server)."""
    args = ["recognize", "--format", "jsonl", "--backend", "onnxruntime", "--char-confidences", *extra]
    r = CliRunner().invoke(cli, [*args, *map(str, paths)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()]


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height pixels (no pixel data: never decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus text page (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


@pytest.fixture(scope="module")
def server():
    with Server("--max-batch", "8", "--max-wait-ms", "50", "--max-body-mb", "1") as s:
        yield s


@pytest.fixture(scope="module")
def reference():
    paths = sample_paths()
    return paths, recognize_cli(paths)


def test_one_image_body_reads_as_crnn_recognize(server, reference):
    paths, expected = reference
    for path, want in zip(paths, expected):
        for ctype in ("image/png", "application/octet-stream"):
            r = httpx.post(
                server.url + "/v1/recognize", content=path.read_bytes(), headers={"content-type": ctype}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["model"] == "default.onnx" and body["elapsed_ms"] >= 0
            assert body["results"] == [{"text": want["text"], "confidence": want["confidence"]}], path.name


def test_multipart_keeps_order_and_gives_char_confidences(server, reference):
    paths, expected = reference
    order = list(reversed(range(len(paths))))
    files = [("image", (paths[i].name, paths[i].read_bytes(), "image/png")) for i in order]
    r = httpx.post(server.url + "/v1/recognize", params={"char_confidences": "1"}, files=files)
    assert r.status_code == 200, r.text
    got = r.json()["results"]
    assert [g["text"] for g in got] == [expected[i]["text"] for i in order]
    for g, i in zip(got, order):
        assert g["confidence"] == expected[i]["confidence"]
        assert g["char_confidences"] == expected[i]["char_confidences"]


def test_concurrent_requests_share_batches_and_read_the_same(server, reference):
    paths, expected = reference
    before = httpx.get(server.url + "/metrics").text

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            posts = [
                client.post("/v1/recognize", content=p.read_bytes(), headers={"content-type": "image/png"})
                for p in paths * 4
            ]
            return await asyncio.gather(*posts)

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * len(responses)
    want = [{"text": e["text"], "confidence": e["confidence"]} for e in expected] * 4
    assert [r.json()["results"][0] for r in responses] == want
    after = httpx.get(server.url + "/metrics").text
    calls = metric(after, "crnn_batch_size_count") - metric(before, "crnn_batch_size_count")
    crops = metric(after, "crnn_batch_size_sum") - metric(before, "crnn_batch_size_sum")
    assert crops == len(responses)
    assert calls < len(responses), "concurrent requests must share model calls"
    assert metric(after, "crnn_batch_size_bucket", le="8.0") == metric(after, "crnn_batch_size_count")


@pytest.mark.shared
def test_real_crops_read_as_crnn_recognize(server, data_dir):
    paths = real_crops(data_dir, 12)
    expected = recognize_cli(paths)
    files = [("image", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    r = httpx.post(server.url + "/v1/recognize", files=files, timeout=120)
    assert r.status_code == 200, r.text
    got = [(g["text"], g["confidence"]) for g in r.json()["results"]]
    assert got == [(e["text"], e["confidence"]) for e in expected]


def test_bad_requests_get_json_4xx_naming_the_part_and_serving_goes_on(server, reference):
    paths, expected = reference
    url = server.url + "/v1/recognize"
    good = paths[0].read_bytes()
    cases = [
        (httpx.post(url, content=b"hello", headers={"content-type": "text/plain"}), 415, "text/plain"),
        (httpx.post(url, content=good, headers={"content-type": ""}), 415, "(none)"),
        (httpx.post(url, content=b"not a png", headers={"content-type": "image/png"}), 422, "body:"),
        (httpx.post(url, content=b"", headers={"content-type": "image/png"}), 422, "body: empty"),
        (
            httpx.post(url, files=[("image", ("a.png", good)), ("image", ("bad.png", b"\x89PNG garbage"))]),
            422,
            "image[1] (bad.png)",
        ),
        (httpx.post(url, files=[("photo", ("a.png", good))]), 422, "no 'image' file field"),
        (httpx.post(url, data={"image": "text"}, files=[("x", ("a", b""))]), 422, "text field"),
        (
            httpx.post(
                url, content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}
            ),
            422,
            "multipart",
        ),
        (
            httpx.post(url, content=png_header(9000, 9000), headers={"content-type": "image/png"}),
            413,
            "9000x9000",
        ),
        (
            httpx.post(url, content=b"\0" * (1024 * 1024 + 1), headers={"content-type": "image/png"}),
            413,
            "limit",
        ),
        (httpx.get(server.url + "/nowhere"), 404, "/nowhere"),
        (httpx.get(url), 405, "GET /v1/recognize"),
    ]
    for r, status, words in cases:
        assert r.status_code == status, (words, r.text)
        assert r.headers["content-type"] == "application/json"
        assert words in r.json()["error"], (words, r.json())
        assert "Traceback" not in r.text
    r = httpx.post(url, content=good, headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.json()["results"][0]["text"] == expected[0]["text"]


def test_body_over_the_limit_is_refused_while_streaming(server):
    """No Content-Length (chunked): the server counts as it reads and stops past the limit."""

    def chunks():
        for _ in range(64):
            yield b"\0" * 65536  # 4 MiB in all, the limit is 1

    r = httpx.post(server.url + "/v1/recognize", content=chunks(), headers={"content-type": "image/png"})
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_health_ready_model_and_openapi(server, reference):
    assert httpx.get(server.url + "/healthz").json() == {"status": "alive"}
    assert httpx.get(server.url + "/readyz").status_code == 200
    info = httpx.get(server.url + "/v1/model").json()
    assert info["name"] == "default.onnx" and info["backend"] == "onnxruntime"
    assert info["input"]["height"] == 32 and info["input"]["channels"] == 3
    # the bundled model's own padding and stretch rules (its metadata), as the server applies them
    inp = info["input"]
    assert (inp["min_width"], inp["width_step"], inp["min_aspect"]) == (32, 8, 2.0)
    assert info["dictionary"]["size"] > 90 and info["dictionary"]["use_space_char"] is True
    # One single-thread model instance a core by default (the concurrent test reads through them all).
    assert info["instances"] == split_cores(os.cpu_count() or 1, 1, None, None)[0]

    doc = httpx.get(server.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/",
        "/v1/recognize",
        "/v1/model",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }
    # The schema the document gives for a 200 matches what the server really answers.
    schema = {"$ref": "#/components/schemas/Recognize", "components": doc["components"]}
    paths, _ = reference
    files = [("image", (p.name, p.read_bytes())) for p in paths[:2]]
    body = httpx.post(server.url + "/v1/recognize?char_confidences=true", files=files).json()
    jsonschema.Draft202012Validator(schema).validate(body)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**body, "results": [{"text": 3}]})


def test_metrics_count_requests_by_status_and_show_queue_depth(server):
    url = server.url + "/v1/recognize"
    page = httpx.get(server.url + "/metrics")
    assert page.headers["content-type"].startswith("text/plain")
    before = metric(page.text, "crnn_requests_total", path="/v1/recognize", status="415")
    httpx.post(url, content=b"x", headers={"content-type": "text/plain"})
    text = httpx.get(server.url + "/metrics").text
    assert metric(text, "crnn_requests_total", path="/v1/recognize", status="415") == before + 1
    assert metric(text, "crnn_request_duration_seconds_count", path="/v1/recognize") > 0
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"crnn_queue_depth", "crnn_batch_size", "crnn_request_duration_seconds"} <= names
    assert metric(text, "crnn_queue_depth") == 0  # nothing in flight now


def test_logs_are_json_lines_one_per_request(server):
    httpx.get(server.url + "/healthz", params={"probe": "log"})
    logs = server.logs()  # raises if any line is not JSON
    requests = [e for e in logs if e["msg"] == "request"]
    assert requests and all(
        {"ts", "level", "pid", "method", "path", "status", "ms"} <= set(e) for e in requests
    )
    assert any(e["path"] == "/healthz" and e["status"] == 200 for e in requests)
    assert any(e["path"] == "/v1/recognize" and e["status"] == 422 for e in requests)
    assert any(e["msg"] == "model loaded" for e in logs)


def test_api_key_is_required_when_set():
    env = {"CRNN_TEST_KEY": "s3cret-key"}
    with Server("--api-key-env", "CRNN_TEST_KEY", env=env) as s:
        url = s.url + "/v1/recognize"
        img = sample_paths()[0].read_bytes()
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic s3cret-key"},
                        {"authorization": "Bearer s3cret-ke"}):  # fmt: skip
            r = httpx.post(url, content=img, headers={"content-type": "image/png", **headers})
            assert r.status_code == 401 and "Authorization: Bearer" in r.json()["error"], headers
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert httpx.get(s.url + "/v1/model").status_code == 401
        ok = {"authorization": "Bearer s3cret-key"}
        assert httpx.post(url, content=img, headers={"content-type": "image/png", **ok}).status_code == 200
        assert httpx.get(s.url + "/v1/model", headers=ok).status_code == 200
        assert httpx.get(s.url + "/healthz").status_code == 200  # probes stay open
        assert httpx.get(s.url + "/openapi.json").json()["components"]["securitySchemes"]["bearer"]


def test_unset_api_key_variable_is_a_usage_error():
    cmd = [sys.executable, "-m", "crnn_cli", "serve", "--api-key-env", "CRNN_NO_SUCH_KEY_VAR", "--port", "0"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert "CRNN_NO_SUCH_KEY_VAR" in r.stderr and "unset" in r.stderr


def test_missing_model_fails_before_the_port_opens(tmp_path):
    s = Server("--model", str(tmp_path / "nope.onnx"))
    with pytest.raises(RuntimeError, match="nope.onnx") as info:
        s.start(timeout=60)
    assert "exited 1" in str(info.value)


def test_full_queue_answers_503_with_retry_after():
    wide = sample_paths()[0].read_bytes()
    with Server("--max-batch", "1", "--max-queue", "1", "--max-wait-ms", "0") as s:

        async def flood() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=s.url, timeout=60) as client:
                posts = [
                    client.post("/v1/recognize", content=wide, headers={"content-type": "image/png"})
                    for _ in range(24)
                ]
                return await asyncio.gather(*posts)

        responses = asyncio.run(flood())
        codes = [r.status_code for r in responses]
        assert set(codes) == {200, 503}, codes
        for r in responses:
            if r.status_code == 503:
                assert r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        assert (
            httpx.post(
                s.url + "/v1/recognize", content=wide, headers={"content-type": "image/png"}
            ).status_code
            == 200
        )
        # A request larger than the queue could ever hold is refused outright, not retried forever.
        files = [("image", ("a.png", wide)), ("image", ("b.png", wide))]
        assert httpx.post(s.url + "/v1/recognize", files=files).status_code == 413


def test_sigterm_finishes_in_flight_requests_then_exits_0():
    crops = [("image", (p.name, p.read_bytes())) for p in sample_paths()] * 10
    # The drain timeout is far above what the work takes on a loaded machine: this test is about
    # draining, not about the timeout.
    with Server("--max-batch", "4", "--drain-timeout", "600") as s:

        async def load_then_stop() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=s.url, timeout=120) as client:
                posts = [asyncio.ensure_future(client.post("/v1/recognize", files=crops)) for _ in range(3)]
                # Wait until the server holds the crops (queue depth > 0), then SIGTERM it.
                for _ in range(600):
                    page = (await client.get("/metrics")).text
                    if metric(page, "crnn_queue_depth") > 0:
                        break
                    await asyncio.sleep(0.05)
                else:
                    pytest.fail("the requests never reached the queue")
                code = await asyncio.to_thread(s.terminate)
                assert code == 0, "\n".join(s.lines)
                return await asyncio.gather(*posts)

        responses = asyncio.run(load_then_stop())
        assert [r.status_code for r in responses] == [200] * 3
        assert all(len(r.json()["results"]) == len(crops) for r in responses)
        with pytest.raises(httpx.ConnectError):
            httpx.get(s.url + "/healthz")
        assert any(e["msg"] == "stopped" for e in s.logs())
        assert not any("Cancel" in e["msg"] for e in s.logs())


def test_workers_share_one_port_each_with_its_own_session(reference):
    paths, expected = reference
    with Server("--workers", "2") as s:
        for _ in range(600):  # both workers load their model (the first ready one answered /readyz)
            loaded = {e["pid"] for e in s.logs() if e["msg"] == "model loaded"}
            if len(loaded) == 2:
                break
            time.sleep(0.1)
        assert len(loaded) == 2, s.lines
        for path, want in zip(paths, expected):
            r = httpx.post(
                s.url + "/v1/recognize", content=path.read_bytes(), headers={"content-type": "image/png"}
            )
            assert r.json()["results"][0]["text"] == want["text"]
        assert s.terminate() == 0


def test_help_lists_serve_without_importing_the_server_stack():
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from crnn_cli.cli import cli\n"
        "for args in (['--help'], ['serve', '--help']):\n"
        "    r = CliRunner().invoke(cli, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "    print(r.output)\n"
        "print(sorted(m for m in ('uvicorn', 'starlette', 'prometheus_client', 'onnxruntime') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "serve" in r.stdout and "--max-wait-ms" in r.stdout and "--api-key-env" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_a_port_in_use_is_a_clear_failure(server):
    port = server.url.rsplit(":", 1)[1]
    cmd = [sys.executable, "-m", "crnn_cli", "serve", "--backend", "onnxruntime", "--port", port]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr
    assert "address already in use" in r.stderr.lower()
    assert f"crnn: error: the server did not start on 127.0.0.1:{port}" in r.stderr
    assert httpx.get(server.url + "/healthz").status_code == 200  # the first server is untouched
