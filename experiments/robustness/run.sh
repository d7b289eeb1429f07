#!/usr/bin/env bash
# Robustness of the Pong victims, one command: bash experiments/robustness/run.sh
# Per victim: clean play, and APGD-CE, APGD-DLR, Square, transfer, noise and their per-step ensemble at
# eps 1/255 and 3/255 (L-inf) on the same games; the worst case, the robustness curve and its area;
# the IBP certified action rate on 500 states of the victim's own clean play.
# pong-distill, the robust one, plays 10 games, and its transfer attack is crafted on its teacher.
# Resumable: re-running keeps every finished cell; victims not bundled yet are skipped.
set -euo pipefail
here=experiments/robustness
for victim in pong-dqn pong-dqn-s2 pong-a3c pong-trpo pong-dqn-sa pong-dqn-adv pong-distill; do
  if ! rlattack zoo | grep -q "│ $victim "; then echo "skipped, not in the zoo yet: $victim"; continue; fi
  games=(--episodes 5)
  if [ "$victim" = pong-distill ]; then games=(--episodes 10 --surrogate pong-dqn); fi
  rlattack --threads 1 robustness --agent "$victim" --eps 1/255 --eps 3/255 "${games[@]}" --envs 5 \
    --states 500 --certify ibp --out "$here/results/$victim" --json "$here/results/$victim.json" --no-progress
  rlattack report "$here/results/$victim"
done
