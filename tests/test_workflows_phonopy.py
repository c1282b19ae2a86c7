"""phonopy hand-off: NAC parameters from a (predicted) dielectric tensor and Born charges."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from pymatgen.io.ase import AseAtomsAdaptor

phonopy = pytest.importorskip("phonopy")

from gmt_ase.workflows.phonopy_nac import (  # noqa: E402
    default_nac_factor,
    nac_params_from_prediction,
    symmetrized_nac_params,
)

EPS = np.diag([2.4, 2.4, 2.4])


def nacl():
    return AseAtomsAdaptor.get_structure(bulk("NaCl", "rocksalt", a=5.64))  # Na first, then Cl


def borns(z: float = 1.1) -> np.ndarray:
    return np.array([z * np.eye(3), -z * np.eye(3)])


def _phonon(structure, nac_params=None):
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unitcell = PhonopyAtoms(
        symbols=[site.specie.symbol for site in structure],
        cell=structure.lattice.matrix,
        scaled_positions=structure.frac_coords,
    )
    phonon = Phonopy(unitcell, supercell_matrix=np.diag([2, 2, 2]), primitive_matrix=None)
    # A nearest-neighbour spring model: force constants good enough to see LO-TO splitting.
    natoms = len(phonon.supercell)
    positions = phonon.supercell.positions
    cell = phonon.supercell.cell
    fc = np.zeros((natoms, natoms, 3, 3))
    for i in range(natoms):
        for j in range(natoms):
            if i == j:
                continue
            delta = positions[j] - positions[i]
            delta -= np.rint(delta @ np.linalg.inv(cell)) @ cell
            if np.linalg.norm(delta) < 2.9:
                unit = delta / np.linalg.norm(delta)
                fc[i, j] = -2.0 * np.outer(unit, unit)
    for i in range(natoms):
        fc[i, i] = -fc[i].sum(axis=0)  # acoustic sum rule
    phonon.force_constants = fc
    if nac_params is not None:
        phonon.nac_params = nac_params
    return phonon


def test_nac_params_accepted_by_phonopy_and_split_lo_to():
    structure = nacl()
    params = nac_params_from_prediction(structure, EPS, borns())
    assert params["born"].shape == (2, 3, 3) and params["dielectric"].shape == (3, 3)
    assert params["born"][0, 0, 0] == pytest.approx(1.1)  # atom order of the structure kept (Na first)
    assert params["factor"] == pytest.approx(14.399645, rel=1e-5)  # Hartree * Bohr in eV A
    q = [[0.001, 0.0, 0.0]]
    plain = _phonon(structure)
    plain.run_qpoints(q)
    with_nac = _phonon(structure, params)
    assert np.allclose(with_nac.nac_params["born"], params["born"])
    with_nac.run_qpoints(q)
    f_plain = np.sort(plain.qpoints.frequencies[0])  # THz
    f_nac = np.sort(with_nac.qpoints.frequencies[0])
    assert np.allclose(f_plain[3:], f_plain[3], rtol=1e-6)  # no NAC: LO and TO degenerate
    assert f_nac[-1] > 1.2 * f_plain[-1]  # LO mode pushed up by the NAC term
    assert np.allclose(f_nac[3:5], f_plain[3:5], rtol=1e-6)  # TO modes unchanged
    assert np.all(np.abs(f_nac[:3]) < 0.05)  # acoustic modes near Gamma


def test_factor_options_and_validation():
    structure = nacl()
    assert "factor" not in nac_params_from_prediction(structure, EPS, borns(), factor=None)
    assert nac_params_from_prediction(structure, EPS, borns(), factor=2.0)["factor"] == 2.0
    assert default_nac_factor() == pytest.approx(14.4, rel=1e-3)
    with pytest.raises(ValueError, match=r"\(2, 3, 3\)"):
        nac_params_from_prediction(structure, EPS, borns()[:1])
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        nac_params_from_prediction(structure, np.eye(2), borns())
    with pytest.raises(ValueError, match="symmetric"):
        nac_params_from_prediction(structure, EPS + np.triu(np.ones((3, 3)), 1), borns())
    with pytest.raises(ValueError, match="positive definite"):
        nac_params_from_prediction(structure, -EPS, borns())
    unbalanced = np.array([1.1 * np.eye(3), -0.9 * np.eye(3)])
    with pytest.warns(UserWarning, match="charge neutrality"):
        nac_params_from_prediction(structure, EPS, unbalanced)
    with pytest.raises(ValueError, match="charge neutrality"):
        nac_params_from_prediction(structure, EPS, unbalanced, strict=True)
    with pytest.warns(UserWarning):
        fixed = nac_params_from_prediction(structure, EPS, unbalanced, enforce_neutrality=True)
    assert np.allclose(fixed["born"].sum(axis=0), 0) and np.allclose(fixed["born"][0], np.eye(3))


def test_symmetrized_nac_params_uses_phonopy():
    structure = nacl()
    rng = np.random.default_rng(0)
    noisy = borns() + 0.01 * rng.standard_normal((2, 3, 3))
    noisy -= noisy.mean(axis=0)  # keep it neutral
    eps = EPS + 0.01 * np.diag([1.0, -1.0, 0.0])
    params = symmetrized_nac_params(structure, eps, noisy)
    assert np.allclose(params["dielectric"], 2.4 * np.eye(3), atol=1e-12)  # cubic: isotropic
    for z in params["born"]:
        assert np.allclose(z, z[0, 0] * np.eye(3), atol=1e-12)
    assert params["born"][0, 0, 0] > 0 > params["born"][1, 0, 0]  # Na then Cl, order kept
    assert np.allclose(params["born"].sum(axis=0), 0, atol=1e-12)
