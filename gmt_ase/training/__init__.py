"""Side layer, ``gmt_ase.training``: from tensor datasets to a trained, calibrated checkpoint.

* data: :mod:`~gmt_ase.training.data` (records, splits, hashes), :mod:`~gmt_ase.training.sources`,
  :mod:`~gmt_ase.training.data_filters`, :mod:`~gmt_ase.training.jarvis` (restricted unpickler);
* the network: :mod:`~gmt_ase.training.samples` (records -> graphs through the same validated path as
  inference, :func:`gmt_ase.graph.crystal.prepare_crystal`), :mod:`~gmt_ase.training.losses`,
  :mod:`~gmt_ase.training.element_features` and :mod:`~gmt_ase.training.train` (``gmt-ase train``), whose
  parts live in :mod:`~gmt_ase.training.config`, :mod:`~gmt_ase.training.prepare`,
  :mod:`~gmt_ase.training.loop`, :mod:`~gmt_ase.training.averaging` and :mod:`~gmt_ase.training.checkpoints`;
* after the network: :mod:`~gmt_ase.training.train_invariants`, :mod:`~gmt_ase.training.split_widths`,
  :mod:`~gmt_ase.training.equilibrium_volume_fit`, :mod:`~gmt_ase.training.piezo_prototypes`,
  :mod:`~gmt_ase.training.calibration` (with :mod:`~gmt_ase.training.spread_fit`,
  :mod:`~gmt_ase.training.error_model_fit` and :mod:`~gmt_ase.training.spread_data`),
  :mod:`~gmt_ase.training.applicability_stats`.

May import: every layer below the batched API (core, graph, nn, invariant, inference) and
:mod:`gmt_ase.predict` (to score what inference would accept). Never the calculator, evaluation or the
command line; nothing in the inference path imports it (``tests/test_layers.py``).
"""
