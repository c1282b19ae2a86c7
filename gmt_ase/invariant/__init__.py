"""Layer 2, ``gmt_ase.invariant``: the frame-invariant side of a prediction and how far to trust it.

* :mod:`~gmt_ase.invariant.descriptors`: crystal descriptors (element statistics, volume, bonds);
* :mod:`~gmt_ase.invariant.boosted_trees`: tree ensembles as plain data, NumPy prediction;
* :mod:`~gmt_ase.invariant.packed_arrays`: arrays as compressed bytes for the checkpoint;
* :mod:`~gmt_ase.invariant.soft_trees`: the trees evaluated with smooth (C2) splits;
* :mod:`~gmt_ase.invariant.invariant_model`: moduli, means and norms from descriptors and the network;
* :mod:`~gmt_ase.invariant.equilibrium_volume`: a crystal's zero-pressure volume from scale-free descriptors, and
  the Murnaghan factor that carries the moduli from it to the given volume;
* :mod:`~gmt_ase.invariant.piezo_onset`: how a piezo tensor grows from zero away from centrosymmetry;
* :mod:`~gmt_ase.invariant.piezo_prototypes`: piezo directions transferred from the nearest known crystal of the
  same space group, exactly equivariantly;
* :mod:`~gmt_ase.invariant.uncertainty`: calibrated one-sigma uncertainties, :mod:`~gmt_ase.invariant.spread`
  their per-crystal spreads, :mod:`~gmt_ase.invariant.error_model` the learned error score they read;
* :mod:`~gmt_ase.invariant.metallicity`: which crystals are likely metals;
* :mod:`~gmt_ase.invariant.applicability`: warnings, against ``training_stats.json`` (package data here).

May import: :mod:`gmt_ase.core`, :mod:`gmt_ase.graph`, NumPy, ASE's element data. Never torch, ``gmt_ase.nn``
or anything above (``tests/test_layers.py``).
"""
