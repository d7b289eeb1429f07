#!/usr/bin/env bash
# Behzadan & Munir 2017 on the bundled Pong DQN, one command:
#   bash experiments/behzadan2017/run.sh
# 1. white-box FGSM against JSMA (grid.yaml): action-change rate and cost per attacked step;
# 2. black-box substitutes trained from the victim's actions only (at most 100,000 queries each):
#    Papernot et al.'s recipe (10,000 watched states, two Jacobian augmentation rounds), 100,000
#    watched states of games with sticky actions at 0.25 (one network; an ensemble of three), and
#    substitute-default, the default of `rlattack substitute` since sticky actions at 0.1 (one
#    network, 8 epochs). The options that differ between them are spelled out, so that committed
#    results stay those of their command when a default changes;
# 3. transfer of FGSM from each substitute to the victim, beside the white-box attack;
# 4. test-time policy induction: targeted FGSM on the substitute towards the adversary's action.
# Every step is resumable: re-running skips finished cells, finished substitutes and finished pairs.
set -euo pipefail
here=experiments/behzadan2017
out=$here/results
rlattack run $here/grid.yaml --out $out --no-progress
finished() { grep -q '"finished": true' "$1/substitute.json" 2>/dev/null; }  # every round saved
substitute() {  # substitute NAME OPTIONS...: train into $out/NAME unless it is there
  finished $out/$1 || rlattack substitute --agent pong-dqn --budget 100000 "${@:2}" --out $out/$1 --no-progress
}
substitute substitute --play 10000 --rounds 2 --explore 0 --sticky 0 --epochs 4 --lr-schedule constant
substitute substitute-sticky --sticky 0.25 --epochs 4 --lr-schedule constant
substitute substitute-ensemble --sticky 0.25 --members 3 --epochs 8 --lr-schedule cosine
substitute substitute-default --sticky 0.1 --epochs 8 --lr-schedule cosine
subs=()
for name in substitute substitute-sticky substitute-ensemble substitute-default; do
  subs+=(--source torch:$out/$name/substitute.pt)
done
for eps in 0.00392 0.00784 0.01569; do   # 1, 2 and 4 gray levels
  rlattack transfer "${subs[@]}" --source pong-dqn --victim pong-dqn --attack fgsm --eps $eps \
    --episodes 10 --envs 5 --out $out --no-progress
done
# induction: make the victim press RIGHT (action 2 of the minimal set: paddle up) on every attacked step
rlattack transfer "${subs[@]}" --source pong-dqn --victim pong-dqn --attack fgsm --eps 0.01569 \
  --target action:2 --episodes 10 --envs 5 --out $out --no-progress
rlattack report $out
