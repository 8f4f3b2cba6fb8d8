"""The model metadata schema that makes a model file self-describing.

Stored as string key/values: ONNX ``metadata_props`` and OpenVINO ``rt_info`` (under the same keys).

Keys:
  ``crnn.metadata``  JSON object, described by ``ModelMetadata`` (schema_version 1):
      schema_version  int, 1
      producer        str, e.g. "crnn 0.1.0"
      architecture    str, e.g. "rec_mv3_none_bilstm_ctc", "rec_r34_vd_none_bilstm_ctc", "crnn_default", "unknown"
      characters      list[str], class i+1 is characters[i]; the blank (class 0) is not listed; when
                      use_space_char is true the last entry is " "
      use_space_char  bool
      lowercase       bool, labels are lowercased before comparison (case-less dictionaries)
      input           {"channels": 1|3, "height": int, "width": int, "dynamic_width": bool,
                       "max_width": int, "min_width": int, "width_step": int}; width is the fixed
                      width, or the nominal (and by default the minimum) one when dynamic. Optional:
                      min_width, the narrowest padded input when dynamic (absent: width), and
                      width_step, what wider inputs are padded to a multiple of (absent: 32); a
                      model that reads as well with less padding says so here (see preprocess.py);
                      min_aspect (float), crops narrower than this times the height are stretched
                      to it (absent: never)
      normalize       {"mean": [float], "std": [float], "color": "BGR"}: x' = (x/255 - mean) / std
      output          "probabilities" (softmax applied) or "logits"
      dictionary      str, the dictionary's name or file it came from (informational)
  ``character``      the dictionary, newline-separated, WITHOUT the space class: what RapidOCR reads.

Files from elsewhere (RapidOCR, paddle2onnx) carry only ``character`` or nothing; ``from_props`` reads
what there is and leaves the rest to the input shape and the user's options.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from crnn_cli.core.charset import Charset, charset_from_symbols
from crnn_cli.core.errors import MetadataError, UsageError
from crnn_cli.core.preprocess import PreprocessConfig

SCHEMA_VERSION = 1
METADATA_KEY = "crnn.metadata"
RAPIDOCR_KEY = "character"


def default_width(height: int) -> int:
    """PaddleOCR's usual (minimum) width for a height: 3x48x320 for PP-OCR, 3x32x100 for CRNN."""
    return 320 if height == 48 else max(16, round(height * 100 / 32))


def _per_channel(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    """Normalisation values for ``channels``: equal per-channel values collapse to one, so the default
    (0.5, 0.5, 0.5) also fits a grey model."""
    values = tuple(values)
    if len(values) not in (1, channels) and len(set(values)) == 1:
        return values[:1]
    return values


@dataclass(frozen=True)
class ModelMetadata:
    """Everything needed to run a model without flags. See the module docstring for the schema."""

    characters: tuple[str, ...] | None = None
    use_space_char: bool = False
    lowercase: bool = False
    channels: int = 3
    height: int | None = None
    width: int | None = None
    dynamic_width: bool = True
    max_width: int = 2048
    min_width: int | None = None  # dynamic width: narrowest padded input (px); None = width
    width_step: int | None = None  # dynamic width: padded widths are multiples of this (px); None = 32
    min_aspect: float | None = None  # narrower crops are stretched to this width / height; None = never
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    output: str = "probabilities"
    architecture: str = "unknown"
    producer: str = ""
    dictionary: str = ""
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    # -- conversions ---------------------------------------------------------------------------------
    def charset(self) -> Charset | None:
        if self.characters is None:
            return None
        return charset_from_symbols(
            self.characters, name=self.dictionary or "embedded", lowercase=self.lowercase
        )

    def preprocess(self, **overrides: Any) -> PreprocessConfig:
        if self.height is None:
            raise MetadataError("the model's input height is unknown: give it with --image-shape C,H,W")
        cfg = dict(
            channels=self.channels,
            height=self.height,
            width=self.width or default_width(self.height),
            dynamic_width=self.dynamic_width,
            max_width=max(self.max_width, self.width or 0),
            min_width=self.min_width,
            min_aspect=self.min_aspect,
            mean=_per_channel(self.mean, self.channels),
            std=_per_channel(self.std, self.channels),
        )
        if self.width_step is not None:
            cfg["width_step"] = self.width_step
        cfg.update({k: v for k, v in overrides.items() if v is not None})
        return PreprocessConfig(**cfg)

    def with_charset(self, charset: Charset) -> ModelMetadata:
        return replace(
            self,
            characters=charset.symbols,
            use_space_char=charset.use_space_char,
            lowercase=charset.lowercase,
            dictionary=charset.name,
        )

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {
            "schema_version": SCHEMA_VERSION,
            "producer": self.producer,
            "architecture": self.architecture,
            "characters": list(self.characters) if self.characters is not None else None,
            "use_space_char": self.use_space_char,
            "lowercase": self.lowercase,
            "dictionary": self.dictionary,
            "input": {
                "channels": self.channels,
                "height": self.height,
                "width": self.width,
                "dynamic_width": self.dynamic_width,
                "max_width": self.max_width,
                **({"min_width": self.min_width} if self.min_width is not None else {}),
                **({"width_step": self.width_step} if self.width_step is not None else {}),
                **({"min_aspect": self.min_aspect} if self.min_aspect is not None else {}),
            },
            "normalize": {"mean": list(d["mean"]), "std": list(d["std"]), "color": "BGR"},
            "output": self.output,
            **({"extra": self.extra} if self.extra else {}),
        }

    def to_props(self) -> dict[str, str]:
        """String key/values for ONNX metadata_props / OpenVINO rt_info."""
        props = {METADATA_KEY: json.dumps(self.to_json(), ensure_ascii=False)}
        if self.characters is not None:
            chars = list(self.characters)
            if self.use_space_char and chars and chars[-1] == " ":
                chars = chars[:-1]
            props[RAPIDOCR_KEY] = "\n".join(chars)
        return props

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelMetadata:
        if not isinstance(data, Mapping):
            raise MetadataError("crnn metadata must be a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise MetadataError(
                f"crnn metadata schema_version {version!r} is not supported by this crnn "
                f"(it reads version {SCHEMA_VERSION}); upgrade crnn or re-export the model"
            )
        try:
            inp = data.get("input", {}) or {}
            norm = data.get("normalize", {}) or {}
            chars = data.get("characters")
            if chars is not None and (
                not isinstance(chars, list) or not all(isinstance(c, str) for c in chars)
            ):
                raise MetadataError("metadata 'characters' must be a list of strings")
            output = data.get("output", "probabilities")
            if output not in ("probabilities", "logits"):
                raise MetadataError(f"metadata 'output' must be probabilities or logits, got {output!r}")
            return cls(
                characters=tuple(chars) if chars is not None else None,
                use_space_char=bool(data.get("use_space_char", False)),
                lowercase=bool(data.get("lowercase", False)),
                channels=int(inp.get("channels", 3)),
                height=None if inp.get("height") is None else int(inp["height"]),
                width=None if inp.get("width") is None else int(inp["width"]),
                dynamic_width=bool(inp.get("dynamic_width", True)),
                max_width=int(inp.get("max_width", 2048)),
                min_width=None if inp.get("min_width") is None else int(inp["min_width"]),
                width_step=None if inp.get("width_step") is None else int(inp["width_step"]),
                min_aspect=None if inp.get("min_aspect") is None else float(inp["min_aspect"]),
                mean=tuple(float(v) for v in norm.get("mean", (0.5, 0.5, 0.5))),
                std=tuple(float(v) for v in norm.get("std", (0.5, 0.5, 0.5))),
                output=output,
                architecture=str(data.get("architecture", "unknown")),
                producer=str(data.get("producer", "")),
                dictionary=str(data.get("dictionary", "")),
                extra=dict(data.get("extra", {}) or {}),
            )._checked()
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:  # int(inf), float(10**400)
            raise MetadataError(f"crnn metadata is malformed: {exc}") from None

    def _checked(self) -> ModelMetadata:
        """Self, or MetadataError when the input it describes could never be built. Checked on load so
        that the error names the model's metadata instead of surfacing later as a bad option."""
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)):
            raise MetadataError("crnn metadata 'normalize' holds a value that is not a finite number")
        try:
            replace(self, height=self.height or 32).preprocess()  # height may be left to --image-shape
        except UsageError as exc:
            raise MetadataError(f"crnn metadata describes an input crnn cannot build: {exc}") from None
        return self

    @classmethod
    def from_props(cls, props: Mapping[str, str]) -> ModelMetadata | None:
        """Read our schema, or fall back to a RapidOCR-style ``character`` list; None if neither."""
        if METADATA_KEY in props:
            try:
                data = json.loads(props[METADATA_KEY])
            except (json.JSONDecodeError, TypeError) as exc:
                raise MetadataError(f"crnn metadata is not valid JSON: {exc}") from None
            except RecursionError:  # a hostile file can nest arrays deeper than the parser recurses
                raise MetadataError("crnn metadata is not valid JSON: nested too deeply") from None
            return cls.from_json(data)
        if RAPIDOCR_KEY in props:
            chars = props[RAPIDOCR_KEY].splitlines()
            # RapidOCR lists the dictionary without the space class; use_space_char is settled later
            # against the model's class count (see resolve_charset in recognizer.py).
            return cls(characters=tuple(chars), architecture="unknown", dictionary="embedded (character)")
        return None


def set_onnx_metadata(model_proto: Any, props: Mapping[str, str]) -> None:
    """Set key/values in an ONNX ModelProto's metadata_props, replacing existing keys (no onnx import)."""
    existing = {p.key: p for p in model_proto.metadata_props}
    for key, value in props.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = model_proto.metadata_props.add()
            entry.key, entry.value = key, value
