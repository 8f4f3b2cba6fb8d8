"""What one `crnn serve` worker needs to know: the model, how it batches, and its limits.

The config travels to worker processes (``--workers N``) as JSON in an environment variable, so every
field is a plain JSON value. The API key itself never goes into it: each worker reads the variable the
key is named by (``api_key_env``) from its own environment.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from crnn_cli.core.errors import UsageError

CONFIG_ENV = "CRNN_SERVE_CONFIG"  # how the parent hands the config to uvicorn's worker processes


@dataclass(frozen=True)
class ModelConfig:
    """The Recognizer's arguments, as `crnn recognize` takes them (see core/recognizer.py)."""

    model: str | None = None  # path; None = the bundled English model
    backend: str | None = None  # registered backend name; resolved once in the parent, not "auto"
    dictionary: str | None = None
    use_space_char: bool | None = None
    image_shape: str | None = None  # "C,H,W"
    dynamic_width: bool | None = None
    rotate: str = "auto"  # tall crops: auto / always / never, as `crnn recognize --rotate`
    decoder: str = "greedy"
    beam_width: int = 10
    threads: int | None = None  # intra-op threads of this worker's session
    device: str | None = None
    providers: tuple[str, ...] | None = None
    performance_hint: str | None = None

    @classmethod
    def from_options(
        cls,
        *,
        fixed_width: bool | None,
        providers: str | None,
        performance_hint: str | None,
        rotate: str,
        no_rotate: bool,
        **same: Any,
    ) -> ModelConfig:
        """From the command line's model options (`crnn serve`, named as `crnn recognize` names them)."""
        return cls(
            rotate="never" if no_rotate else rotate,
            dynamic_width=None if fixed_width is None else not fixed_width,
            providers=tuple(p.strip() for p in providers.split(",") if p.strip()) if providers else None,
            performance_hint=performance_hint.upper() if performance_hint else None,
            **same,
        )

    def recognizer_kwargs(self, batch_size: int) -> dict[str, Any]:
        from crnn_cli.core.backend import SessionOptions

        options: dict[str, Any] = {"threads": self.threads}
        if self.device:
            options["device"] = self.device
        if self.providers:
            options["providers"] = tuple(self.providers)
        if self.performance_hint:
            options["performance_hint"] = self.performance_hint
        return {
            "model": self.model,
            "backend": self.backend,
            "dictionary": self.dictionary,
            "use_space_char": self.use_space_char,
            "image_shape": self.image_shape,
            "dynamic_width": self.dynamic_width,
            "rotate_vertical": self.rotate,
            "batch_size": batch_size,
            "threads": self.threads,
            "decoder": self.decoder,
            "beam_width": self.beam_width,
            "session_options": SessionOptions(**options),
        }


@dataclass(frozen=True)
class ServeConfig:
    """One worker's serving behaviour. Limits are per worker process."""

    model: ModelConfig = field(default_factory=ModelConfig)
    # Crops per model call: a batch closes when it holds this many crops (requests are never split).
    max_batch: int = 32
    # How long (ms) a request waits for others being decoded to join its batch, counted from when it
    # was queued: adds at most this much latency, and lets requests that arrive together share a call.
    max_wait_ms: float = 5.0
    # Model instances per worker: sessions each on a thread of its own, so calls run side by side.
    instances: int = 1
    # Crops admitted (waiting or in the model) before new requests get 503 + Retry-After; bounds memory
    # and latency under overload instead of queueing without end.
    max_queue: int = 1024
    # Request body limit in MiB (a larger body gets 413 before it is read whole).
    max_body_mb: float = 20.0
    # Name of the environment variable holding the API key; None = no authentication.
    api_key_env: str | None = None
    # Seconds a SIGTERM waits for in-flight requests before closing what is left.
    drain_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch <= 4096:
            raise UsageError(f"max_batch must be in 1..4096, got {self.max_batch}")
        if not 1 <= self.instances <= 64:
            raise UsageError(f"instances must be in 1..64, got {self.instances}")
        if not 0 <= self.max_wait_ms <= 10_000:
            raise UsageError(f"max_wait_ms must be in 0..10000, got {self.max_wait_ms}")
        if self.max_queue < self.max_batch:
            raise UsageError(f"max_queue ({self.max_queue}) must be at least max_batch ({self.max_batch})")
        if not 0 < self.max_body_mb <= 4096:
            raise UsageError(f"max_body_mb must be in (0, 4096], got {self.max_body_mb}")
        if self.drain_timeout_s <= 0:
            raise UsageError(f"drain_timeout_s must be positive, got {self.drain_timeout_s}")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    def api_key(self) -> bytes | None:
        """The key from the environment, as bytes for hmac.compare_digest; None when auth is off."""
        if self.api_key_env is None:
            return None
        value = os.environ.get(self.api_key_env, "")
        if not value:
            raise UsageError(
                f"--api-key-env {self.api_key_env}: that environment variable is unset or empty; "
                f"export {self.api_key_env}=<key> before starting"
            )
        return value.encode("utf-8")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data = json.loads(text)
        model = data.pop("model")
        if model.get("providers") is not None:
            model["providers"] = tuple(model["providers"])
        return cls(model=ModelConfig(**model), **data)
