"""Bulk recognition and evaluation on a Ray cluster (``pip install 'crnn[ray]'``).

    import ray
    from crnn_cli.distributed import recognize_dataset
    ds = ray.data.read_binary_files("s3://bucket/crops/", include_paths=True)
    out = recognize_dataset(ds, actors=8)          # adds text, confidence, error columns
    out.write_parquet("s3://bucket/texts/")

Each Ray actor holds one model session (core Recognizer), so a crop's text and confidence are those of
the single-machine run. The model's files travel once through Ray's object store. Nothing here imports
Ray until it is used: ``import crnn_cli`` and ``crnn --help`` stay cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RayRecognizer", "recognize_dataset"]


def __getattr__(name: str) -> Any:
    if name == "recognize_dataset":
        from crnn_cli.distributed.dataset import recognize_dataset

        return recognize_dataset
    if name == "RayRecognizer":
        from crnn_cli.distributed.recognizer import RayRecognizer

        return RayRecognizer
    raise AttributeError(name)
