#!/usr/bin/env bash
# Huang et al. 2017, one command: bash experiments/huang2017/run.sh
# 1. white-box FGSM (L-inf, L2, L1) over an eps grid on 4 games x DQN, A3C, TRPO (grid.yaml);
# 2. the same attack on the A3C and TRPO victims acting as in training, actions sampled
#    (grid-sampled.yaml, results in sampled/);
# 3. black-box transfer on Pong: across policies of the same algorithm (another DQN seed) and
#    across algorithms, crafted on each source and shown to each target (the diagonal is white-box).
# Resumable: re-running skips finished cells and pairs. Victims the zoo does not hold yet are left
# out (--skip-missing); once bundled, re-running adds their cells and pairs to the same results.
set -euo pipefail
here=experiments/huang2017
out=$here/results
rlattack run $here/grid.yaml --out $out --skip-missing --no-progress
rlattack run $here/grid-sampled.yaml --out $here/sampled --skip-missing --no-progress
rlattack report $here/sampled
pong=(pong-dqn pong-dqn-s2 pong-a3c pong-trpo)
for eps in 0.001 0.004; do
  rlattack transfer "${pong[@]/#/--source=}" "${pong[@]/#/--victim=}" --attack fgsm --norm inf \
    --eps $eps --episodes 10 --envs 5 --out $out --skip-missing --no-progress
done
rlattack report $out
