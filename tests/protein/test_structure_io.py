"""Reading structure files (PDB, mmCIF, BinaryCIF; plain or gzipped) and writing backbone PDBs."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
import torch

from multiflow_gm.protein import alphabet
from multiflow_gm.protein import residue_constants as rc
from multiflow_gm.protein.geometry import backbone_from_frames, backbone_from_torsions, frames_from_backbone
from multiflow_gm.protein.pdb_writer import write_backbone_pdb
from multiflow_gm.protein.structure_io import entry_id_from_path, monotonic_residue_index, read_chains


def helix_atoms(length: int, offset=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Ideal alpha helix N, CA, C, O [L, 4, 3] (Angstrom)."""
    return backbone_from_torsions([-57.0] * length, -47.0).numpy() + np.asarray(offset)


def atom_line(serial, name, res_name, chain, res_id, xyz, *, record="ATOM", altloc=" ", icode=" ",
              bfactor=20.0) -> str:
    x, y, z = xyz
    return (f"{record:<6s}{serial:5d} {name:<4s}{altloc}{res_name:>3s} {chain}{res_id:4d}{icode}   "
            f"{x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{bfactor:6.2f}          {name[0]:>2s}")


def chain_lines(atoms, sequence3, chain="A", start=1, record="ATOM", serial=1) -> list[str]:
    lines = []
    for i, res_name in enumerate(sequence3):
        for k, name in enumerate(rc.BACKBONE_ATOMS):
            lines.append(atom_line(serial, name, res_name, chain, start + i, atoms[i, k], record=record))
            serial += 1
    return lines


def write_text(path, lines, gz=False):
    text = "\n".join(lines) + "\nEND\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# -- writing --------------------------------------------------------------------------------------

def test_written_pdb_is_read_back_by_biotite(tmp_path):
    import biotite.structure.io.pdb as pdb

    atoms = helix_atoms(12)
    rotations, translations = frames_from_backbone(*(torch.from_numpy(atoms[:, k]) for k in range(3)))
    full = backbone_from_frames(rotations, translations)  # [12, 5, 3] with CB
    sequence = "MKGAXWYGLLEV"
    path = write_backbone_pdb(tmp_path / "out" / "sample.pdb", full, sequence, chain_id="B",
                              bfactors=np.arange(12.0))
    assert path.is_file() and not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    structure = pdb.PDBFile.read(str(path)).get_structure(model=1, extra_fields=["b_factor"])
    n_gly = sequence.count("G")
    assert structure.array_length() == 12 * 5 - n_gly
    assert set(structure.chain_id) == {"B"}
    residues = [structure.res_name[structure.res_id == i + 1][0] for i in range(12)]
    assert residues == [alphabet.ONE_TO_THREE.get(c, "UNK") for c in sequence]
    ca = structure.coord[structure.atom_name == "CA"]
    assert np.allclose(ca, full[:, 1].numpy(), atol=1e-3)
    assert np.allclose(structure.b_factor[structure.atom_name == "CA"], np.arange(12.0))
    assert not (structure.atom_name[structure.res_name == "GLY"] == "CB").any()


def test_write_backbone_pdb_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        write_backbone_pdb(tmp_path / "x.pdb", np.zeros((5, 3, 3)), "AAAAA")
    with pytest.raises(ValueError, match="sequence"):
        write_backbone_pdb(tmp_path / "x.pdb", np.zeros((5, 4, 3)), "AAA")
    with pytest.raises(ValueError, match="non-finite"):
        write_backbone_pdb(tmp_path / "x.pdb", np.full((2, 4, 3), np.nan), "AA")
    assert not list(tmp_path.iterdir())


# -- reading the three formats -------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_read_pdb_round_trip(tmp_path, gz):
    atoms = helix_atoms(30)
    sequence = "ACDEFGHIKLMNPQRSTVWY" + "A" * 10
    name = "1abc.pdb.gz" if gz else "1abc.pdb"
    path = tmp_path / name
    write_backbone_pdb(tmp_path / "plain.pdb", atoms, sequence)
    if gz:
        path.write_bytes(gzip.compress((tmp_path / "plain.pdb").read_bytes()))
    else:
        (tmp_path / "plain.pdb").rename(path)
    result = read_chains(path)
    assert result.ok and not result.problems and result.entry == "1abc"
    (chain,) = result.chains
    assert chain.chain_id == "A" and len(chain) == 30
    assert np.allclose(chain.atoms, atoms, atol=1e-3)
    assert alphabet.indices_to_sequence(chain.aatype) == sequence
    assert chain.res_id.tolist() == list(range(1, 31))


@pytest.mark.parametrize("fmt", ["cif", "cif.gz", "bcif", "bcif.gz"])
def test_read_mmcif_and_binarycif(tmp_path, fmt):
    import biotite.structure.io.pdb as pdb
    import biotite.structure.io.pdbx as pdbx

    atoms = helix_atoms(25)
    write_backbone_pdb(tmp_path / "src.pdb", atoms, "MKV" * 8 + "G")
    structure = pdb.PDBFile.read(str(tmp_path / "src.pdb")).get_structure(model=1, extra_fields=["b_factor"])
    container = pdbx.BinaryCIFFile() if fmt.startswith("bcif") else pdbx.CIFFile()
    pdbx.set_structure(container, structure)
    raw = tmp_path / ("raw." + fmt.split(".")[0])
    container.write(str(raw))
    path = tmp_path / f"2xyz.{fmt}"
    path.write_bytes(gzip.compress(raw.read_bytes()) if fmt.endswith(".gz") else raw.read_bytes())
    result = read_chains(path)
    assert result.ok, result.problems
    (chain,) = result.chains
    assert np.allclose(chain.atoms, atoms, atol=1e-3)
    assert alphabet.indices_to_sequence(chain.aatype) == "MKV" * 8 + "G"


def test_first_model_first_altloc_insertion_codes_and_modified_residues(tmp_path):
    atoms = helix_atoms(6)
    names = ["ALA", "MSE", "GLY", "SER", "UNK", "LEU"]
    lines = ["MODEL        1"]
    serial = 1
    for i, res_name in enumerate(names):
        record = "HETATM" if res_name == "MSE" else "ATOM"
        res_id, icode = (52, "A") if i == 3 else (52 if i == 2 else 50 + i, " ")
        for k, name in enumerate(rc.BACKBONE_ATOMS):
            if i == 1 and name == "CA":  # two alternate locations; A comes first
                lines.append(atom_line(serial, name, res_name, "A", res_id, atoms[i, k], record=record, altloc="A"))
                lines.append(atom_line(serial + 1, name, res_name, "A", res_id, atoms[i, k] + 0.7,
                                       record=record, altloc="B"))
                serial += 2
                continue
            lines.append(atom_line(serial, name, res_name, "A", res_id, atoms[i, k], record=record, icode=icode))
            serial += 1
    lines += [atom_line(900, "O", "HOH", "A", 301, (9.0, 9.0, 9.0), record="HETATM"), "ENDMDL", "MODEL        2"]
    lines += chain_lines(atoms + 50.0, names) + ["ENDMDL"]
    result = read_chains(write_text(tmp_path / "3abc.pdb", lines))
    (chain,) = result.chains
    assert len(chain) == 6
    assert np.allclose(chain.atoms, atoms, atol=1e-3)  # model 1, altloc A
    assert alphabet.indices_to_sequence(chain.aatype) == "AMGSXL"
    assert chain.res_id.tolist() == [50, 51, 52, 52, 54, 55]
    assert chain.ins_code.tolist()[2:4] == ["", "A"]
    protein = chain.to_protein_chain()
    assert protein.residue_index.tolist() == [50, 51, 52, 53, 54, 55]
    assert protein.atoms.dtype == np.float32 and protein.aatype.dtype == np.int64


def test_multiple_chains_and_unbonded_hetero_amino_acids(tmp_path):
    a, b = helix_atoms(8), helix_atoms(8, offset=(30.0, 0.0, 0.0))
    lines = chain_lines(a, ["ALA"] * 8, chain="A") + ["TER"] + chain_lines(b, ["GLU"] * 8, chain="B", serial=100)
    # A free tyrosine ligand assigned to chain A, far from the chain: not part of the polymer.
    lines += chain_lines(helix_atoms(1, offset=(0.0, 40.0, 0.0)), ["TYR"], chain="A", start=500,
                         record="HETATM", serial=200)
    result = read_chains(write_text(tmp_path / "4abc.pdb", lines))
    assert [c.chain_id for c in result.chains] == ["A", "B"]
    assert [len(c) for c in result.chains] == [8, 8]


def test_helpers():
    assert entry_id_from_path("/x/PDB1ABC.ent.gz") == "1abc"
    assert entry_id_from_path("7XYZ.cif") == "7xyz"
    assert monotonic_residue_index(np.array([3, 4, 9])).tolist() == [3, 4, 9]
    assert monotonic_residue_index(np.array([3, 3, 4])).tolist() == [3, 4, 5]


# -- bad input never raises ---------------------------------------------------------------------------

def _bad_files(tmp_path):
    good = chain_lines(helix_atoms(70), ["ALA"] * 70)
    files = {}
    files["empty_file"] = tmp_path / "empty.pdb"
    files["empty_file"].write_bytes(b"")
    full = gzip.compress(("\n".join(good) + "\n").encode())
    files["truncated_file"] = tmp_path / "trunc.pdb.gz"
    files["truncated_file"].write_bytes(full[: len(full) // 2])
    files["corrupt_gzip"] = tmp_path / "corrupt.pdb.gz"
    files["corrupt_gzip"].write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    files["binary_garbage"] = tmp_path / "garbage.pdb"
    files["binary_garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files["no_protein"] = write_text(tmp_path / "water.pdb", [
        atom_line(i + 1, "O", "HOH", "A", i + 1, (i, 0.0, 0.0), record="HETATM") for i in range(10)])
    files["no_atoms"] = write_text(tmp_path / "header.pdb", ["HEADER    NOTHING HERE", "REMARK 1"])
    files["hetatm_only"] = write_text(tmp_path / "het.pdb", chain_lines(helix_atoms(70), ["ALA"] * 70,
                                                                         record="HETATM"))
    files["duplicate_atoms"] = write_text(tmp_path / "dup.pdb", good + good)
    nan_lines = good[:8] + [line[:30] + f"{'nan':>8s}" * 3 + line[54:] for line in good[8:12]] + good[12:]
    files["absurd_coordinates"] = write_text(tmp_path / "nan.pdb", nan_lines)
    files["malformed_file"] = write_text(tmp_path / "cut.pdb", good[:-1] + [good[-1][:40]])
    return files


def test_bad_files_are_reported_not_raised(tmp_path):
    expected_reason = {"hetatm_only": "no_protein"}
    for label, path in _bad_files(tmp_path).items():
        result = read_chains(path)
        assert not result.chains, label
        reasons = {p.reason for p in result.problems}
        assert reasons == {expected_reason.get(label, label)}, (label, result.problems)
        assert all(p.source == str(path) for p in result.problems)


def test_huge_files_are_skipped_before_parsing(tmp_path):
    huge = tmp_path / "huge.pdb"
    with huge.open("wb") as handle:  # sparse: 200 MB of size, no disk blocks
        handle.truncate(200 * 1024 * 1024)
    (problem,) = read_chains(huge).problems
    assert problem.reason == "file_too_large" and "MB" in problem.detail
    bomb = tmp_path / "bomb.pdb.gz"
    bomb.write_bytes(gzip.compress(b"REMARK   1\n" * 300_000))  # 3.3 MB of text, tiny compressed
    assert os.path.getsize(bomb) < 100_000
    (problem,) = read_chains(bomb, max_file_mb=1.0).problems
    assert problem.reason == "file_too_large" and "decompresses" in problem.detail
