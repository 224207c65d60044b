"""The Optuna search: its space, pruning, smart start, fingerprint, the study lifecycle and the trial runner."""
