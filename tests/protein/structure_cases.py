"""Structure files built in tests: the awkward cases users have, and seeded fuzzed files.

Every builder writes PDB text by hand (fixed columns), so each case is exactly the
quirk it names: a peptide chain, a residue without CA, two NMR models, alternate
locations, an MSE residue, insertion codes, an empty file, a truncated gzip, and
an mmCIF file followed by junk. Coordinates are Angstrom.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

BACKBONE = ("N", "CA", "C", "O")
THREE = {"A": "ALA", "G": "GLY", "L": "LEU", "K": "LYS", "E": "GLU", "S": "SER", "M": "MET", "V": "VAL"}


def helix(length: int, offset=(0.0, 0.0, 0.0)) -> np.ndarray:
    """An ideal alpha-helix backbone, float64 ``[length, 4, 3]``, shifted by ``offset``."""
    from multiflow_gm.protein.geometry import backbone_from_torsions

    atoms = backbone_from_torsions(np.full(length, -57.0), np.full(length, -47.0)).numpy()
    return atoms + np.asarray(offset)


def atom_line(serial: int, name: str, res_name: str, chain: str, res_id: int, xyz, *, record: str = "ATOM",
              altloc: str = " ", icode: str = " ", occupancy: float = 1.0) -> str:
    element = name[0]
    return (f"{record:<6s}{serial:5d} {name:<4s}{altloc}{res_name:>3s} {chain}{res_id:4d}{icode}   "
            f"{xyz[0]:8.3f}{xyz[1]:8.3f}{xyz[2]:8.3f}{occupancy:6.2f}{20.0:6.2f}          {element:>2s}")


def chain_lines(chain: str, atoms: np.ndarray, sequence: str, *, start: int = 1, serial: int = 1,
                hetero: frozenset = frozenset(), res_names: dict | None = None, icodes: dict | None = None,
                missing: dict | None = None, altloc_shift: dict | None = None) -> list[str]:
    """ATOM lines of one chain. ``hetero``: residue positions written as HETATM; ``res_names``:
    position -> residue name; ``icodes``: position -> (number, insertion code); ``missing``:
    position -> atom names left out; ``altloc_shift``: position -> shift of a second altloc B."""
    lines = []
    for i, letter in enumerate(sequence):
        res_name = (res_names or {}).get(i, THREE.get(letter, "ALA"))
        number, icode = (icodes or {}).get(i, (start + i, " "))
        record = "HETATM" if i in hetero else "ATOM"
        for k, name in enumerate(BACKBONE):
            if name in (missing or {}).get(i, ()):
                continue
            if altloc_shift and i in altloc_shift:
                lines.append(atom_line(serial, name, res_name, chain, number, atoms[i, k], record=record,
                                       altloc="A", icode=icode, occupancy=0.6))
                serial += 1
                lines.append(atom_line(serial, name, res_name, chain, number, atoms[i, k] + altloc_shift[i],
                                       record=record, altloc="B", icode=icode, occupancy=0.4))
            else:
                lines.append(atom_line(serial, name, res_name, chain, number, atoms[i, k], record=record,
                                       icode=icode))
            serial += 1
    lines.append(f"TER   {serial:5d}")
    return lines


def protein_with(protein: np.ndarray, extra: list[str] | None = None, **chain_kwargs) -> str:
    """PDB text: chain A = ``protein`` (all alanine except as set in ``chain_kwargs``) plus ``extra`` lines."""
    sequence = chain_kwargs.pop("sequence", "A" * len(protein))
    lines = chain_lines("A", protein, sequence, **chain_kwargs)
    return "\n".join(lines + (extra or []) + ["END", ""])


def write_cases(directory: Path, protein: np.ndarray) -> dict[str, Path]:
    """Write every awkward case into ``directory``; returns name -> path.

    ``protein`` (``[L, 4, 3]``) is chain A of each protein case, so the cases differ only
    in their quirk.
    """
    directory.mkdir(parents=True, exist_ok=True)
    far = protein[:, :, :] + np.array([60.0, 0.0, 0.0])
    cases: dict[str, str | bytes] = {}
    for length in range(1, 7):
        peptide = helix(length, offset=(0.0, 40.0, 0.0))
        cases[f"peptide_{length}"] = protein_with(protein, chain_lines("P", peptide, "K" * length, serial=5000))
    middle = len(protein) // 2
    cases["missing_ca"] = protein_with(protein, missing={middle: ("CA",)})
    model_two = chain_lines("A", far, "A" * len(protein))
    cases["nmr_two_models"] = "\n".join(["MODEL        1", *chain_lines("A", protein, "A" * len(protein)), "ENDMDL",
                                         "MODEL        2", *model_two, "ENDMDL", "END", ""])
    cases["altloc"] = protein_with(protein, altloc_shift={3: np.array([0.5, 0.0, 0.0]), 7: np.array([0.0, 0.7, 0.0])})
    cases["mse"] = protein_with(protein, hetero=frozenset({5}), res_names={5: "MSE"})
    icodes = {i: (10 + i, " ") for i in range(len(protein))}
    icodes.update({4: (13, "A"), 5: (13, "B")})
    icodes.update({i: (10 + i - 2, " ") for i in range(6, len(protein))})
    cases["insertion_codes"] = protein_with(protein, icodes=icodes)
    cases["hetero_ligand_chain"] = protein_with(protein, chain_lines("L", helix(3, (0, -40, 0)), "GGG", serial=7000,
                                                                      hetero=frozenset({0, 1, 2})))
    cases["two_proteins"] = protein_with(protein, chain_lines("B", far, "A" * len(protein), serial=5000))
    cases["empty"] = b""
    whole = gzip.compress(protein_with(protein).encode())
    cases["truncated_gzip"] = whole[: len(whole) // 2]
    cases["cif_with_junk"] = cif_text(protein) + "loop_\n_junk.a\n_junk.b\n'unclosed 1 2 3\n@@ not CIF ;\n" * 3
    cases["cif_with_binary_junk"] = cif_text(protein) + "\x00\x01junk\n" * 3
    paths = {}
    for name, content in cases.items():
        suffix = {"truncated_gzip": ".pdb.gz", "cif_with_junk": ".cif", "cif_with_binary_junk": ".cif"}.get(name, ".pdb")
        path = directory / f"{name}{suffix}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        paths[name] = path
    return paths


def cif_text(protein: np.ndarray, chain: str = "A") -> str:
    """A minimal mmCIF ``atom_site`` loop of one alanine chain."""
    header = ["data_test", "loop_", *(f"_atom_site.{key}" for key in (
        "group_PDB", "id", "type_symbol", "label_atom_id", "label_alt_id", "label_comp_id", "label_asym_id",
        "label_entity_id", "label_seq_id", "pdbx_PDB_ins_code", "Cartn_x", "Cartn_y", "Cartn_z", "occupancy",
        "B_iso_or_equiv", "auth_seq_id", "auth_asym_id", "pdbx_PDB_model_num"))]
    rows, serial = [], 1
    for i, residue in enumerate(protein):
        for name, xyz in zip(BACKBONE, residue):
            rows.append(f"ATOM {serial} {name[0]} {name} . ALA {chain} 1 {i + 1} ? {xyz[0]:.3f} {xyz[1]:.3f} "
                        f"{xyz[2]:.3f} 1.00 20.00 {i + 1} {chain} 1")
            serial += 1
    return "\n".join(header + rows + ["#", ""])


def fuzzed_files(directory: Path, bases: list[tuple[bytes, str]], count: int, seed: int) -> list[Path]:
    """``count`` files made from ``bases`` (content, suffix) with a seeded RNG: a third cut at a
    random byte, a third with 1-40 random bytes overwritten (both keep the base's suffix), a
    third random bytes named .pdb, .cif or .pdb.gz (gzip-wrapped, sometimes cut)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        base, suffix = bases[int(rng.integers(len(bases)))]
        kind = index % 3
        if kind == 0:
            data = base[: int(rng.integers(0, len(base)))]
        elif kind == 1:
            data = bytearray(base)
            for position in rng.integers(0, len(data), size=int(rng.integers(1, 40))):
                data[position] = int(rng.integers(0, 256))
            data = bytes(data)
        else:
            data = rng.bytes(int(rng.integers(1, 4000)))
            suffix = (".pdb", ".cif", ".pdb.gz")[int(rng.integers(3))]
            if suffix == ".pdb.gz":
                data = gzip.compress(data)
                if rng.random() < 0.5:  # and sometimes cut the gzip stream itself
                    data = data[: int(rng.integers(0, len(data)))]
        path = directory / f"fuzz_{index:03d}{suffix}"
        path.write_bytes(data)
        paths.append(path)
    return paths
