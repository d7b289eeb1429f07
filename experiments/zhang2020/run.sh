#!/usr/bin/env bash
# One command: bash experiments/zhang2020/run.sh (resumable: re-running skips finished cells).
set -euo pipefail
here=experiments/zhang2020
rlattack run $here/grid.yaml --out $here/results --no-progress
rlattack report $here/results
