"""SE(3)-equivariant network for co-design: IPA trunk, node/edge embeddings, heads."""
