"""Initialisations that fitting starts from: a reproducible random init, or a meta-learned one per modality."""
