"""`--backend auto`: the fastest installed backend for a model, measured once and remembered."""

from __future__ import annotations

from pathlib import Path

import pytest
from models_util import make_tiny_onnx

from crnn_cli.core import autoselect
from crnn_cli.core.backend import SessionOptions
from crnn_cli.core.recognizer import Recognizer

pytest.importorskip("openvino")


@pytest.fixture()
def auto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("CRNN_NO_AUTOSELECT", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return make_tiny_onnx(tmp_path / "tiny.onnx")


def test_both_runtimes_are_timed_once_and_the_choice_is_remembered(auto: Path, monkeypatch) -> None:
    with Recognizer(auto) as rec:
        sel = rec.selection
        assert sel is not None and sel.measured
        # OpenVINO once per hint: with no --hint given, the hint is part of the choice
        assert set(sel.rates) == {"onnxruntime", "openvino LATENCY", "openvino THROUGHPUT"}
        assert all(r > 0 for r in sel.rates.values())
        assert sel.label == autoselect.decide(sel.rates, "onnxruntime") and sel.label.startswith(
            rec.backend.name
        )
        first = sel.label
    # The next run reads the choice: measuring again would fail here.
    monkeypatch.setattr(autoselect, "measure", lambda *a, **k: pytest.fail("measured twice"))
    with Recognizer(auto) as rec:
        assert rec.selection is not None and rec.selection.label == first and not rec.selection.measured
    # Another batch size is another workload: measured anew.
    calls = []
    monkeypatch.setattr(autoselect, "measure", lambda b, *a: calls.append(b.name) or 1.0)
    with Recognizer(auto, batch_size=8):
        pass
    assert sorted(calls) == ["onnxruntime", "openvino", "openvino"]
    # A changed model file (another size or time) is measured anew as well.
    auto.write_bytes(auto.read_bytes())
    calls.clear()
    backend, sel = autoselect.select_backend(auto, SessionOptions(), 8)
    assert len(calls) == 3
    # A given hint is OpenVINO's: only OpenVINO can honour it, so there is nothing to measure.
    calls.clear()
    backend, sel = autoselect.select_backend(auto, SessionOptions(performance_hint="THROUGHPUT"), 8)
    assert calls == [] and backend.name == "openvino" and sel.hint is None


def test_decision_prefers_the_priority_backend_unless_clearly_faster() -> None:
    ov = "openvino THROUGHPUT"
    assert autoselect.decide({"onnxruntime": 100.0, ov: 104.0}, "onnxruntime") == "onnxruntime"
    assert autoselect.decide({"onnxruntime": 290.0, ov: 305.0}, "onnxruntime") == "onnxruntime"  # noise
    assert autoselect.decide({"onnxruntime": 100.0, ov: 130.0}, "onnxruntime") == ov
    assert autoselect.decide({"onnxruntime": 0.0, ov: 10.0}, "onnxruntime") == ov


def test_the_winning_hint_opens_the_session(auto: Path, monkeypatch) -> None:
    rates = {"onnxruntime": 100.0, "LATENCY": 90.0, "THROUGHPUT": 150.0}
    monkeypatch.setattr(
        autoselect,
        "measure",
        lambda b, m, o, n: rates["onnxruntime" if b.name == "onnxruntime" else o.performance_hint],
    )
    with Recognizer(auto) as rec:
        assert rec.backend.name == "openvino" and rec.selection.hint == "THROUGHPUT"
        assert rec.session._settings["PERFORMANCE_HINT"] == "THROUGHPUT"


def test_explicit_backend_and_switch_off_measure_nothing(auto: Path, monkeypatch) -> None:
    monkeypatch.setattr(autoselect, "measure", lambda *a, **k: pytest.fail("measured"))
    with Recognizer(auto, "openvino") as rec:
        assert rec.backend.name == "openvino" and rec.selection is None
    monkeypatch.setenv("CRNN_NO_AUTOSELECT", "1")
    with Recognizer(auto) as rec:
        assert rec.backend.name == "onnxruntime" and not rec.selection.measured


def test_a_remembered_choice_imports_only_its_own_runtime(auto: Path, monkeypatch) -> None:
    """Cold start: reading the choice must not import OpenVINO (0.2 s) to learn its version."""
    from crnn_openvino import OpenVinoBackend

    monkeypatch.setattr(autoselect, "measure", lambda b, *a: 100.0 if b.name == "onnxruntime" else 10.0)
    first = autoselect.select_backend(auto, SessionOptions(), 8)[1]
    assert first.measured and first.backend == "onnxruntime"
    monkeypatch.setattr(OpenVinoBackend, "availability", lambda self: pytest.fail("OpenVINO was imported"))
    backend, again = autoselect.select_backend(auto, SessionOptions(), 8)
    assert backend.name == "onnxruntime" and not again.measured


def test_candidates_are_timed_in_child_processes_so_the_losers_take_no_memory_here(auto: Path) -> None:
    """A first run used to import and compile every candidate in the process that goes on to read the
    images (OpenVINO's compiled models stayed: 404 MB against 199 MB later). Timing happens in children."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from crnn_cli.core import autoselect;"
        "from crnn_cli.core.backend import SessionOptions;"
        f"b, sel = autoselect.select_backend(Path({str(auto)!r}), SessionOptions(threads=1), 4);"
        "assert sel.measured and all(r > 0 for r in sel.rates.values()), sel;"
        "print(sorted(sel.rates), 'openvino' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("]")[-1].split() == ["False", "False"], done.stdout


def test_a_candidate_whose_child_fails_measures_zero(auto: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    from crnn_cli.core.registry import load_backend

    assert autoselect.measure(load_backend("onnxruntime"), broken, SessionOptions(threads=1), 4) == 0.0
    assert autoselect.measure(load_backend("onnxruntime"), auto, SessionOptions(threads=1), 4) > 0


# -- options a backend cannot honour (issue 24.3) ----------------------------------------------------


def _openvino_wins(monkeypatch) -> None:
    monkeypatch.setattr(autoselect, "measure", lambda b, *a: 10.0 if b.name == "onnxruntime" else 1000.0)


def test_providers_imply_onnxruntime_even_where_openvino_is_faster(auto: Path, monkeypatch) -> None:
    _openvino_wins(monkeypatch)
    with Recognizer(auto) as rec:
        assert rec.backend.name == "openvino"  # the timing alone picks OpenVINO here
    with Recognizer(auto, session_options=SessionOptions(providers=("CPUExecutionProvider",))) as rec:
        assert rec.backend.name == "onnxruntime"


def test_a_misspelt_provider_is_an_error_not_a_silent_cpu_run(auto: Path, monkeypatch) -> None:
    from crnn_cli.core.errors import BackendError

    _openvino_wins(monkeypatch)
    with pytest.raises(BackendError, match="CUDAExecutionProvier not available here"):
        Recognizer(auto, session_options=SessionOptions(providers=("CUDAExecutionProvier",)))


def test_explicit_backend_that_cannot_honour_an_option_is_refused(auto: Path) -> None:
    from crnn_cli.core.errors import UsageError

    with pytest.raises(UsageError, match=r"'openvino' cannot honour --providers; use --backend onnxruntime"):
        Recognizer(auto, "openvino", session_options=SessionOptions(providers=("CPUExecutionProvider",)))
    with pytest.raises(UsageError, match=r"'onnxruntime' cannot honour --hint; use --backend openvino"):
        Recognizer(auto, "onnxruntime", session_options=SessionOptions(performance_hint="THROUGHPUT"))
    both = SessionOptions(providers=("CPUExecutionProvider",), performance_hint="LATENCY")
    with pytest.raises(UsageError, match="takes --providers and --hint together"):
        Recognizer(auto, session_options=both)


def test_cli_refuses_providers_for_openvino_with_exit_2(auto: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from crnn_cli.cli import main

    _openvino_wins(monkeypatch)
    image = Path(__file__).resolve().parents[1] / "crnn_cli" / "samples" / "code.png"
    with CliRunner().isolation() as (_, err, _), pytest.raises(SystemExit) as done:
        main(["recognize", "--model", str(auto), "--backend", "openvino", "--providers", "X", str(image)])
    assert done.value.code == 2 and b"cannot honour --providers" in err.getvalue()
