#!/usr/bin/env bash
# Behzadan & Munir 2017 on the bundled Pong DQN, one command:
#   bash experiments/behzadan2017/run.sh
# 1. white-box FGSM against JSMA (grid.yaml): action-change rate and cost per attacked step;
# 2. a black-box substitute trained from the victim's actions only (at most 100,000 queries);
# 3. transfer of FGSM from the substitute to the victim, beside the white-box attack;
# 4. test-time policy induction: targeted FGSM on the substitute towards the adversary's action.
# Every step is resumable: re-running skips finished cells, the substitute and finished pairs.
set -euo pipefail
here=experiments/behzadan2017
out=$here/results
rlattack run $here/grid.yaml --out $out --no-progress
if [ ! -f $out/substitute/substitute.json ]; then
  rlattack substitute --agent pong-dqn --budget 100000 --play 10000 --rounds 2 \
    --out $out/substitute --no-progress
fi
sub=torch:$out/substitute/substitute.pt
for eps in 0.00392 0.00784 0.01569; do   # 1, 2 and 4 gray levels
  rlattack transfer --source $sub --source pong-dqn --victim pong-dqn --attack fgsm --eps $eps \
    --episodes 10 --envs 5 --out $out --no-progress
done
# induction: make the victim press RIGHT (action 2 of the minimal set: paddle up) on every attacked step
rlattack transfer --source $sub --source pong-dqn --victim pong-dqn --attack fgsm --eps 0.01569 \
  --target action:2 --episodes 10 --envs 5 --out $out --no-progress
rlattack report $out
