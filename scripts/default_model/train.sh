#!/usr/bin/env bash
# Reproduce the bundled default model: split the real data, train, export, evaluate on the dev split.
# Usage (from the repository root, ../shared beside it, crnn installed with the torch extra):
#   bash scripts/default_model/train.sh            # fresh run
#   bash scripts/default_model/train.sh --resume   # continue after an interruption
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=runs/default
python scripts/split_real_data.py --data ../shared/data/real --out "$RUN/split" --dev-fraction 0.1
# Stage 1: 3000 steps of batch 64 from scratch (about 50 minutes on 2 CPU cores).
if [ "${1:-}" = "--resume" ] && [ -f "$RUN/model/latest.pt" ]; then
  crnn train -c scripts/default_model/crnn_default.yml --resume "$RUN/model/latest.pt"
else
  crnn train -c scripts/default_model/crnn_default.yml
fi
# Stage 2: a second, shorter cosine cycle from stage 1's best weights, at half the learning rate.
crnn train -c scripts/default_model/crnn_default.yml \
  -o Global.pretrained_model="$RUN/model/best_accuracy.pt" -o Global.save_model_dir="$RUN/stage2/" \
  -o Global.max_steps=1800 -o Optimizer.lr.learning_rate=0.0005 -o Optimizer.lr.warmup_epoch=0 \
  -o Global.eval_batch_step=[600,600] -o Global.seed=2048
crnn export "$RUN/stage2/best_accuracy.pt" --to onnx -o crnn_cli/models/default.onnx
for protocol in benchmark paddle; do
  crnn eval --model crnn_cli/models/default.onnx --data-dir ../shared/data/real --protocol "$protocol" \
    iiit5k="$RUN/split/dev_iiit5k_train.tsv" ic15="$RUN/split/dev_ic15_train.tsv" \
    svt="$RUN/split/dev_svt_train.tsv" sroie="$RUN/split/dev_sroie_lines_train.tsv"
done
