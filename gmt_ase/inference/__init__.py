"""Layer 3, ``gmt_ase.inference``: checkpoints, the predictor and the one cache of loaded predictors.

* :mod:`~gmt_ase.inference.io`: versioned, safe checkpoints (``torch.load(weights_only=True)``) and the one
  place that decides whether ``model`` names a shipped model or a file;
* :mod:`~gmt_ase.inference.predictor`: :class:`~gmt_ase.inference.predictor.TensorPredictor`, arrays in,
  symmetry-exact float64 Cartesian tensors out;
* :mod:`~gmt_ase.inference.cache`: ``load_predictor`` (one predictor per model, device and dtype) and
  device resolution, shared by the calculator, the batched API, the command line and evaluation.

May import: :mod:`gmt_ase.core`, :mod:`gmt_ase.graph`, :mod:`gmt_ase.nn`, :mod:`gmt_ase.invariant`. Never the
batched API, the calculator, training, evaluation or the command line (``tests/test_layers.py``).
"""
