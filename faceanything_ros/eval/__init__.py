"""Evaluation metrics shared by ``faceanything eval``, bag-eval and training's validation."""
