"""Layer 0, ``gmt_ase.core``: the physics every other layer shares, NumPy and spglib only.

* :mod:`~gmt_ase.core.tensors`: the target registry (names, ranks, shapes, Voigt/Mandel conventions);
* :mod:`~gmt_ase.core.symmetry`: point-group detection and the Reynolds projector;
* :mod:`~gmt_ase.core.derived`: derived quantities (moduli, stability, piezoelectric coefficients);
* :mod:`~gmt_ase.core.invariants`: invariants of the tensors and the isotropic maps that rescale them.

May import: the standard library, NumPy, spglib. Never torch, e3nn, ASE objects or any other gmt_ase layer
(``tests/test_layers.py`` enforces it). Public names live in the modules (nothing is re-exported here, so
importing one module never imports the others).
"""
