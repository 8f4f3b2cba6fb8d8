"""Ray on one node against plain `crnn recognize`, on the same crops in the same run (issue 23).

    python scripts/bench_ray.py                          # sizes 500,2000; actors 1 and all cores
    python scripts/bench_ray.py --sizes 20,40 --repeats 1 --json out.json   # smoke run

For each size N (paths cycling over --images), interleaved within each repeat:
  plain      Recognizer.recognize over N paths in this process, --threads = the cores.
  ray A      RayRecognizer over the same paths on a Ray instance started once for the bench (A actors
             of one thread each): every call is one Ray Data run, actor start-up included.
  cli plain  `crnn recognize -q -` (paths on stdin): the command as a user runs it.
  cli ray    `crnn recognize --ray local --ray-actors A -q -`: Ray's own start-up included.
Reported: median seconds and crops/s per row; and, from a straight-line fit t = fixed + N * per_crop
over the sizes, each variant's fixed cost and per-crop cost: Ray's per-crop overhead is its per-crop
cost minus plain's (same cores), its fixed overhead the difference of the fixed costs.

No timing means anything on a busy machine: run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def image_paths(folder: Path, n: int) -> list[str]:
    found = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    if not found:
        sys.exit(f"bench_ray: no .png/.jpg images under {folder}")
    return [found[i % len(found)] for i in range(n)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_cli(args: list[str], paths: list[str]) -> None:
    crnn = str(Path(sys.executable).with_name("crnn"))
    proc = subprocess.run(
        [crnn, "recognize", "-q", *args, "-"], input="\n".join(paths).encode(), capture_output=True
    )
    if proc.returncode != 0:
        sys.exit(f"bench_ray: crnn recognize {' '.join(args)} failed: {proc.stderr.decode()[-1500:]}")


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares t = a + b * n: (fixed seconds, seconds per crop)."""
    if len({n for n, _ in points}) < 2:
        n, t = points[0]
        return 0.0, t / n
    mn = statistics.fmean(n for n, _ in points)
    mt = statistics.fmean(t for _, t in points)
    b = sum((n - mn) * (t - mt) for n, t in points) / sum((n - mn) ** 2 for n, _ in points)
    return mt - b * mn, b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=ROOT / "crnn_cli" / "samples")
    ap.add_argument("--model", default=None, help="default: the bundled model")
    ap.add_argument("--sizes", default="500,2000", help="crops per run, comma-separated (two or more)")
    ap.add_argument("--actors", default=None, help="comma-separated pool sizes (default: 1 and the cores)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-cli", action="store_true", help="skip the two command-line rows")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import ray

    from crnn_cli.core.recognizer import Recognizer
    from crnn_cli.distributed import RayRecognizer

    cores = os.cpu_count() or 1
    sizes = [int(s) for s in args.sizes.split(",")]
    pools = [int(a) for a in args.actors.split(",")] if args.actors else sorted({1, cores})
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    model = ["--model", args.model] if args.model else []
    variants: dict[str, object] = {"plain": None, **{f"ray {a}": a for a in pools}}
    if not args.no_cli:
        variants.update({"cli plain": "cli", **{f"cli ray {a}": ("cli", a) for a in pools}})
    times: dict[tuple[str, int], list[float]] = {}
    with Recognizer(args.model, threads=cores) as plain:
        for rep in range(args.repeats):
            for n in sizes:
                paths = image_paths(args.images, n)
                order = list(variants) if rep % 2 == 0 else list(reversed(variants))
                for name in order:
                    how = variants[name]
                    if how is None:
                        t = timed(lambda p=paths: sum(1 for _ in plain.recognize(p)))
                    elif isinstance(how, int):

                        def go(p=paths, a=how) -> None:
                            with RayRecognizer("local", args.model, actors=a, threads=1) as rec:
                                assert sum(1 for _ in rec.recognize(p)) == len(p)

                        t = timed(go)
                    elif how == "cli":
                        t = timed(lambda p=paths: run_cli([*model, "--threads", str(cores)], p))
                    else:
                        a = how[1]
                        t = timed(
                            lambda p=paths, a=a: run_cli(
                                [*model, "--ray", "local", "--ray-actors", str(a)], p
                            )
                        )
                    times.setdefault((name, n), []).append(t)
    ray.shutdown()

    rows = []
    print(f"crnn bench_ray: one node, {cores} cores, sizes {sizes}, {args.repeats} repeats (median)")
    print(f"{'variant':<14}{'crops':>8}{'seconds':>10}{'crops/s':>10}")
    for (name, n), ts in times.items():
        t = statistics.median(ts)
        rows.append({"variant": name, "crops": n, "seconds": t, "crops_per_second": n / t})
        print(f"{name:<14}{n:>8}{t:>10.3f}{n / t:>10.1f}")
    fits = {}
    for name in variants:
        a, b = fit([(n, statistics.median(times[(name, n)])) for n in sizes])
        fits[name] = {"fixed_seconds": a, "seconds_per_crop": b}
    print(f"\n{'variant':<14}{'fixed s':>10}{'ms/crop':>10}{'overhead ms/crop':>18}")
    for name, f in fits.items():
        base = fits["cli plain" if name.startswith("cli") else "plain"]["seconds_per_crop"]
        extra = (f["seconds_per_crop"] - base) * 1000
        f["overhead_ms_per_crop"] = extra
        print(f"{name:<14}{f['fixed_seconds']:>10.2f}{f['seconds_per_crop'] * 1000:>10.3f}{extra:>18.3f}")
    if args.json:
        args.json.write_text(
            json.dumps({"cores": cores, "sizes": sizes, "rows": rows, "fits": fits}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
