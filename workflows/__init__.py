"""jobflow/atomate2 makers that prescreen structures with GMTNet before DFT (``gmt_ase.workflows``)."""
