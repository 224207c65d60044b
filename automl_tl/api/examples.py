"""The example command lines that ``automl-tl --help`` and each ``automl-tl COMMAND --help`` end with.

A test parses every line with the real parser, so an example cannot name an option that is gone.
"""

from __future__ import annotations

import argparse

TOP_LEVEL = ""
"""The key of the examples shown by ``automl-tl --help`` itself."""

# command -> (command line, what it does); the command line is parsed by tests/cli/test_help_examples.py.
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    TOP_LEVEL: (
        ("automl-tl search ~/flower_photos --timeout 300", "search your folder for 5 minutes"),
        ("automl-tl show flower_photos", "the study: best trial, leaderboard"),
        ("automl-tl export flower_photos --format onnx -o model/", "the best trial, parity-checked"),
        ("automl-tl predict model/ photo.jpg", "the top classes of one image"),
    ),
    "search": (
        ("automl-tl search ~/flower_photos --timeout 300", "5 minutes; study \"flower_photos\""),
        ("automl-tl search ~/flower_photos --trials 50 --backbones 'mobilenet*,resnet18'", "50 trials, two families"),
        ("automl-tl search pets.csv --study pets --cv 5 --max-latency-ms 20", "a CSV manifest, 5 folds, fast models"),
        ("automl-tl search --study demo --trials 4 --epochs 2", "no DATA: the bundled sample (said first)"),
    ),
    "worker": (
        ("automl-tl worker --study flowers --data /mnt/flowers", "storage from AUTOML_TL_STORAGE"),
        ("automl-tl worker --study flowers --timeout 3600 --lines", "one hour, one line per trial"),
    ),
    "show": (
        ("automl-tl show flower_photos", "counts, best trial, leaderboard"),
        ("automl-tl show flower_photos --json", "the same as JSON"),
        ("automl-tl show flower_photos --plot pareto.png", "also draw accuracy against latency"),
    ),
    "studies": (
        ("automl-tl studies", "the studies in ./studies"),
        ("automl-tl studies --storage postgresql://me@db/automl --json", "a shared database's, as JSON"),
    ),
    "export": (
        ("automl-tl export flower_photos --format onnx -o model/", "the best trial"),
        ("automl-tl export flower_photos --format onnx --quantize int8 -o model-int8/", "int8, accuracy checked"),
        ("automl-tl export flower_photos --format onnx --ensemble auto -o ensemble/", "several trials averaged"),
        ("automl-tl export flower_photos --format tflite --max-latency-ms 10 -o phone/", "the best within 10 ms"),
    ),
    "predict": (
        ("automl-tl predict model/ photo.jpg", "the top 3 classes of one image"),
        ("automl-tl predict model/ ~/new_photos/ --top 1 --json", "every image of a folder, as JSON"),
    ),
    "evaluate": (
        ("automl-tl evaluate model/ ~/flower_photos", "accuracy on the study's test split"),
        ("automl-tl evaluate model/ ~/other_photos --split all --json", "every image of a new folder"),
    ),
    "report": (
        ("automl-tl report flower_photos -o flowers.html", "one self-contained HTML file"),
        ("automl-tl report flower_photos --data /new/place/flower_photos", "the data moved since the search"),
    ),
    "backbones": (
        ("automl-tl backbones", "every backbone, and whether its weights are here"),
        ("automl-tl backbones 'efficientnet*' --framework torch --json", "some, as JSON"),
    ),
    "plugins": (
        ("automl-tl plugins", "the installed plugins and what they add"),
        ("automl-tl plugins --plugin my_backbones.py", "with a plugin file of yours"),
    ),
    "sample-data": (
        ("automl-tl sample-data", "the sample, where a search without DATA reads it"),
        ("automl-tl sample-data ~/animal_mnist", "the sample, in a folder of your choice"),
    ),
    "audit": (
        ("automl-tl audit ~/flower_photos", "duplicates, leaks, small and unreadable images, imbalance"),
        ("automl-tl audit ~/flower_photos --image-size 224 --json", "the same against 224 px, as JSON"),
        ("automl-tl audit --labels flower_photos", "likely label errors of a cross-validated study"),
    ),
    "cache": (
        ("automl-tl cache", "where the caches are and their size"),
        ("automl-tl cache --clear", "delete their entries (made again when needed)"),
    ),
}


def examples_epilog(command: str) -> str | None:
    """The "Examples:" section of ``command``'s help (``TOP_LEVEL``: the program's); None when it has none."""
    lines = EXAMPLES.get(command)
    if not lines:
        return None
    return "Examples:\n" + "\n".join(f"  # {what}\n  {line}" for line, what in lines)


def add_examples(parser: argparse.ArgumentParser, command: str) -> None:
    """End ``parser``'s help with ``command``'s examples, their lines kept as written."""
    epilog = examples_epilog(command)
    if epilog is not None:
        parser.epilog = epilog
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
