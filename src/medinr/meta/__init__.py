"""Initialisations that fitting starts from: a reproducible random init, or a meta-learned one per modality.

- :mod:`~medinr.meta.inits`: named, content-hashed inits; installed per-scale meta-learned init files.
- :mod:`~medinr.meta.tasks`: tasks (whole slices and crops, support/query pixel sets) from training images.
- :mod:`~medinr.meta.algorithms`: meta-gradients of MAML, first-order MAML, Reptile and Meta-SGD.
- :mod:`~medinr.meta.train`: ``meta_train(modality, paths, output, ...)``, what ``medinr meta-train`` runs.
- :mod:`~medinr.meta.evaluate`: PSNR after N codec fitting steps, steps to a reference, the ablation.
- :mod:`~medinr.meta.ship`: the recipes and command that rebuild the shipped inits.
- :mod:`~medinr.meta.film`: FiLM conditioning of the init on the hybrid features (measured; off in the codec).
"""
