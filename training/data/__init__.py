"""Data engine: camera sampling, exact-geometry re-renders, augmentation, shards, splits, Dataset.

Data flow: source frame -> face-mesh pseudo-label (``faceanything_ros``) -> ``cameras`` (novel
views) -> ``rerender`` (textured mesh rendered with exact ground truth) -> ``augment`` (image only)
-> ``shards`` (files + manifest; split from ``splits``) -> ``dataset`` (torch tensors).
``multiview`` turns calibrated NeRSemble-layout captures into the same samples.
"""
