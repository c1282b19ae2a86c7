"""Layer 2, ``gmt_ase.nn``: the equivariant network, torch and e3nn only.

* :mod:`~gmt_ase.nn.cartesian`: Cartesian bases of the output irreps;
* :mod:`~gmt_ase.nn.layers`: the building blocks (radial basis, gated message passing, heads);
* :mod:`~gmt_ase.nn.model`: :class:`~gmt_ase.nn.model.GMTNet`, its ensemble and configuration;
* :mod:`~gmt_ase.nn._clone`: members of an ensemble that share e3nn's generated code.

May import: :mod:`gmt_ase.core`, torch, e3nn, NumPy. Never ASE, pymatgen, ``gmt_ase.graph`` (the network reads
the plain batch dictionary whose keys ``gmt_ase.graph.crystal_graph.BATCH_KEYS`` documents) or anything above
(``tests/test_layers.py``).
"""
