"""Layer 1, ``gmt_ase.graph``: from a structure to the model's input graph.

* :mod:`~gmt_ase.graph.neighbors`: the periodic neighbour list, a pure function of (positions, cell, cutoff);
* :mod:`~gmt_ase.graph.validation`: the structure checks, each raising its own ``InvalidStructureError``;
* :mod:`~gmt_ase.graph.crystal`: the one structure -> validated crystal path
  (:func:`~gmt_ase.graph.crystal.prepare_crystal`: checks, symmetry and one neighbour list), used by
  inference and training alike;
* :mod:`~gmt_ase.graph.crystal_graph`: crystal graphs and their collation into one batch dictionary.

May import: :mod:`gmt_ase.core`, NumPy, ASE (structure objects), pymatgen (only to convert a ``Structure``),
torch (tensors of the batch). Never ``gmt_ase.nn`` or anything above (``tests/test_layers.py``).
"""
