#!/usr/bin/env bash
# What makes a substitute of pong-dqn generalise, each within 100,000 queries:
#   bash experiments/behzadan2017/ablation.sh
# own: the victim's own play only; explore: a random other move instead of the victim's on 25%
# of steps; sticky50: sticky actions at 0.5; sticky-s1: the default (sticky actions at 0.25) with
# other seeds for the attacker and for the held-out games; epochs8: the default network trained
# for 8 epochs, as each member of the ensemble of run.sh is. The default itself, at seed 0, is
# results/substitute-sticky (run.sh). Only substitute.json is committed (the .pt are 2.8 MB each).
set -euo pipefail
out=experiments/behzadan2017/results/ablation
# a finished json without its .pt (a fresh clone) is run again
run() { [ -f $out/$1/substitute.pt ] && grep -q '"finished": true' $out/$1/substitute.json || rlattack substitute --agent pong-dqn --budget 100000 "${@:2}" --out $out/$1 --no-progress; }
run own --explore 0 --sticky 0
run explore --explore 0.25 --sticky 0
run sticky50 --explore 0 --sticky 0.5
run sticky-s1 --explore 0 --sticky 0.25 --seed 1
run epochs8 --epochs 8
