"""Layer 0, ``gmt_ase.core``: the physics every other layer shares, NumPy and spglib only.

* :mod:`~gmt_ase.core.tensors`: the target registry (names, ranks, shapes, Voigt/Mandel conventions);
* :mod:`~gmt_ase.core.symmetry`: point-group detection and the Reynolds projector;
* :mod:`~gmt_ase.core.derived`: derived quantities (moduli, stability, piezoelectric coefficients);
* :mod:`~gmt_ase.core.invariants`: invariants of the tensors and the isotropic maps that rescale them.

May import: the standard library, NumPy, spglib; lazily, inside the functions that need them, pymatgen's
elastic formulas and scipy's optimiser (``derived``) and torch (the torch branch of the projector, taken only
for a torch tensor). Never e3nn, ASE or any other gmt_ase layer (``tests/test_layers.py`` enforces it).

Public names live in the modules (nothing is re-exported here, so importing one never imports the others).
"""
