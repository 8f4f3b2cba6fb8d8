#!/usr/bin/env bash
# Reproduce the bundled default model: split the real data, train, export, evaluate on the dev split.
# Usage (from the repository root, ../shared beside it, crnn installed with the torch extra):
#   bash scripts/default_model/train.sh            # fresh run
#   bash scripts/default_model/train.sh --resume   # continue after an interruption
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=runs/default
python scripts/split_real_data.py --data ../shared/data/real --out "$RUN/split" --dev-fraction 0.1
if [ "${1:-}" = "--resume" ] && [ -f "$RUN/model/latest.pt" ]; then
  crnn train -c scripts/default_model/crnn_default.yml --resume "$RUN/model/latest.pt"
else
  crnn train -c scripts/default_model/crnn_default.yml
fi
crnn export "$RUN/model/best_accuracy.pt" --to onnx -o crnn_cli/models/default.onnx
for split in "$RUN"/split/dev_*.tsv; do
  crnn eval --model crnn_cli/models/default.onnx "$split" --protocol benchmark --filter strip --format csv
done
