"""The multi-node path: a two-node Ray cluster started on this machine (`ray start --head` and a second
`ray start --address` node, one CPU each), a worker killed mid-run, and the CLI joining by address and
by `auto`. Every process the cluster starts is a child of the two `ray start --block` processes this
module starts and stops."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="needs Ray: pip install 'crnn[ray]'")

from ray_util import as_tuples, make_corpus, reference  # noqa: E402

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))
# Token authentication is Ray's default for new clusters; this private one lives on loopback for a few
# minutes, and the second node would need the head's token file.
ENV = {"RAY_AUTH_MODE": "disabled", "RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES": str(200_000_000)}
NODE = ["--num-cpus=1", "--object-store-memory=200000000", "--disable-usage-stats", "--block",
        "--node-ip-address=127.0.0.1"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process we may read."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.append((int(entry.name), ppid, cmd))
    return out


def map_workers_on(marker: str) -> set[int]:
    """Ray Data's recognising actors (MapWorker processes) under the raylet whose command line holds
    ``marker`` (the second node's resource name)."""
    procs = _processes()
    raylets = {pid for pid, _, cmd in procs if "raylet" in cmd.split(" ")[0] and marker in cmd}
    return {pid for pid, ppid, cmd in procs if ppid in raylets and "MapWorker" in cmd}


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():
        ray.shutdown()
    env = {**os.environ, **ENV}
    temp = tempfile.mkdtemp(prefix="crnnray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = _free_port()
    address = f"127.0.0.1:{port}"
    log = open(Path(temp) / "ray-start.log", "w")  # noqa: SIM115 (open while the cluster runs)
    head = subprocess.Popen(
        [RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}", *NODE],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    procs = [head]
    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(procs) == 1:
            time.sleep(1)
            if head.poll() is not None:
                pytest.fail(f"ray start --head ended: {(Path(temp) / 'ray-start.log').read_text()[-2000:]}")
            if _port_open(port):
                second = [RAY, "start", f"--address={address}", '--resources={"crnn_second_node": 1}', *NODE]
                procs.append(subprocess.Popen(second, env=env, stdout=log, stderr=subprocess.STDOUT))
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        while time.monotonic() < deadline and len([n for n in ray.nodes() if n["Alive"]]) < 2:
            time.sleep(1)
        alive = [n for n in ray.nodes() if n["Alive"]]
        assert len(alive) == 2, f"the second node did not join: {alive}"
        assert all(n["Resources"]["CPU"] == 1 for n in alive)
        ray.shutdown()
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for p in reversed(procs):  # `ray start --block` stops the processes it started on SIGTERM
            p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def corpus(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("raycluster")
    paths, _ = make_corpus(data_dir, root)
    return paths * 3  # 126 inputs: enough batches of 4 to kill a worker with work left


def _map_worker_restarts() -> int:
    """Restarts of Ray Data's recognising actors, from the cluster's actor table (GCS)."""
    from ray._private.state import actors

    table = actors().values()
    return sum(a["NumRestarts"] for a in table if "RecognizeWorker" in a.get("ActorClassName", ""))


def test_worker_killed_mid_run_is_replaced_and_nothing_is_lost_or_doubled(cluster, corpus):
    from crnn_cli.distributed import RayRecognizer

    want = reference(corpus)
    got = []
    killed = None
    with RayRecognizer(cluster, actors=2, threads=1, rows_per_task=4) as rec:
        for r in rec.recognize(corpus):
            got.append(r)
            if killed is None:
                # One actor per node (one CPU each): kill the second node's, while batches remain.
                deadline = time.monotonic() + 60
                while not (workers := map_workers_on("crnn_second_node")) and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert workers, "no recognising worker found on the second node"
                killed = min(workers)
                os.kill(killed, signal.SIGKILL)
                left = len(corpus) - len(got)
        restarts = _map_worker_restarts()  # before the run ends and Ray Data retires its actors
    assert killed is not None and left > 0
    assert as_tuples(got) == want  # every input once, in order, with the single-machine answer
    assert [r.index for r in got] == list(range(len(corpus)))
    # Ray restarted the actor and retried its batch; or (an actor killed while it started, on a loaded
    # machine) Ray Data gave up on the run and the driver ran the unfinished inputs again.
    assert restarts >= 1 or rec.window_retries >= 1, "the killed worker was not replaced"


def test_cli_joins_the_cluster_by_address_and_by_auto(cluster, corpus, tmp_path):
    env = {**os.environ, **ENV, "CRNN_NO_FAST_EXIT": "1"}
    crnn = [str(Path(sys.executable).with_name("crnn")), "recognize", "--format", "jsonl"]
    paths = corpus[:42]
    plain = subprocess.run([*crnn, *paths], capture_output=True, text=True, env=env)
    by_address = subprocess.run([*crnn, "--ray", cluster, *paths], capture_output=True, text=True, env=env)
    assert by_address.returncode == plain.returncode == 1
    assert by_address.stdout == plain.stdout
    assert "crnn: 2 of 42 inputs failed" in by_address.stderr
    out = tmp_path / "shards"
    env_auto = {**env, "RAY_ADDRESS": cluster}  # what `auto` follows on a machine of the cluster
    auto = subprocess.run(
        [*crnn, "--ray", "auto", "--ray-actors", "2", "--output", str(out), *paths],
        capture_output=True, text=True, env=env_auto,
    )  # fmt: skip
    assert auto.returncode == 1 and auto.stdout == "", auto.stderr
    assert "".join(p.read_text("utf-8") for p in sorted(out.glob("part-*.jsonl"))) == plain.stdout
    assert json.loads((out / "manifest.json").read_text())["inputs"] == 42
