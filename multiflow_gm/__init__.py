"""multiflow-gm: Generator Matching on flows, diffusions, jumps and CTMCs.

Layers, with dependencies pointing one way: ``cli -> training -> workloads
(protein, images, evaluation) -> core``. The core knows nothing about proteins
or images.
"""

__version__ = "0.1.0"
