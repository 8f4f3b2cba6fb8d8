"""The numpy-only .pdparams loader: real PaddleOCR checkpoints load, code-running pickles never run."""

from __future__ import annotations

import builtins
import os
import pickle
import pickletools
import shlex
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from crnn_cli.core.errors import ModelError, UnsafeFileError
from crnn_cli.core.pdparams import ALLOWED_GLOBALS, load_pdparams

SMALL = {
    "backbone.conv1.conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
    "head.fc.bias": np.array([0.5, -1.0, 2.0], dtype=np.float32),
}


def _read_tsv(path: Path) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in path.read_text().splitlines():
        name, shape, _dtype = line.split("\t")
        shapes[name] = tuple(int(v) for v in shape.strip("[]").split(","))
    return shapes


def _globals(data: bytes) -> set[str]:
    """module.name of every global a pickle imports, read statically (the memo followed for BINGET)."""
    found: set[str] = set()
    pushed: list[object] = []  # what each op left on top of the stack, as far as strings matter here
    memo: dict[int, object] = {}
    for op, arg, _pos in pickletools.genops(data):
        if op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(int(arg)))
        elif op.name == "STACK_GLOBAL":
            found.add(f"{pushed[-2]}.{pushed[-1]}")
            pushed.append(None)
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
            pushed.append(None)
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed.append(arg)
        elif op.name not in ("PUT", "BINPUT", "LONG_BINPUT", "FRAME", "PROTO"):
            pushed.append(None)
    return found


def _with_numpy_module(data: bytes, old: str, new: str) -> bytes:
    """Rename a numpy module inside a single-frame protocol-4 pickle, fixing the string and frame lengths."""
    frames = [pos for op, _arg, pos in pickletools.genops(data) if op.name == "FRAME"]
    assert frames == [2], "helper expects one frame right after PROTO"
    payload = data[11:]
    old_op = b"\x8c" + bytes([len(old)]) + old.encode()
    new_op = b"\x8c" + bytes([len(new)]) + new.encode()
    assert payload.count(old_op) == 1
    payload = payload.replace(old_op, new_op)
    return data[:2] + b"\x95" + struct.pack("<Q", len(payload)) + payload


# -- the real checkpoint -------------------------------------------------------------------------------


@pytest.mark.shared
def test_fixture_loads_with_names_shapes_and_dtype_of_params_tsv(mv3_dir: Path) -> None:
    state = load_pdparams(mv3_dir / "best_accuracy.pdparams")
    expected = _read_tsv(mv3_dir / "params.tsv")
    assert "StructuredToParameterName@@" not in state
    assert {k: v.shape for k, v in state.items()} == expected
    assert all(v.dtype == np.float32 for v in state.values())


@pytest.mark.shared
def test_fixture_references_only_allowed_numpy_globals(mv3_dir: Path) -> None:
    used = _globals((mv3_dir / "best_accuracy.pdparams").read_bytes())
    assert used and used <= ALLOWED_GLOBALS
    assert all(g.startswith("numpy") for g in used)


@pytest.mark.shared
def test_prefix_and_directory_resolve_to_best_accuracy(mv3_dir: Path) -> None:
    by_file = load_pdparams(mv3_dir / "best_accuracy.pdparams")
    for spec in (mv3_dir, mv3_dir / "best_accuracy", str(mv3_dir / "best_accuracy")):
        other = load_pdparams(spec)
        assert other.keys() == by_file.keys()
        assert all(np.array_equal(other[k], by_file[k]) for k in by_file)


# -- numpy 1 and numpy 2 pickles -----------------------------------------------------------------------


@pytest.mark.parametrize("module", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_numpy1_and_numpy2_pickles_both_load(tmp_path: Path, module: str) -> None:
    data = pickle.dumps(SMALL, protocol=4)
    written_by = next(g for g in _globals(data) if g.endswith("._reconstruct")).rpartition(".")[0]
    data = _with_numpy_module(data, written_by, module)
    assert f"{module}._reconstruct" in _globals(data)
    path = tmp_path / "model.pdparams"
    path.write_bytes(data)
    state = load_pdparams(path)
    assert state.keys() == SMALL.keys()
    for k, v in SMALL.items():
        assert state[k].dtype == v.dtype and np.array_equal(state[k], v)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_other_pickle_protocols_load(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "model.pdparams"
    path.write_bytes(pickle.dumps({**SMALL, "StructuredToParameterName@@": {"a": "b"}}, protocol=protocol))
    state = load_pdparams(path)
    assert state.keys() == SMALL.keys()
    assert np.array_equal(state["head.fc.bias"], SMALL["head.fc.bias"])


# -- pickles that would run code -----------------------------------------------------------------------


class _Payload:
    def __init__(self, func: object, args: tuple) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, _Payload]:
    code = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        f"{os.system.__module__}.system": _Payload(os.system, (f"touch {shlex.quote(str(marker))}",)),
        "builtins.exec": _Payload(builtins.exec, (code,)),
        "subprocess.call": _Payload(subprocess.call, (["touch", str(marker)],)),
    }


@pytest.mark.parametrize("kind", ["system", "exec", "subprocess"])
def test_code_running_pickle_is_refused_and_never_runs(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "marker"
    name, payload = [item for item in _payloads(marker).items() if kind in item[0]][0]
    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps({**SMALL, "head.fc.weight": payload}, protocol=4))
    with pytest.raises(UnsafeFileError) as err:
        load_pdparams(path)
    assert name in str(err.value)
    assert str(path) in str(err.value)
    assert not marker.exists()


def test_control_plain_pickle_would_run_the_payload(tmp_path: Path) -> None:
    # Shows the refusal above is what protects us: the same bytes under pickle.loads do run.
    marker = tmp_path / "marker"
    data = pickle.dumps({"w": _payloads(marker)["builtins.exec"]}, protocol=4)
    pickle.loads(data)
    assert marker.read_text() == "pwned"


def test_any_non_numpy_global_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.pdparams"
    path.write_bytes(pickle.dumps({"w": Path("/etc/passwd")}, protocol=4))
    with pytest.raises(UnsafeFileError, match=r"pathlib\.(Posix)?Path"):
        load_pdparams(path)


# -- files that are not checkpoints --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not a pickle"),
        (b"hello, this is text\n", "not a pickle"),
        (pickle.dumps(SMALL, protocol=4)[:200], "truncated or corrupt"),
        (pickle.dumps([1, 2, 3], protocol=4), "holds a list"),
        (pickle.dumps({"w": 3.0}, protocol=4), "'w' is a float"),
        (pickle.dumps({"w": np.array(["a", 1], dtype=object)}, protocol=4), "dtype object"),
        (pickle.dumps({}, protocol=4), "no parameters"),
    ],
)
def test_malformed_files_raise_model_error(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.pdparams"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=match):
        load_pdparams(path)


def test_missing_path_and_ambiguous_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such checkpoint"):
        load_pdparams(tmp_path / "nothing")
    with pytest.raises(ModelError, match="no best_accuracy.pdparams"):
        load_pdparams(tmp_path)
    (tmp_path / "latest.pdparams").write_bytes(pickle.dumps(SMALL, protocol=4))
    assert load_pdparams(tmp_path).keys() == SMALL.keys()  # a single checkpoint is unambiguous
    (tmp_path / "iter_100.pdparams").write_bytes(pickle.dumps(SMALL, protocol=4))
    with pytest.raises(ModelError, match="several checkpoints.*iter_100.pdparams, latest.pdparams"):
        load_pdparams(tmp_path)
