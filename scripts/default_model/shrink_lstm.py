"""A CRNN checkpoint with a narrower BiLSTM, cut from a wider one: the start of a distilled student.

    python scripts/default_model/shrink_lstm.py runs/default/stage10-avg/from_onnx.pt --hidden 128 \
        -o runs/default/lstm128-start.pt

Each direction of each LSTM layer keeps the ``--hidden`` units whose outputs weigh most downstream
(the L2 norm of the columns that read them: the next layer's input weights, both directions, or the
CTC head's), and drops the rest: their rows in the four gate blocks, their columns in the recurrent
weights and in whatever reads them. The backbone and the head's biases are copied unchanged. The cut
model reads worse than the wide one (what the dropped units carried is gone); it is a start for
training with the wide model as an online teacher (``Distillation.online``), not a model to ship.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))

from crnn_torch.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint  # noqa: E402

PREFIX = "neck.encoder.lstm."
GATES = 4  # torch's LSTM stacks the i, f, g, o blocks of rows


def keep_units(state: dict[str, torch.Tensor], hidden: int, new: int) -> dict[tuple[int, str], torch.Tensor]:
    """For each (layer, direction suffix): the sorted indices of the ``new`` units to keep."""
    layers = sum(1 for k in state if k.startswith(PREFIX + "weight_hh_l") and not k.endswith("_reverse"))
    chosen: dict[tuple[int, str], torch.Tensor] = {}
    for layer in range(layers):
        # What reads this layer's output: the next layer's input weights, or the head.
        if layer + 1 < layers:
            readers = [state[f"{PREFIX}weight_ih_l{layer + 1}{s}"] for s in ("", "_reverse")]
        else:
            readers = [state["head.fc.weight"]]
        for d, suffix in enumerate(("", "_reverse")):
            cols = slice(d * hidden, (d + 1) * hidden)
            weight = sum(r[:, cols].pow(2).sum(0) for r in readers)
            chosen[(layer, suffix)] = torch.sort(torch.topk(weight, new).indices).values
    return chosen


def shrink(state: dict[str, torch.Tensor], hidden: int, new: int) -> dict[str, torch.Tensor]:
    chosen = keep_units(state, hidden, new)
    out = {k: v.clone() for k, v in state.items() if not k.startswith(PREFIX) and k != "head.fc.weight"}
    for (layer, suffix), idx in chosen.items():
        rows = torch.cat([idx + g * hidden for g in range(GATES)])
        w_ih = state[f"{PREFIX}weight_ih_l{layer}{suffix}"][rows]
        if layer > 0:  # its input is the previous layer's output, both directions, also cut
            prev = torch.cat([chosen[(layer - 1, "")], chosen[(layer - 1, "_reverse")] + hidden])
            w_ih = w_ih[:, prev]
        out[f"{PREFIX}weight_ih_l{layer}{suffix}"] = w_ih.clone()
        w_hh = state[f"{PREFIX}weight_hh_l{layer}{suffix}"]
        out[f"{PREFIX}weight_hh_l{layer}{suffix}"] = w_hh[rows][:, idx].clone()
        for b in ("bias_ih", "bias_hh"):
            out[f"{PREFIX}{b}_l{layer}{suffix}"] = state[f"{PREFIX}{b}_l{layer}{suffix}"][rows].clone()
    last = max(layer for layer, _ in chosen)
    cols = torch.cat([chosen[(last, "")], chosen[(last, "_reverse")] + hidden])
    out["head.fc.weight"] = state["head.fc.weight"][:, cols].clone()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path, help="a crnn checkpoint (.pt) with a BiLSTM neck")
    ap.add_argument("--hidden", type=int, required=True, help="units per direction to keep")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)
    hidden = int(ckpt["model"][PREFIX + "weight_hh_l0"].shape[1])
    if not 0 < args.hidden < hidden:
        ap.error(f"--hidden must be between 1 and the checkpoint's {hidden - 1}")
    state = ckpt["model"]  # a training checkpoint keeps its EMA weights here
    kept = ("format", "format_version", "crnn_version", "torch_version", "arch", "num_classes", "metadata")
    payload = {key: ckpt[key] for key in kept}
    payload["arch_kwargs"] = {**dict(ckpt.get("arch_kwargs") or {}), "hidden_size": args.hidden}
    payload["model"] = shrink(state, hidden, args.hidden)
    payload["source"] = f"{args.checkpoint} cut to {args.hidden} LSTM units by shrink_lstm.py"
    model_from_checkpoint(payload)  # the cut weights fit the narrower architecture
    save_checkpoint(payload, args.output)
    print(f"{args.output}: BiLSTM {hidden} -> {args.hidden} units per direction")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
