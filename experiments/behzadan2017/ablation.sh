#!/usr/bin/env bash
# What makes a substitute of pong-dqn generalise, each within 100,000 queries:
#   bash experiments/behzadan2017/ablation.sh
# own: the victim's own play only; explore: a random other move instead of the victim's on 25%
# of steps; sticky50 and sticky-s1: sticky actions at 0.5, and at 0.25 with other seeds for the
# attacker and for the held-out games (these four trained for 4 epochs at a constant step size,
# as substitute-sticky of run.sh); epochs8: sticky actions at 0.25, 8 epochs on a cosine schedule;
# sticky05: sticky actions at 0.05; -s1: other seeds; -holdout-sticky: held-out games played with
# sticky actions at 0.25 too, so that they share no state with the training games. The default
# (sticky actions at 0.1, 8 epochs) at seed 0 is results/substitute-default of run.sh. Only
# substitute.json (and agreement.png of the rows since epochs8) is committed, not the .pt (2.8 MB
# each): on a fresh clone every row is trained again (about 6 min each on one core).
set -euo pipefail
out=experiments/behzadan2017/results/ablation
# a finished json without its .pt (a fresh clone) is run again
run() { [ -f $out/$1/substitute.pt ] && grep -q '"finished": true' $out/$1/substitute.json || rlattack substitute --agent pong-dqn --budget 100000 "${@:2}" --out $out/$1 --no-progress; }
old=(--epochs 4 --lr-schedule constant)  # the settings of the first rows, before the cosine schedule
run own --explore 0 --sticky 0 "${old[@]}"
run explore --explore 0.25 --sticky 0 "${old[@]}"
run sticky50 --explore 0 --sticky 0.5 "${old[@]}"
run sticky-s1 --explore 0 --sticky 0.25 --seed 1 "${old[@]}"
run epochs8 --sticky 0.25 --epochs 8
run epochs8-s1 --sticky 0.25 --epochs 8 --seed 1
run sticky10-s1 --sticky 0.1 --epochs 8 --seed 1
run sticky05 --sticky 0.05 --epochs 8
run epochs8-holdout-sticky --sticky 0.25 --epochs 8 --holdout-sticky 0.25
run sticky10-holdout-sticky --sticky 0.1 --epochs 8 --holdout-sticky 0.25
