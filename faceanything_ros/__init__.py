"""faceanything_ros: feed-forward 4D face reconstruction and canonical dense face tracking.

Data flow (one sub-package per stage): ``io`` (frames, face crops) -> ``model`` (the network)
-> ``geometry`` (cameras, clouds) -> ``tracking`` (canonical tracks) -> ``export`` (files).
``predictor.Predictor`` runs the whole chain; ``cli`` exposes it as ``faceanything``.
"""

__version__ = "0.1.0"
