#!/usr/bin/env python
"""Write N synthetic text crops to a DTRB/PaddleOCR LMDB (num-samples, image-%09d, label-%09d).

    python scripts/make_synth_lmdb.py OUT_DIR --count 100000 --dict en --use-space-char --workers 2

Sample i is ``SynthRenderer(config, charset, seed).sample(i)``: the same command writes the same LMDB,
whatever the number of workers. The LMDB appears at OUT_DIR only once complete.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from crnn_cli.core.charset import load_charset
from crnn_cli.core.datasets import write_lmdb
from crnn_cli.core.errors import CrnnError
from crnn_cli.core.images import cv2
from crnn_cli.synth import SynthConfig, SynthRenderer

_renderer: SynthRenderer | None = None  # one per worker process
_encode: tuple[str, list[int]] = (".jpg", [])


def _init(
    config: SynthConfig, dict_spec: str | None, use_space: bool, seed: int, ext: str, params: list[int]
) -> None:
    global _renderer, _encode
    cv2.setNumThreads(1)  # the workers are the parallelism; OpenCV's own threads would oversubscribe
    _renderer = SynthRenderer(config, load_charset(dict_spec, use_space_char=use_space), seed)
    _encode = (ext, params)


def _make(index: int) -> tuple[bytes, str]:
    assert _renderer is not None
    img, text = _renderer.sample(index)
    ok, buf = cv2.imencode(_encode[0], img, _encode[1])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode sample {index} as {_encode[0]}")
    return buf.tobytes(), text


def _samples(
    args: argparse.Namespace, config: SynthConfig, progress: Progress
) -> Iterator[tuple[bytes, str]]:
    ext = ".png" if args.format == "png" else ".jpg"
    params = [cv2.IMWRITE_PNG_COMPRESSION, 3] if ext == ".png" else [cv2.IMWRITE_JPEG_QUALITY, args.quality]
    init_args = (config, args.dict, args.use_space_char, args.seed, ext, params)
    task = progress.add_task("rendering", total=args.count)
    indices = range(args.start, args.start + args.count)
    if args.workers <= 1:
        _init(*init_args)
        for i in indices:
            yield _make(i)
            progress.advance(task)
        return
    with mp.get_context("spawn").Pool(args.workers, _init, init_args) as pool:
        for sample in pool.imap(_make, indices, chunksize=64):  # imap keeps index order
            yield sample
            progress.advance(task)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir", type=Path, help="LMDB folder to create")
    parser.add_argument("--count", type=int, required=True, help="number of samples")
    parser.add_argument("--start", type=int, default=0, help="first sample index (to extend a set)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dict", default="en", help="dictionary: built-in name (ic15, en) or file")
    parser.add_argument("--use-space-char", action="store_true", help="allow spaces (multi-word lines)")
    parser.add_argument(
        "--text-file", action="append", default=[], help="word list or label file (repeatable)"
    )
    parser.add_argument("--font-dir", action="append", default=[], help="extra font folder (repeatable)")
    parser.add_argument(
        "--no-system-fonts", action="store_true", help="only matplotlib's and --font-dir fonts"
    )
    parser.add_argument("--background-dir", help="folder of images to crop backgrounds from")
    parser.add_argument("--height", type=int, nargs=2, metavar=("MIN", "MAX"), help="output height range")
    parser.add_argument("--max-text-length", type=int, default=25)
    parser.add_argument("--format", choices=("jpg", "png"), default="jpg")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality")
    parser.add_argument("--workers", type=int, default=1, help="rendering processes")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT_DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    if args.count < 1 or args.start < 0 or args.workers < 1:
        parser.error("--count and --workers must be >= 1 and --start >= 0")
    if args.out_dir.exists() and not args.overwrite:
        parser.error(f"{args.out_dir} already exists: pass --overwrite to replace it")
    try:
        config = SynthConfig(
            text_files=tuple(args.text_file),
            font_dirs=tuple(args.font_dir),
            system_fonts=not args.no_system_fonts,
            background_dir=args.background_dir,
            max_text_length=args.max_text_length,
        )
        if args.height:
            config = replace(config, height_range=tuple(args.height))
        SynthRenderer(
            config, load_charset(args.dict, use_space_char=args.use_space_char), args.seed
        )  # fail early
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        start = time.perf_counter()
        with Progress(*columns, console=console, disable=args.quiet or not console.is_terminal) as progress:
            n = write_lmdb(args.out_dir, _samples(args, config, progress), overwrite=args.overwrite)
    except CrnnError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("interrupted; nothing written")
        return 130
    seconds = time.perf_counter() - start
    if not args.quiet:
        console.print(f"wrote {n} samples to {args.out_dir} in {seconds:.1f} s ({n / seconds:.0f}/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
