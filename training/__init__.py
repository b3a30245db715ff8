"""Training side of faceanything_ros: the data engine (``training.data``) and its CLI.

``training`` imports ``faceanything_ros``; the package never imports ``training``.
"""
