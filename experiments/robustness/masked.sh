#!/usr/bin/env bash
# Three policies that hide pong-dqn's gradient, and what the verdict says of them, one command:
#   bash experiments/robustness/masked.sh
# The transfer attack is crafted on their unmasked twin, pong-dqn (--surrogate). 2 games at 1/255.
set -euo pipefail
here=experiments/robustness
python "$here/masked.py" runs/masked
for kind in shattered stochastic vanishing; do
  rlattack --threads 1 robustness --agent "torch:runs/masked/pong-dqn-$kind.pt" --game pong --eps 1/255 \
    --episodes 2 --envs 2 --certify none --surrogate pong-dqn \
    --out "$here/results/masked/$kind" --json "$here/results/masked/$kind.json" --no-progress
done
