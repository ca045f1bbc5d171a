"""Analysis of latent spaces and generators, as a library: the studies call it, notebooks can too.

- ``projections``: PCA, LDA, t-SNE and UMAP of codes, and the label silhouette that scores them;
- ``clustering``: k-means, DBSCAN and HDBSCAN on codes, scored against the labels; outliers;
- ``probes``: linear probes (logistic regression, linear SVM) and their pixel / PCA baselines;
- ``reconstruction``: reconstruction errors per digit, and the worst, best and random images;
- ``interpolation``: paths between two digits in pixel and latent space, and what the judge
  reads along them;
- ``selection``: the best setting of a generator from its scores (the balance of quality and
  novelty).
"""
