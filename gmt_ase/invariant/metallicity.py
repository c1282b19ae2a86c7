"""Is a crystal likely a metal? A composition rule with two clauses, explainable in one sentence each.

1. **No nonmetal** (:data:`NONMETALS`): an elemental metal or an intermetallic.
2. **Interstitial compound with electrons to spare**: the only nonmetals are boron, carbon and nitrogen,
   the crystal holds a transition metal (d block, groups 3-10), and the cations' valence electrons exceed
   what the anions can take: ``sum(n_i * valence_i) - sum(n_j * capacity_j) > 0`` with the valences of
   :func:`valence` (the group number for groups 1-7, 3 for groups 8-10 and the f block, 1/2 for groups
   11/12, 13 -> 3, 14 -> 4, 15 -> 3) and the capacities of :data:`ANION_CAPACITY`. Rock-salt TiN, ZrN,
   HfN, VN, NbN (d1, d2) and TiC, ZrC, HfC, NbC, TaC are caught; d0 nitrides (ScN, YN, LaN, Zr3N4, Ta3N5,
   SrTiN2, CsTaN2, BaHfN2, MgMoN2) and d10 ones (LiZnN, Ca2ZnN2) are not. Carbide carbon counts as taking
   three electrons, not four: the group-4 monocarbides TiC, ZrC, HfC (formally d0 with C4-) are metals in
   DFT, their carbon p band overlapping the metal d band; boron in borides takes one (B-B networks), so
   TiB2, ZrB2, CrB are metals.

Measured on the data files (``benchmarks/metal_warning.py``; ``benchmarks/README.md``, metal-warning
section): of the 913 dielectric records the loaders keep (DFPT insulators, DFT band gaps >= 0.11 eV) clause 2
flags 2 (Sc4C3, MgMoN2) and clause 1 11 (Zintl and half-Heusler semiconductors such as Li3Bi, CsAu, TiSnPt):
13 false positives, 1.4 %; of the 772 piezoelectric records 15 (1.9 %), all clause 1. The elastic files hold
no band gap or metal flag, so clause 2 is backed by chemistry (Hägg's interstitial compounds) and by the
dielectric records' gaps, not fitted.

Only the composition is read (element counts, any multiple of the formula): the answer is the same for
every cell choice, rotation, supercell and rattle. NumPy and ASE's element symbols only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from ase.data import atomic_numbers

__all__ = [
    "ANION_CAPACITY",
    "NONMETALS",
    "electron_excess",
    "is_interstitial_metal",
    "is_likely_metallic",
    "metal_reason",
    "valence",
]

#: Nonmetals, metalloids and noble gases: a crystal with none of them is taken to be (likely) metallic.
NONMETALS = frozenset("H He B C N O F Ne Si P S Cl Ar Ge As Se Br Kr Sb Te I Xe At Rn".split())
#: Electrons each interstitial nonmetal takes from the metals (see the module docstring).
ANION_CAPACITY = {"N": 3, "C": 3, "B": 1}
#: First atomic number of each period.
_PERIOD_STARTS = (1, 3, 11, 19, 37, 55, 87)


def _group(z: int) -> int | None:
    """Periodic-table group (1-18) of atomic number ``z``; ``None`` for the f block (La-Lu, Ac-Lr)."""
    start = max(s for s in _PERIOD_STARTS if s <= z)
    offset = z - start
    if start == 1:
        return 1 if z == 1 else 18
    if start in (3, 11):
        return offset + 1 if offset < 2 else offset + 11
    if start in (19, 37):
        return offset + 1
    if offset < 2:
        return offset + 1
    if offset <= 16:  # La..Lu or Ac..Lr
        return None
    return offset - 13  # Hf (offset 17) is group 4


def valence(symbol: str) -> int:
    """Valence electrons a cation gives away in the electron count (see the module docstring)."""
    group = _group(atomic_numbers[symbol])
    if group is None or 8 <= group <= 10:
        return 3
    if group in (11, 12):
        return group - 10
    if group >= 13:
        return {13: 3, 14: 4, 15: 3}.get(group, 0)
    return group


def _is_transition_metal(symbol: str) -> bool:
    group = _group(atomic_numbers[symbol])
    return group is not None and 3 <= group <= 10 and atomic_numbers[symbol] > 20


def electron_excess(counts: dict[str, float]) -> float:
    """Cation valence electrons minus anion capacity, per formula written by ``counts`` (B, C, N anions)."""
    given = sum(n * valence(el) for el, n in counts.items() if el not in NONMETALS)
    taken = sum(n * ANION_CAPACITY.get(el, 0) for el, n in counts.items())
    return float(given - taken)


def is_interstitial_metal(counts: dict[str, float]) -> bool:
    """Clause 2: only B/C/N nonmetals, a transition metal, and electrons left over (module docstring)."""
    nonmetals = {el for el in counts if el in NONMETALS}
    if not nonmetals or not nonmetals <= set(ANION_CAPACITY):
        return False
    if not any(_is_transition_metal(el) for el in counts):
        return False
    return electron_excess(counts) > 0


def _counts(symbols: Iterable[str] | Mapping[str, float]) -> dict[str, float]:
    if isinstance(symbols, Mapping):
        return {str(el): float(n) for el, n in symbols.items() if n > 0}
    return dict(Counter(symbols))


def metal_reason(symbols: Iterable[str] | Mapping[str, float]) -> str | None:
    """Why a crystal is likely metallic (a short phrase), or ``None``.

    ``symbols`` are the symbols of every site (counts matter: clause 2 counts electrons) or a mapping of
    element to amount (a composition). A bare set of elements counts each element once: pass counts.
    """
    counts = _counts(symbols)
    if not set(counts) & NONMETALS:
        return "no nonmetal element"
    if is_interstitial_metal(counts):
        excess = electron_excess(counts) / sum(n for el, n in counts.items() if el not in NONMETALS)
        return (
            f"transition-metal boride/carbide/nitride with {excess:.2g} valence electrons per metal atom "
            "left over after the B/C/N anions: a conductor like TiN, TiC, NbC"
        )
    return None


def is_likely_metallic(symbols: Iterable[str] | Mapping[str, float]) -> bool:
    """Return whether :func:`metal_reason` finds a reason (no nonmetal, or an interstitial conductor)."""
    return metal_reason(symbols) is not None
