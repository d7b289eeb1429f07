#!/usr/bin/env bash
# One command: bash experiments/lin2017/run.sh (resumable: re-running skips finished cells).
set -euo pipefail
here=experiments/lin2017
rlattack run $here/grid.yaml --out $here/results --no-progress
rlattack report $here/results
