#!/usr/bin/env bash
# From nothing to a trained model in a few minutes on a laptop CPU: synthesise sky time-lapses, train a
# tiny MD-GAN on them, evaluate it against held-out synthetic clips, and predict from the sample photo.
# The tiny model only shows the workflow; the bundled default model is trained the same way, for longer.
#
#   bash examples/walkthrough.sh [WORK_DIR]
set -euo pipefail
work=${1:-walkthrough}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"

# 1. Data: 64 training clips and 8 held-out clips (different seeds), rendered at the 16:9 aspect of the
#    real data (the trainer squashes frames to 128x128 like the paper).
skyforecast synth "$work/train" --clips 64 --size 228x128 --seed 1
skyforecast synth "$work/test" --clips 8 --size 228x128 --seed 2

# 2. Train: Stage I then Stage II, 30 steps each, at a tiny width. Stop it any time and continue with --resume.
skyforecast train "$work/train" --out "$work/run" --ngf 4 --ndf 4 --batch-size 4 --steps 30 --lr 1e-3 \
  --preview-every 10 --checkpoint-every 10

# 3. Evaluate against the held-out clips: PSNR, SSIM and motion ratio, with the copy and Stage I baselines.
skyforecast evaluate "$work/test" --weights "$work/run/model" --json "$work/eval.json"

# 4. Predict with the trained model.
skyforecast predict "$here/sky.jpg" --weights "$work/run/model" -o "$work/sky.mp4" --overwrite
echo "done: $work/sky.mp4, previews in $work/run/previews, metrics in $work/run/metrics.jsonl"
