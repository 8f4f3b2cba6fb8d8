"""Failure galleries for `crnn eval --report DIR`: an HTML page and a PNG of the worst errors.

People look at errors rather than read about them: each row shows the crop, the truth, the
prediction and the confidence. Only numpy and OpenCV are used, so the report needs no extra install.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from crnn_cli.core.errors import ImageError
from crnn_cli.core.fileio import write_bytes_atomic
from crnn_cli.core.images import cv2, decode_image
from crnn_cli.evaluation import DatasetReport, Failure

ROW_H = 40
CROP_W = 260
TEXT_W = 520


def _ascii(text: str) -> str:
    # OpenCV's vector fonts draw ASCII only; other symbols show as '?' in the PNG (the HTML has them).
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def _crop_tile(f: Failure) -> np.ndarray:
    tile = np.full((ROW_H, CROP_W, 3), 255, np.uint8)
    try:
        img = decode_image(f.image, f.key)
    except ImageError:
        cv2.putText(tile, "unreadable", (4, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 200), 1, cv2.LINE_AA)
        return tile
    h, w = img.shape[:2]
    scale = min((ROW_H - 4) / h, (CROP_W - 4) / w)
    img = cv2.resize(img, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    tile[2 : 2 + img.shape[0], 2 : 2 + img.shape[1]] = img
    return tile


def gallery_png(failures: list[Failure]) -> bytes:
    """One row per failure: crop | truth | prediction (confidence)."""
    rows = [np.full((ROW_H, CROP_W + TEXT_W, 3), 235, np.uint8)]
    cv2.putText(rows[0], "image", (6, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        rows[0],
        "truth  ->  prediction (confidence)",
        (CROP_W + 6, 26),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.55,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    for f in failures:
        text = np.full((ROW_H, TEXT_W, 3), 255, np.uint8)
        cv2.putText(
            text, _ascii(f.label)[:28], (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 120, 0), 1, cv2.LINE_AA
        )
        cv2.putText(
            text,
            f"{_ascii(f.prediction)[:40]}  ({f.confidence:.2f})",
            (6, 35),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 0, 200),
            1,
            cv2.LINE_AA,
        )
        row = np.concatenate([_crop_tile(f), text], axis=1)
        row[-1, :] = 200  # separator line
        rows.append(row)
    ok, buf = cv2.imencode(".png", np.concatenate(rows, axis=0))
    assert ok
    return buf.tobytes()


def _img_tag(f: Failure) -> str:
    try:
        img = decode_image(f.image, f.key)
        ok, buf = cv2.imencode(".png", img)
        data = base64.b64encode(buf.tobytes()).decode() if ok else ""
    except ImageError:
        return "<em>unreadable</em>"
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(f.key)}">'


def write_report(folder: Path, reports: list[DatasetReport], result: dict[str, Any]) -> Path:
    """Write index.html and one <dataset>_errors.png per dataset into ``folder``; returns the page."""
    folder.mkdir(parents=True, exist_ok=True)
    s = result["summary"]
    parts = [
        "<!doctype html><meta charset='utf-8'><title>crnn eval report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}img{max-height:48px}.bad{color:#b00}.ok{color:#070}</style>",
        f"<h1>crnn eval: {html.escape(Path(result['model']).name)}</h1>",
        f"<p>backend {html.escape(result['backend'])}, protocol {html.escape(result['protocol'])}; "
        f"mean accuracy <b>{s['mean']['accuracy']:.2%}</b>, weighted {s['weighted_mean']['accuracy']:.2%} "
        f"over {s['count']} samples.</p>",
        "<table><tr><th>dataset</th><th>count</th><th>filtered</th><th>missing</th><th>unreadable</th>"
        "<th>accuracy</th><th>1-NED</th>"
        "<th>mean conf</th><th>img/s</th></tr>",
    ]
    for d in result["datasets"]:
        parts.append(
            f"<tr><td>{html.escape(d['name'])}</td><td>{d['count']}</td><td>{d['filtered']}</td>"
            f"<td>{d['missing']}</td><td>{d['unreadable']}</td><td>{d['accuracy']:.2%}</td><td>{d['norm_edit_distance']:.4f}</td>"
            f"<td>{d['mean_confidence']:.3f}</td><td>{d['images_per_second']:.1f}</td></tr>"
        )
    parts.append("</table>")
    for r, d in zip(reports, result["datasets"]):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in r.name) or "dataset"
        if r.failures:
            write_bytes_atomic(folder / f"{safe}_errors.png", gallery_png(r.failures))
            parts.append(f"<h2>{html.escape(r.name)}: worst errors</h2>")
        else:  # no heading over an empty table
            parts.append(
                f"<h2>{html.escape(r.name)}</h2><p>No misread sample among the {d['scored']} read.</p>"
            )
        for what, reasons in (
            ("Filtered by the protocol", d["filtered_reasons"]),
            ("Not read", d["problem_reasons"]),
        ):
            if reasons:
                text = ", ".join(f"{n} {html.escape(why)}" for why, n in reasons.items())
                parts.append(f"<p>{what}: {text}.</p>")
        if d["bad_examples"]:
            items = "".join(f"<li>{html.escape(e)}</li>" for e in d["bad_examples"])
            parts.append(f"<p>Samples not read (counted as wrong):</p><ul>{items}</ul>")
        if d["top_confusions"]:
            pairs = ", ".join(
                f"{html.escape(c['label'] or '∅')}→{html.escape(c['prediction'] or '∅')} ({c['count']})"
                for c in d["top_confusions"][:12]
            )
            parts.append(f"<p>Most confused characters (truth→prediction): {pairs}</p>")
        acc_by_len = ", ".join(
            f"{k}: {v['correct'] / v['total']:.0%} of {v['total']}" for k, v in d["by_length"].items()
        )
        parts.append(f"<p>Accuracy by label length: {acc_by_len}</p>")
        if not r.failures:
            continue
        parts.append(
            "<table><tr><th>image</th><th>truth</th><th>prediction</th><th>confidence</th><th>sample</th></tr>"
        )
        for f in r.failures:
            parts.append(
                f"<tr><td>{_img_tag(f)}</td><td class='ok'>{html.escape(f.label)}</td>"
                f"<td class='bad'>{html.escape(f.prediction)}</td><td>{f.confidence:.3f}</td>"
                f"<td>{html.escape(f.key)}</td></tr>"
            )
        parts.append("</table>")
    page = folder / "index.html"
    write_bytes_atomic(page, "\n".join(parts).encode("utf-8"))
    return page
