"""Training configuration: PaddleOCR's own CRNN config YAML, read into frozen dataclasses.

A config has PaddleOCR's sections (``Global``, ``Architecture``, ``Loss``, ``Optimizer``, ``Train``,
``Eval``, plus ``PostProcess`` / ``Metric`` which are accepted and checked for CTC) and a few keys of
ours (``Global.seed``, ``Global.max_steps``, ``Global.amp``, ``Global.ema``, ``Global.grad_clip``,
the ``SynthDataSet`` and ``MixDataSet`` dataset kinds, ``RecResizeImg.dynamic_width``, ...).
Every key is checked: an unknown key or a value of the wrong type is a ConfigError that names the key
path and the file (or the ``-o`` override it came from). The schema itself lives in config_schema.py.

Overrides use PaddleOCR's ``-o Key.sub=value`` form: the value is read as YAML (``3``, ``false``,
``[3, 32, 320]``), only the first ``=`` splits, and a numeric segment indexes a list
(``Train.dataset.transforms.2.RecResizeImg.image_shape=[3,32,320]``).
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from crnn_cli.core.errors import ConfigError, UsageError
from crnn_torch.config_schema import (
    TRANSFORMS,
    ArchitectureConfig,
    DatasetConfig,
    FieldError,
    RecAugOp,
    RecResizeImgOp,
    TrainConfig,
)

SHIPPED_SUFFIX = ".yml"


def shipped_configs() -> list[str]:
    """Names of the configs shipped in the package (``crnn train -c NAME`` finds them)."""
    folder = resources.files("crnn_cli").joinpath("configs")
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(SHIPPED_SUFFIX)] for p in folder.iterdir() if p.name.endswith(SHIPPED_SUFFIX))


def resolve_config_path(spec: str | Path) -> Path:
    """A config file path, or the name of a shipped config (``crnn_default``, ``rec_mv3_none_bilstm_ctc``)."""
    path = Path(spec)
    if path.is_file():
        return path
    name = path.name[: -len(SHIPPED_SUFFIX)] if path.name.endswith(SHIPPED_SUFFIX) else path.name
    if str(spec) in (name, name + SHIPPED_SUFFIX) and name in shipped_configs():
        with resources.as_file(resources.files("crnn_cli").joinpath("configs", name + SHIPPED_SUFFIX)) as p:
            return Path(p)
    shipped = ", ".join(shipped_configs()) or "none"
    raise ConfigError(f"config '{spec}' is neither a file nor a shipped config (shipped: {shipped})")


# -- overrides ---------------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"Global.epoch_num=3"`` -> (["Global", "epoch_num"], 3). The value is YAML; only the first '=' splits."""
    import yaml

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override '{text}' must look like Key.sub=value (e.g. Global.epoch_num=10)")
    parts = key.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"override '{text}': empty segment in key '{key}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # not valid YAML (e.g. "a: b: c"): the user meant the text itself
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """A deep copy of ``raw`` with each override set. Also returns key path -> override text, so that an
    error about an overridden key names the override rather than the file."""
    out = copy.deepcopy(raw)
    origins: dict[str, str] = {}
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                node = node[_list_index(node, part, where, text)]
            elif isinstance(node, dict):
                if node.get(part) is None:
                    node[part] = {}  # creates a section the file left out, e.g. Global.ema
                    origins.setdefault(where, f"override -o {text}")  # a misspelt one is this override's
                node = node[part]
            else:
                raise ConfigError(f"override '{text}': '{where}' is a {type(node).__name__}, not a section")
            if not isinstance(node, (dict, list)):
                raise ConfigError(
                    f"override '{text}': '{where}' holds {node!r}, not a section to set keys in"
                )
        last = parts[-1]
        if isinstance(node, list):
            node[_list_index(node, last, ".".join(parts), text)] = value
        else:
            node[last] = value
        origins[".".join(parts)] = f"override -o {text}"
    return out, origins


def _list_index(node: list, part: str, where: str, text: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
        raise ConfigError(f"override '{text}': '{where}' needs a list index in 0..{len(node) - 1}")
    return int(part)


# -- loading -----------------------------------------------------------------------------------------


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a PaddleOCR-style YAML config, apply ``-o`` overrides and check every key and type."""
    import yaml

    file = resolve_config_path(path)
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read config: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: a config must be a mapping of sections, got {type(raw).__name__}")
    return config_from_dict(raw, overrides, source=str(file))


def config_from_dict(
    raw: Mapping[str, Any], overrides: Sequence[str] = (), source: str = "<config>"
) -> TrainConfig:
    """Build the typed config from an already-parsed mapping (tests, resumed checkpoints)."""
    data, origins = apply_overrides(dict(raw), overrides)
    sources = _Sources(source, origins)
    config = build(TrainConfig, data, "", sources)
    _check_dictionary(config.Global.character_dict_path, sources)
    # Transform lists are free-form in the schema; check each operation's options now, with their paths.
    if config.Train is not None:
        _check_transforms(config.Train.dataset, "Train.dataset", sources)
    if config.Eval is not None:
        _check_transforms(config.Eval.dataset, "Eval.dataset", sources)
    return config


def _check_dictionary(spec: str | None, sources: _Sources) -> None:
    """A dictionary that is neither built in nor a file fails here, naming the key and where it was set."""
    from crnn_cli.core.charset import BUILTIN_DICTIONARIES

    if spec is None or spec in BUILTIN_DICTIONARIES or Path(spec).is_file():
        return
    where = "" if Path(spec).is_absolute() else f"; relative paths start at the current folder {Path.cwd()}"
    raise _fail(
        "Global.character_dict_path",
        f"'{spec}' is neither a built-in dictionary ({', '.join(BUILTIN_DICTIONARIES)}) nor a file{where}",
        sources,
    )


def _check_transforms(ds: DatasetConfig, path: str, sources: _Sources) -> None:
    for i, item in enumerate(ds.transforms):
        (name, options), *_ = item.items()
        where = f"{path}.transforms[{i}]"
        if name not in TRANSFORMS:
            known = ", ".join(TRANSFORMS)
            raise _fail(f"{where}.{name}", f"unknown transform (crnn knows {known})", sources)
        build(TRANSFORMS[name], options, f"{where}.{name}", sources)
    if ds.name == "SynthDataSet":
        synth_config(ds, path, sources)
    for i, child in enumerate(ds.datasets):
        _check_transforms(child, f"{path}.datasets[{i}]", sources)


def synth_config(ds: DatasetConfig, path: str = "Train.dataset", sources: _Sources | None = None) -> Any:
    """The ``crnn_cli.synth.SynthConfig`` of a SynthDataSet, its options checked with their key paths."""
    from crnn_cli.synth import SynthConfig

    sources = sources or _Sources("<config>", {})
    try:
        return build(SynthConfig, ds.synth, f"{path}.synth", sources)
    except ConfigError:
        raise
    except UsageError as exc:  # SynthConfig's own range checks
        raise _fail(f"{path}.synth", str(exc), sources) from None


def transforms(ds: DatasetConfig) -> list[Any]:
    """The dataset's transform operations as typed objects (already checked at load time)."""
    quiet = _Sources("<config>", {})
    return [
        build(TRANSFORMS[name], options, name, quiet)
        for item in ds.transforms
        for name, options in item.items()
    ]


def resize_op(ds: DatasetConfig) -> RecResizeImgOp | None:
    """The dataset's RecResizeImg (a MixDataSet may leave it to its children; they must agree)."""
    found = [op for op in transforms(ds) if isinstance(op, RecResizeImgOp)]
    if found:
        return found[0]
    children = [op for op in (resize_op(c) for c in ds.datasets) if op is not None]
    if children and any(c != children[0] for c in children):
        raise ConfigError(
            "the datasets of a MixDataSet resize differently: give RecResizeImg once, on the mix"
        )
    return children[0] if children else None


def augment_op(ds: DatasetConfig) -> RecAugOp | None:
    """The dataset's RecAug, or None when it has none or ``augment: false`` turns it off."""
    if not ds.augment:
        return None
    found = [op for op in transforms(ds) if isinstance(op, RecAugOp)]
    return found[0] if found else None


class _Sources:
    """Names where a key path came from: the file, or the override that set it (or a parent of it)."""

    def __init__(self, file: str, origins: Mapping[str, str]) -> None:
        self.file = file
        self.origins = dict(origins)

    def of(self, path: str) -> str:
        for key, origin in self.origins.items():
            if path == key or path.startswith(key + ".") or path.startswith(key + "["):
                return origin
        return self.file


def _fail(path: str, message: str, sources: _Sources) -> ConfigError:
    where = path or "<top level>"
    return ConfigError(f"{where}: {message} (in {sources.of(path)})")


def build(cls: type, data: Any, path: str, sources: _Sources) -> Any:
    """Instantiate dataclass ``cls`` from ``data``, checking keys and types, errors naming the key path."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise _fail(path, f"expected a section (mapping), got {type(data).__name__} {data!r}", sources)
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    aliases: Mapping[str, str] = getattr(cls, "ALIASES", {})
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        name = aliases.get(key, key) if isinstance(key, str) else key
        if name not in known:
            close = difflib.get_close_matches(str(key), list(known) + list(aliases), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise _fail(sub, f"unknown key{hint}", sources)
        kwargs[name] = coerce(hints[name], value, sub, sources)
    try:
        return cls(**kwargs)
    except FieldError as exc:
        sub = f"{path}.{exc.key}" if path and exc.key else (exc.key or path)
        raise _fail(sub, exc.message, sources) from None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple and args and Ellipsis not in args:
            return f"a list [{', '.join(_type_name(a) for a in args)}]"
        args = tuple(a for a in args if a is not Ellipsis)
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if is_dataclass(tp):
        return "a section"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def coerce(tp: Any, value: Any, path: str, sources: _Sources) -> Any:
    """``value`` as type ``tp`` (lists become tuples so the dataclasses stay hashable), or ConfigError."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        members = [a for a in args if a is not type(None)]
        errors: list[tuple[Any, ConfigError]] = []
        for arg in members:
            try:
                return coerce(arg, value, path, sources)
            except ConfigError as exc:
                errors.append((arg, exc))
        # A value shaped like one member (a mapping for a section, a list for a list) failed inside it:
        # that member's error names the real culprit, deeper down.
        for arg, exc in errors:
            if len(members) == 1 or _same_shape(arg, value):
                raise exc
        raise _wrong(tp, value, path, sources)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _wrong(tp, value, path, sources)
        args = typing.get_args(tp)
        if origin is tuple and args and Ellipsis not in args:  # fixed length, e.g. tuple[int, int]
            if len(value) != len(args):
                raise _fail(path, f"expected {len(args)} values, got {len(value)}: {list(value)!r}", sources)
            return tuple(coerce(a, v, f"{path}[{i}]", sources) for i, (a, v) in enumerate(zip(args, value)))
        (item,) = [a for a in args if a is not Ellipsis] or [Any]
        return tuple(coerce(item, v, f"{path}[{i}]", sources) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _wrong(tp, value, path, sources)
        return dict(value)
    if is_dataclass(tp):
        return build(tp, value, path, sources)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # PyYAML reads "1e-3" (no dot) as a string; users mean the number.
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is type(None):
        if value is None:
            return None
    else:  # pragma: no cover - a schema type this function does not know is a bug in the schema
        raise TypeError(f"config schema uses unsupported type {tp!r} at {path}")
    raise _wrong(tp, value, path, sources)


def _same_shape(tp: Any, value: Any) -> bool:
    origin = typing.get_origin(tp)
    if isinstance(value, Mapping):
        return is_dataclass(tp) or origin is dict
    if isinstance(value, (list, tuple)):
        return origin in (list, tuple)
    return False


def _wrong(tp: Any, value: Any, path: str, sources: _Sources) -> ConfigError:
    shown = repr(value) if len(repr(value)) < 80 else repr(value)[:77] + "..."
    return _fail(path, f"expected {_type_name(tp)}, got {type(value).__name__} {shown}", sources)


def to_plain(obj: Any) -> Any:
    """A dataclass config as plain dicts/lists/str/numbers (what a checkpoint and the YAML dump hold)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj) if f.init}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj


# -- architecture ------------------------------------------------------------------------------------

# PaddleOCR Backbone names -> crnn architectures (models.build_model names).
BACKBONE_ARCHS = {
    "MobileNetV3": "rec_mv3_none_bilstm_ctc",
    "ResNet": "rec_r34_vd_none_bilstm_ctc",
    "CompactCNN": "crnn_default",  # ours
}


def resolve_arch(arch: ArchitectureConfig) -> tuple[str, dict[str, Any]]:
    """(build_model arch name, keyword options) for an Architecture section.

    ``arch`` (ours) wins and takes its options from ``arch_kwargs`` only; otherwise the PaddleOCR
    Backbone/Neck pair maps: MobileNetV3 large -> rec_mv3_none_bilstm_ctc (scale, hidden_size),
    ResNet 34 -> rec_r34_vd_none_bilstm_ctc, CompactCNN -> crnn_default.
    """
    if arch.arch is not None:
        return arch.arch, dict(arch.arch_kwargs)
    backbone = arch.Backbone
    if backbone.name not in BACKBONE_ARCHS:
        known = ", ".join(BACKBONE_ARCHS)
        raise ConfigError(
            f"Architecture.Backbone.name: {backbone.name!r} is not a CRNN backbone crnn builds ({known})"
        )
    if backbone.name == "MobileNetV3" and backbone.model_name != "large":
        raise ConfigError(
            f"Architecture.Backbone.model_name: only 'large' is supported, got {backbone.model_name!r}"
        )
    if backbone.name == "ResNet" and backbone.layers != 34:
        raise ConfigError(
            f"Architecture.Backbone.layers: only 34 (ResNet34_vd) is supported, got {backbone.layers}"
        )
    kwargs: dict[str, Any] = {"hidden_size": arch.Neck.hidden_size, **arch.arch_kwargs}
    if backbone.name == "MobileNetV3":
        kwargs.setdefault("scale", backbone.scale)
    return BACKBONE_ARCHS[backbone.name], kwargs
