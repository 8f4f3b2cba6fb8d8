"""CTC decoding of N x T x C probabilities: vectorised greedy decoding and a prefix beam search.

Confidence follows PaddleOCR's CTCLabelDecode: the mean, over the frames that produced a character, of
that frame's highest probability; an empty text has confidence 0. ``char_confidences`` are those
per-frame probabilities, one per output character.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from crnn_cli.core.charset import Charset

BLANK = 0


@dataclass(frozen=True)
class Decoded:
    """One decoded text line."""

    text: str
    confidence: float  # mean per-character probability (greedy) or sequence probability ** (1/len) (beam)
    char_confidences: tuple[float, ...]  # one per character of `text`


def decode_greedy(probs: np.ndarray, charset: Charset) -> list[Decoded]:
    """Best-path decoding. probs: N, T, C (softmax output). Drops repeats, then blanks."""
    if probs.ndim != 3:
        raise ValueError(f"expected probabilities of shape N x T x C, got {probs.shape}")
    idx = probs.argmax(axis=2)  # N, T
    best = np.take_along_axis(probs, idx[:, :, None], axis=2)[:, :, 0]  # N, T
    keep = idx != BLANK
    keep[:, 1:] &= idx[:, 1:] != idx[:, :-1]
    symbols = charset.symbols
    out = []
    for n in range(probs.shape[0]):
        cls = idx[n][keep[n]]
        p = best[n][keep[n]].astype(np.float64)
        text = "".join(symbols[c - 1] for c in cls)
        conf = float(p.mean()) if p.size else 0.0
        out.append(Decoded(text, conf, tuple(p.tolist())))
    return out


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def decode_beam(
    probs: np.ndarray, charset: Charset, beam_width: int = 10, prune: float = 1e-4
) -> list[Decoded]:
    """CTC prefix beam search. probs: N, T, C. Keeps doubled letters ("ll") that a blank separates.

    Frames' classes with probability below ``prune`` are not expanded (exact for beams that matter).
    The confidence is the decoded sequence's probability normalised per character (geometric mean);
    per-character confidences are the best-path probabilities of the frames aligned to each character.
    """
    if beam_width < 1:
        raise ValueError(f"beam width must be >= 1, got {beam_width}")
    logp = np.log(np.clip(probs.astype(np.float64), 1e-30, None))
    results = []
    for n in range(probs.shape[0]):
        results.append(_beam_one(logp[n], probs[n], charset, beam_width, math.log(prune)))
    return results


def _beam_one(logp: np.ndarray, probs: np.ndarray, charset: Charset, width: int, log_prune: float) -> Decoded:
    # Each beam: prefix (tuple of class ids) -> (log P ending in blank, log P ending in non-blank)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    # For per-character confidences: the probability of the frame where each symbol was first emitted.
    trace: dict[tuple[int, ...], tuple[float, ...]] = {(): ()}
    neg = -math.inf
    for t in range(logp.shape[0]):
        row = logp[t]
        candidates = np.nonzero(row >= log_prune)[0]
        if candidates.size == 0:
            candidates = np.array([int(row.argmax())])
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [neg, neg])
        nxt_trace: dict[tuple[int, ...], tuple[float, ...]] = {}
        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            for c in candidates.tolist():
                lp = float(row[c])
                if c == BLANK:
                    entry = nxt[prefix]
                    entry[0] = _logsumexp(entry[0], total + lp)
                    nxt_trace.setdefault(prefix, trace[prefix])
                    continue
                last = prefix[-1] if prefix else None
                extended = prefix + (c,)
                entry = nxt[extended]
                if c == last:
                    # A repeat only extends after a blank; without one it collapses into the prefix.
                    entry[1] = _logsumexp(entry[1], pb + lp)
                    same = nxt[prefix]
                    same[1] = _logsumexp(same[1], pnb + lp)
                    nxt_trace.setdefault(prefix, trace[prefix])
                else:
                    entry[1] = _logsumexp(entry[1], total + lp)
                if extended not in nxt_trace:  # first frame that emits this character on this path
                    nxt_trace[extended] = trace[prefix] + (float(probs[t, c]),)
        ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:width]
        beams = {k: (v[0], v[1]) for k, v in ranked}
        trace = {k: nxt_trace[k] for k in beams}
    best, (pb, pnb) = max(beams.items(), key=lambda kv: _logsumexp(*kv[1]))
    if not best:
        return Decoded("", 0.0, ())
    score = _logsumexp(pb, pnb)
    conf = math.exp(score / len(best))
    return Decoded(charset.decode(best), conf, tuple(trace[best]))
