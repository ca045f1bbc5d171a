"""Analysis of latent spaces and generators, as a library: the studies call it, notebooks can too.

- ``latent_space``: projections (PCA, LDA, t-SNE, UMAP), clustering, linear probes,
  reconstruction errors and error examples;
- ``interpolation``: paths between two digits in pixel and latent space, and what the judge
  reads along them.
"""
