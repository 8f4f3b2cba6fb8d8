"""How long PyTorch's idle OpenMP threads spin before they sleep, set before torch is imported.

GNU OpenMP (the runtime of PyTorch's Linux wheels) lets a thread that finishes its share of a parallel
op spin for ``GOMP_SPINCOUNT`` iterations (300 000 by default, a few hundred microseconds) waiting for
the next op. Between parallel ops the training process often runs on one thread (Python, autograd's
bookkeeping, ops too small to split), and all that time the other core stays busy spinning. Our data
workers run under SCHED_IDLE (crnn_torch.data.worker_priority), so a spinning thread keeps them off
that core: their work piles up until the training loop waits for a batch. Spinning ten times shorter
hands those gaps to the workers while a thread that is about to be needed is still awake.

scripts/bench_train.py on 2 cores, default-model recipe (half the crops rendered on the fly), share of
the bare loop's speed, four runs of each alternated: 0.88-0.93 with the default spin, 0.89-1.08 with
30 000 (median 0.99); the bare loop itself ran at the same speed either way (README, Performance).

The runtime reads the variable once, when torch loads it, so this must run before ``import torch``.
A user's own ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` wins.
"""

from __future__ import annotations

import os
import sys

SPINCOUNT = "30000"


def limit_spinning() -> bool:
    """Set ``GOMP_SPINCOUNT`` for a training process; True if it was set here and can still take effect."""
    if "torch" in sys.modules:  # too late: the OpenMP runtime has read its settings
        return False
    if "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
    return True
