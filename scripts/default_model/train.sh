#!/usr/bin/env bash
# Reproduce the bundled default model: fonts, data split, case-restored labels, training, export, dev eval.
# Usage (from the repository root, ../shared beside it, crnn installed with the torch and synth extras,
# e.g. pip install -c constraints.txt '.[torch,synth,openvino,paddle]'):
#   bash scripts/default_model/train.sh            # fresh run
#   bash scripts/default_model/train.sh --resume   # continue after an interruption
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN=runs/default
SHARED=../shared
# Fonts: the synth extra's pip font packages, plus these Debian font packages where apt is at hand
# (the shipped model saw 312 faces of 73 families; without the Debian ones, about 150 of 25).
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  xargs apt-get install -y -q < scripts/default_model/debian-fonts.txt >/dev/null || echo "Debian fonts: not installed" >&2
fi
python scripts/split_real_data.py --data "$SHARED/data/real" --out "$RUN/split" --dev-fraction 0.1
# SROIE and SVT label in capitals only: the PP-OCRv4 teacher gives the letters of each word their case
# back where it reads the same word (train side only; the dev labels stay as they are).
if [ ! -f "$RUN/teacher/ppocrv4_rec.xml" ]; then
  mkdir -p "$RUN/teacher"
  crnn convert "$SHARED/fixtures/ppocrv4_rec" --to openvino -o "$RUN/teacher/ppocrv4_rec.xml" \
    --dict "$SHARED/fixtures/ppocrv4_rec/ppocr_keys_v1.txt" --use-space-char
fi
for source in sroie_lines_train sroie_lines_more svt_train; do
  python scripts/default_model/restore_case.py --teacher "$RUN/teacher/ppocrv4_rec.xml" \
    --data-dir "$SHARED/data/real" "$RUN/split/train_$source.tsv" --out "$RUN/split/train_$source.cased.tsv"
done
# This stage (7) starts from the stage-6 bundled model of commit d1c652c (stages 1-2: 3000 + 1800 steps
# from scratch, stages 3-6: 2000, 6000, 3000 and 2000 steps of fine-tuning). Its training checkpoint
# was never committed; its ONNX file keeps every weight, and onnx_to_checkpoint.py turns it back into a
# starting point.
PREVIOUS=d1c652c
if [ ! -f "$RUN/stage6/stage6_default.pt" ]; then
  mkdir -p "$RUN/stage6"
  git show "$PREVIOUS:crnn_cli/models/default.onnx" > "$RUN/stage6/stage6_default.onnx"
  python scripts/default_model/onnx_to_checkpoint.py "$RUN/stage6/stage6_default.onnx" \
    --calibrate "$RUN/split/train_iiit5k_train.tsv" --data-dir "$SHARED/data/real" \
    -o "$RUN/stage6/stage6_default.pt"
fi
# Stage 7: 24000 steps of batch 64, three sittings on 2 AVX512-BF16 cores with bf16 autocast (about
# 0.5 s a step alone); rerun with --resume after an interruption. A run that spans sittings: the last
# sitting committed its resumable checkpoint beside this script (stage 7's is the finished run).
# stage CONFIG RUN_FOLDER COMMITTED: train fresh, or with --resume continue from the run folder's
# latest.pt (taken from the committed checkpoint when the folder has none). A finished run ends at once.
stage() {
  if [ "${RESUME:-}" = "--resume" ] && [ ! -f "$2/latest.pt" ] && [ -f "$3" ]; then
    mkdir -p "$2" && cp "$3" "$2/latest.pt"
  fi
  if [ "${RESUME:-}" = "--resume" ] && [ -f "$2/latest.pt" ]; then
    crnn train -c "$1" --resume "$2/latest.pt"
  else
    crnn train -c "$1"
  fi
}
RESUME="${1:-}"
stage scripts/default_model/crnn_default.yml "$RUN/model" scripts/default_model/stage7-latest.pt
# Stage 8 (crnn_default_stage8.yml: distillation from PP-OCRv4 on every frame) read worse, and 8b
# (crnn_default_stage8b.yml: only where both emit the same symbol) no better (README, Bundled model);
# to run one: stage scripts/default_model/crnn_default_stage8b.yml "$RUN/stage8b" none
# Stage 9 (crnn_default_stage9.yml): stage 7's end fine-tuned 6000 steps with narrow crops stretched to
# twice their height (RecResizeImg.min_aspect: 2, recorded in the model's metadata) and 8b's teacher.
# Shipped: the same run without the teacher (crnn_default_stage9_control.yml), which read the dev split
# better (README, Bundled model). To run stage 9 itself: stage scripts/default_model/crnn_default_stage9.yml "$RUN/stage9" none
stage scripts/default_model/crnn_default_stage9_control.yml "$RUN/stage9-control" none
# Stage 10 (crnn_default_stage10.yml): that end fine-tuned 6000 steps with real crops bent along a circle
# (RecAug arc_prob) or seen from one end (vanish_prob). It read bent real crops far better and flat ones
# a little worse; the weights halfway between it and its start kept most of both, and ship (README).
stage scripts/default_model/crnn_default_stage10.yml "$RUN/stage10" none
python scripts/default_model/average_checkpoints.py "$RUN/stage9-control/latest.pt" "$RUN/stage10/latest.pt" \
  --weight 0.5 -o "$RUN/stage10-avg/latest.pt"
crnn export "$RUN/stage10-avg/latest.pt" --to onnx --max-width 800 -o crnn_cli/models/default.onnx
# It reads as well padded from 32 px in steps of 8 as from 100 in steps of 32 (README, Preprocessing);
# min_aspect 2 comes with the checkpoint and is kept.
python scripts/default_model/set_padding.py crnn_cli/models/default.onnx --min-width 32 --width-step 8
for protocol in benchmark caseless paddle; do
  crnn eval --model crnn_cli/models/default.onnx --data-dir "$SHARED/data/real" --protocol "$protocol" \
    iiit5k="$RUN/split/dev_iiit5k_train.tsv" ic15="$RUN/split/dev_ic15_train.tsv" \
    svt="$RUN/split/dev_svt_train.tsv" sroie="$RUN/split/dev_sroie_lines_train.tsv" \
    sroie_more="$RUN/split/dev_sroie_lines_more.tsv"
done
# Beside the PP-OCRv4 teacher, set by set, with the rendered arc and far-end sets (the README's table).
python scripts/default_model/dev_report.py --split "$RUN/split" --data-dir "$SHARED/data/real" \
  --teacher "$RUN/teacher/ppocrv4_rec.xml" crnn_cli/models/default.onnx
