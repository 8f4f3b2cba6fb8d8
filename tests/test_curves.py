"""Training curves: what the picture shows (legends clear of the data) and that it is written."""

from __future__ import annotations

from pathlib import Path

from crnn_torch.curves import draw_curves, plot_metrics_file

# An early run: the loss falls, accuracy is still near zero at the last evaluation (bottom right,
# where a "lower right" legend used to sit).
RECORDS = [{"event": "start", "step": 0}]
RECORDS += [
    {"event": "train", "step": s, "loss": 40.0 / (1 + s / 50), "lr": 1e-3 * (1 - s / 1200)}
    for s in range(10, 1001, 10)
]
RECORDS += [
    {"event": "eval", "step": s, "acc": a, "norm_edit_dis": n}
    for s, a, n in [(250, 0.0, 0.1), (500, 0.01, 0.15), (750, 0.02, 0.12), (1000, 0.03, 0.05)]
]


def test_legends_leave_the_newest_points_visible() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = draw_curves(RECORDS, "run")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 2  # loss + lr above the top plot, accuracy + 1-NED above the bottom one
    boxes = [leg.get_window_extent(renderer) for leg in legends]
    checked = 0
    for ax in fig.axes:
        for line in ax.get_lines():
            xs, ys = line.get_xdata(), line.get_ydata()
            if len(xs) == 0:
                continue
            for x, y in list(zip(xs, ys))[-3:]:  # the newest points
                px, py = ax.transData.transform((x, y))
                assert not any(b.contains(px, py) for b in boxes), (line.get_label(), x, y)
                checked += 1
    assert checked == 12  # four lines: loss, lr, accuracy, 1-NED


def test_curves_from_a_log_without_evaluations(tmp_path: Path) -> None:
    import json

    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in RECORDS if r["event"] != "eval"))
    out = plot_metrics_file(log)
    assert out == tmp_path / "curves.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
