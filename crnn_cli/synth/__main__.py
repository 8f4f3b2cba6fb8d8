"""``python -m crnn_cli.synth OUT.png [COUNT]``: a sheet of samples, for a quick look at the defaults."""

import sys

from crnn_cli.core.images import cv2
from crnn_cli.synth.render import SynthRenderer, render_grid

if __name__ == "__main__":
    grid = render_grid(SynthRenderer(), int(sys.argv[2]) if len(sys.argv) > 2 else 40)
    cv2.imwrite(sys.argv[1] if len(sys.argv) > 1 else "synth_grid.png", grid)
