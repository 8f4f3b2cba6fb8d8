"""OpenVINO model files for crnn: finding, reading, and writing IR that carries crnn metadata.

Metadata storage (keys and meaning: crnn_cli/core/metadata.py):

* IR written by ``write_ir``: each property is an rt_info entry in a section named ``crnn``, i.e.
  ``model.get_rt_info(["crnn", "crnn.metadata"])`` and ``["crnn", "character"]``; in the .xml that is
  ``<rt_info><crnn><crnn.metadata value="{...}"/><character value="..."/></crnn></rt_info>``.
  A section keeps our keys apart from OpenVINO's own (``OpenVINO Runtime``, ``conversion_parameters``).
  Newlines and XML specials survive: OpenVINO escapes attribute values (``&#10;``, ``&lt;``).
* ONNX: OpenVINO's ONNX frontend copies ``metadata_props`` into the rt_info section ``framework``, and
  an IR converted from such an ONNX (``ov.convert_model``, ``ovc``) keeps that section. It is read as a
  fallback, so those files describe themselves too. When both sections hold a key, ``crnn`` wins (it
  is the one ``write_ir`` sets; ``framework`` may be stale after a re-export).

Nothing here imports openvino at module level: ``import crnn_openvino`` stays cheap.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crnn_cli.core.errors import ModelError, UsageError

if TYPE_CHECKING:
    import openvino as ov

RT_SECTION = "crnn"  # where write_ir puts our properties in rt_info
ONNX_SECTION = "framework"  # where OpenVINO's ONNX frontend puts an ONNX file's metadata_props
_FRONTENDS = {".xml": "ir", ".onnx": "onnx", ".pdmodel": "paddle"}
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")  # rt_info keys become XML element names


@lru_cache(maxsize=1)
def core() -> ov.Core:
    """One Core per process: it caches loaded device plugins, and is safe to share between threads."""
    import openvino as ov

    return ov.Core()


def reason(exc: BaseException) -> str:
    """OpenVINO's message without its source-location lines ("Exception from core.cpp:84:", "Check ...")."""
    lines = [s.strip() for s in str(exc).splitlines()]
    kept = [s for s in lines if s and not s.startswith(("Exception from ", "Check '"))]
    return " ".join(kept) or type(exc).__name__


def resolve_model_path(model: Path) -> Path:
    """The file OpenVINO should read for ``model``: a folder maps to its inference.pdmodel or single .xml."""
    if not model.is_dir():
        if model.suffix.lower() == ".json":
            raise ModelError(
                f"{model}: OpenVINO cannot read Paddle 3 PIR models (inference.json); convert it to ONNX "
                "with paddle2onnx 2.0.1, or export a legacy inference.pdmodel"
            )
        return model
    if (model / "inference.pdmodel").is_file():
        return model / "inference.pdmodel"
    xmls = sorted(model.glob("*.xml"))
    if len(xmls) == 1:
        return xmls[0]
    if (model / "inference.json").is_file():
        return resolve_model_path(model / "inference.json")  # raises with the PIR advice
    found = "several .xml files" if xmls else "no inference.pdmodel and no .xml"
    raise ModelError(f"{model}: a model folder needs inference.pdmodel or one .xml file; it has {found}")


def read_model(path: Path) -> ov.Model:
    """Read ``path`` (already resolved) with OpenVINO; ModelError naming the file on any failure."""
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    framework = _FRONTENDS.get(path.suffix.lower())
    if framework is not None:
        # Ask the matching frontend first: for a file it rejects, read_model would try every frontend
        # (TensorFlow's prints parse errors to stderr) and end with a vaguer message.
        from openvino.frontend import FrontEndManager

        try:
            supported = FrontEndManager().load_by_framework(framework).supported(str(path))
        except Exception:  # a frontend missing from this build: let read_model decide
            supported = True
        if not supported:
            raise ModelError(f"{path}: not a valid {framework.upper()} model file (OpenVINO cannot parse it)")
    try:
        return core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises RuntimeError and its own GeneralFailure types
        raise ModelError(f"{path}: OpenVINO cannot read this model: {reason(exc)}") from None


def _section(rt: Any, name: str) -> dict[str, str]:
    """String entries of one rt_info section (a missing section is empty)."""
    if name not in rt:
        return {}
    sec = rt[name]
    if not isinstance(sec, Mapping):
        return {}
    return {str(k): str(v.astype(str)) if hasattr(v, "astype") else str(v) for k, v in sec.items()}


def model_props(model: ov.Model, path: Path) -> dict[str, str]:
    rt = model.get_rt_info()
    props = {**_section(rt, ONNX_SECTION), **_section(rt, RT_SECTION)}
    if not props and path.suffix.lower() == ".onnx":
        props = _onnx_props(path)  # OpenVINO builds before the frontend copied metadata_props
    return props


def _onnx_props(path: Path) -> dict[str, str]:
    try:
        import onnx
    except ImportError:
        return {}
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # OpenVINO parsed it; metadata is a nicety, not worth failing the open for
        return {}
    return {p.key: p.value for p in proto.metadata_props}


def read_props(model: str | Path) -> dict[str, str]:
    """The metadata properties of a model file or folder, without compiling it."""
    path = resolve_model_path(Path(model))
    return model_props(read_model(path), path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_ir(
    model: ov.Model | str | Path, path: str | Path, props: Mapping[str, str], compress_to_fp16: bool = False
) -> Path:
    """Save ``model`` as OpenVINO IR at ``path`` (.xml; the .bin goes beside it) carrying ``props``.

    ``model`` is an ov.Model (not modified: a clone is saved) or a file/folder to read first.
    ``props`` (e.g. ``ModelMetadata.to_props()``) go to rt_info section ``crnn``. Weights stay FP32
    unless ``compress_to_fp16`` is true (OpenVINO's own default would halve them silently).

    The pair is written under temporary names in the target folder, then renamed over the old files:
    the .bin first, the .xml last. A reader finds weights through the .xml, so a new .xml never
    appears without its .bin; a crash leaves either the old pair, or the old .xml with the new .bin
    (only when overwriting), never a partial file.
    """
    import openvino as ov

    xml = Path(path)
    if xml.suffix.lower() != ".xml":
        raise UsageError(f"an OpenVINO IR path must end in .xml (the .bin is written beside it), got {xml}")
    for key, value in props.items():
        if not isinstance(key, str) or not _XML_NAME.match(key):
            raise UsageError(
                f"rt_info key {key!r} must be a name like 'crnn.metadata' (letters, digits, _ . -)"
            )
        if not isinstance(value, str):
            raise UsageError(f"rt_info value for {key!r} must be a string, got {type(value).__name__}")
    if isinstance(model, (str, Path)):
        model = read_model(resolve_model_path(Path(model)))
    else:
        model = model.clone()
    for key, value in props.items():
        model.set_rt_info(value, [RT_SECTION, key])
    tmp_xml = xml.with_name(f".{xml.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.xml")
    tmp_bin = tmp_xml.with_suffix(".bin")  # save_model names the weights after the .xml
    try:
        ov.save_model(model, str(tmp_xml), compress_to_fp16=compress_to_fp16)
        _fsync(tmp_bin)
        _fsync(tmp_xml)
        os.replace(tmp_bin, xml.with_suffix(".bin"))
        os.replace(tmp_xml, xml)
        _fsync(xml.parent)  # make the renames themselves durable
    finally:
        for tmp in (tmp_xml, tmp_bin):
            tmp.unlink(missing_ok=True)
    return xml
