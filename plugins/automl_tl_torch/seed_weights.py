"""``python -m automl_tl_torch.seed_weights``: put offline-shipped weights into torch hub's cache."""

from __future__ import annotations

from .weights import seed_offline_weights


def main() -> None:
    for line in seed_offline_weights():
        print(f"weights: {line}")


if __name__ == "__main__":
    main()
