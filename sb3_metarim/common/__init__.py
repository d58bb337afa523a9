"""Pieces the algorithms share: rollout buffers, meta-RL wrappers, features extractors, checkpoints, callbacks."""
