"""Protein co-design workload: structure data, geometry, the SE(3) x residue-type
generator, the IPA network and sampling. Built on :mod:`multiflow_gm.core`."""
