"""How robust a policy is: the worst case over an attack set at every eps, the robustness curve
and its area, the smallest eps that breaks the policy, and the certified action rate.

`attack_set` names the attacks, `search` finds the smallest eps, `curve` scores the curve,
`evaluation` runs it all through a grid's resumable results directory and `summary` sums up that
directory; `verdict` reads a summary back for `rlattack report`, and `compare` sets several side
by side.
"""
