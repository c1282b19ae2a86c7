"""Side layer, ``gmt_ase.evaluation``: score a model on a labelled split and ship it.

* :mod:`~gmt_ase.evaluation.evaluate` (``gmt-ase evaluate``), :mod:`~gmt_ase.evaluation._pairs`
  (prediction/target pairs), :mod:`~gmt_ase.evaluation.metrics`, :mod:`~gmt_ase.evaluation.reports`
  (tables, parity plots);
* :mod:`~gmt_ase.evaluation.release`: package an evaluated checkpoint with its model card (it reads the
  evaluation's metrics and tables, so it sits here, downstream of evaluation).

May import: every layer below the calculator, and :mod:`gmt_ase.training` for the datasets and their split.
Never the calculator or the command line; nothing below imports it (``tests/test_layers.py``).
"""
