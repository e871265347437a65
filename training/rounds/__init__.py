"""Rounds: closing the RLHF loop. A round samples the trained policy (and the models it is compared
with) on prompts, chooses the pairs that teach the reward model most, and becomes a normal draft
batch; once physicians label it, it is measured against them.

- urls.py, apis.py   /api/rounds/ (admin only)
- worker.py          the generating worker's runtime (training.tasks.round_generate, gpu queue)
- services.py        create, cancel, resume, reap; the worker's state changes; the draft batch
- selectors.py       the previous batch's judged pairs; each round's figures and the ratings
- selection.py       which pairs (pure); rating.py win rate, Bradley-Terry, agreement (pure numpy)
The sampling itself is training.runners.generate (the only code here that reaches torch).
"""
