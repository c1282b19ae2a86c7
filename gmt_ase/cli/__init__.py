"""Top layer, ``gmt_ase.cli``: the ``gmt-ase`` command line (console script ``gmt_ase.cli:main``).

* :mod:`~gmt_ase.cli.commands`: the parser, ``predict`` and ``info``; ``train`` and ``evaluate`` are
  imported only when invoked (:data:`~gmt_ase.cli.commands.EXTERNAL_SUBCOMMANDS`);
* :mod:`~gmt_ase.cli._io`, :mod:`~gmt_ase.cli._output`, :mod:`~gmt_ase.cli._predict`: input discovery,
  output files and resumable batched prediction (in process, or on a Dask cluster with ``--scheduler``);
* :mod:`~gmt_ase.cli._card`: the model card that ``info`` shows.

May import every other layer; nothing in gmt_ase imports it (``tests/test_layers.py``). Importing it stays
cheap: torch is imported only when a command needs a model.
"""

from gmt_ase.cli.commands import EXTERNAL_SUBCOMMANDS, build_parser, main

__all__ = ["EXTERNAL_SUBCOMMANDS", "build_parser", "main"]
