"""The argument parser: every command, its options and their help."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from automl_tl import __version__
from automl_tl.api.audit_commands import cmd_audit
from automl_tl.api.cache_commands import cmd_cache
from automl_tl.api.examples import TOP_LEVEL, add_examples
from automl_tl.api.info_commands import cmd_backbones, cmd_plugins, cmd_sample_data
from automl_tl.api.model_commands import cmd_evaluate, cmd_export, cmd_predict
from automl_tl.api.search_commands import DEFAULT_TRIALS, cmd_search, cmd_worker
from automl_tl.api.study_commands import cmd_report, cmd_show, cmd_studies
from automl_tl.runtime.shown_text import printable
from automl_tl.storage.urls import DEFAULT_HEARTBEAT_S
from automl_tl.tuning.pruner_names import DEFAULT_PRUNER, PRUNERS

DEFAULT_EPOCHS = "auto"
DEFAULT_IMAGE_SIZE = "auto"


def word_or_number(option: str, words: tuple[str, ...], number: Callable[[str], int | float],
                   wanted: str) -> Callable[[str], str | int | float]:
    """An argparse type: one of ``words`` (any case) or a ``number`` (the command checks the range)."""

    def parse(text: str) -> str | int | float:
        if text.strip().lower() in words:
            return text.strip().lower()
        try:
            return number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give {wanted} for {option}") from None

    return parse


def auto_or_int(option: str) -> Callable[[str], str | int | float]:
    """``auto`` or a whole number."""
    return word_or_number(option, ("auto",), int, "auto or a whole number")


def auto_or_off_or_int(option: str) -> Callable[[str], str | int | float]:
    """``auto``, ``off`` or a whole number."""
    return word_or_number(option, ("auto", "off"), int, "auto, off or a whole number")


def ms_or_off(option: str) -> Callable[[str], str | int | float]:
    """``off`` or a number of milliseconds."""
    return word_or_number(option, ("off",), float, "a number of milliseconds or off")


def _add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", metavar="FILE.py", help="load a single-file plugin (repeatable)")


def _add_overwrite_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help=f"also replace an existing file that automl-tl did not write; {what} it wrote earlier is "
                             f"replaced without asking, and a link, device, FIFO or socket never")


def _add_trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-model", action="store_true",
                        help="also load formats that can run code when loaded (torchscript, savedmodel): only for an "
                             "export you made yourself or whose maker you trust")


def _add_test_per_trial_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--test-per-trial", action="store_true",
                        help="also show every trial's test accuracy. By default only the chosen model's (the best by "
                             "validation accuracy) is shown: choosing among trials by test accuracy would make it an "
                             "optimistic estimate")


class ShownErrorsParser(argparse.ArgumentParser):
    """argparse's parser, but a usage error shows the words it quotes (an unknown argument, a file name)
    with their control characters escaped; its sub-command parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        """Print the usage and the escaped message, then exit 2, as argparse does."""
        super().error(printable(message))


def _add_search_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``search``: run or resume a study."""
    from automl_tl.types import RESIZE_MODES

    search = sub.add_parser("search", help="run or resume a study")
    search.add_argument("data", nargs="?", metavar="DATA",
                        help="folder with one sub-folder per class, or a CSV manifest (default: the bundled sample)")
    search.add_argument("--trials", type=int, default=None,
                        help=f"the study's total of finished trials (default {DEFAULT_TRIALS}; with --timeout alone: no "
                             f"count, trials until the time is used)")
    search.add_argument("--study", help="study name (default: the data folder's name)")
    search.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: sqlite:///studies/NAME.db)")
    search.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX",
                        help="where trial weights are kept: a (shared) folder, or an S3-compatible bucket (default: studies/)")
    search.add_argument("--framework", default="torch", help="torch, keras or all (default %(default)s)")
    search.add_argument("--backbones", metavar="PATTERNS", help="comma-separated name patterns, e.g. 'mobilenet*,resnet18'")
    search.add_argument("--epochs", type=auto_or_int("--epochs"), default=DEFAULT_EPOCHS, metavar="auto|N",
                        help="the most epochs a trial trains, both phases together; auto: from 4 (large data) to 12 "
                             "(small data), and the pruner stops trials that do not earn them (default %(default)s)")
    search.add_argument("--image-size", type=auto_or_int("--image-size"), default=DEFAULT_IMAGE_SIZE, metavar="auto|PX",
                        help="square input size in pixels, or auto: from the images' typical size, the backbones' "
                             "native size and --timeout (default %(default)s)")
    search.add_argument("--resize", choices=RESIZE_MODES, default=None, dest="resize_given",
                        help="how images become squares: crop (keep the aspect ratio, centre crop; default), pad "
                             "(keep it, pad with white) or stretch")
    search.add_argument("--timeout", type=float, metavar="SEC",
                        help="return within this many seconds of the command's start, decoding and caching included (plus "
                             "a margin of a few seconds to stop a batch and save the running trial's best epoch)")
    search.add_argument("--seed", type=int, default=0, help="sampler and training seed (default %(default)s)")
    search.add_argument("--pruner", default=DEFAULT_PRUNER, choices=list(PRUNERS),
                        help="halving: successive halving over training seconds, with a rung at the phase switch and, "
                             "under --cv, after fold 1; median and hyperband judge by epochs (default %(default)s)")
    search.add_argument("--truncation", action=argparse.BooleanOptionalAction, default=True,
                        help="search the cut point: the head may read earlier blocks' features (default on)")
    search.add_argument("--smart-start", action=argparse.BooleanOptionalAction, default=True,
                        help="start a new study with trials chosen from a quick profile of the data (default on)")
    search.add_argument("--warm-start", metavar="OTHER_STUDY",
                        help="queue the best 5 distinct recipes of another study first (from --storage, else its own "
                             "database), e.g. the same folder before a class was added; parameters this search cannot "
                             "take are left out, with a note")
    search.add_argument("--max-pixels", type=int, default=40_000_000, help="reject images larger than this many pixels")
    search.add_argument("--workers", type=int, metavar="N",
                        help="start N worker processes on the study (needs PostgreSQL when N > 1); 0 prepares the study for "
                             "workers started elsewhere")
    search.add_argument("--heartbeat", type=int, default=DEFAULT_HEARTBEAT_S, metavar="SEC",
                        help="a new study's heartbeat: a worker silent for 3 heartbeats has its trial retried elsewhere "
                             "(default %(default)s)")
    search.add_argument("--max-latency-ms", type=ms_or_off("--max-latency-ms"), metavar="MS|off",
                        help="only train architectures whose exported model classifies one image within this many "
                             "milliseconds on this machine's CPU (measured once per architecture, cached); a resumed "
                             "study keeps its limit unless another is given, and off lifts it")
    search.add_argument("--cv", type=auto_or_off_or_int("--cv"), default=None, metavar="auto|off|K",
                        help="score trials by K-fold cross-validation over the training and validation images; auto: "
                             "5 folds when the validation split is small (under 300 images), else off (default auto, "
                             "or what the AUTOML_TL_CV environment variable says)")
    search.add_argument("--strict", action="store_true",
                        help="refuse to search when the data audit finds an image in more than one split (a leak)")
    _add_plugin_option(search)
    search.set_defaults(func=cmd_search)


def _add_worker_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``worker``: join a prepared study and run its trials."""
    worker = sub.add_parser("worker", help="join a prepared study and run its trials until the budget is met")
    worker.add_argument("--study", required=True, help="the study's name")
    worker.add_argument("--storage", metavar="URL",
                        help="the study's storage (or set AUTOML_TL_STORAGE, which keeps the password out of the process list)")
    worker.add_argument("--data", metavar="DATA", help="where this machine has the data (default: where the study was created)")
    worker.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX",
                        help="the shared artifacts (default: where the study records them)")
    worker.add_argument("--timeout", type=float, metavar="SEC",
                        help="return within this many seconds of the worker's start, as search --timeout does")
    worker.add_argument("--max-pixels", type=int, help="reject images larger than this many pixels (default: the study's)")
    worker.add_argument("--lines", action="store_true", help="print one line per trial instead of live bars")
    _add_plugin_option(worker)
    worker.set_defaults(func=cmd_worker)


def _add_show_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``show``: summarise a study."""
    show = sub.add_parser("show", help="summarise a study")
    show.add_argument("name")
    show.add_argument("--storage", metavar="URL")
    show.add_argument("--json", action="store_true", help="print the summary as JSON")
    show.add_argument("--plot", metavar="FILE", help="also draw validation accuracy against batch-1 latency, the "
                                                    "Pareto front marked, into FILE (.png, .svg or .pdf; a name "
                                                    "without an extension gets .png)")
    _add_overwrite_option(show, "a plot")
    _add_test_per_trial_option(show)
    show.set_defaults(func=cmd_show)


def _add_studies_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``studies``: list studies."""
    studies = sub.add_parser("studies", help="list studies")
    studies.add_argument("--storage", metavar="URL")
    studies.add_argument("--json", action="store_true")
    studies.set_defaults(func=cmd_studies)


def _add_export_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``export``: export a trained trial, or an ensemble of trials."""
    export = sub.add_parser("export", help="export a trained trial (the best by default)")
    export.add_argument("name")
    export.add_argument("--format", required=True, metavar="FORMAT",
                        help="a format the trial's framework exports: onnx or torchscript (torch); keras, savedmodel or "
                             "tflite (keras); a framework plugin adds its own")
    export.add_argument("-o", "--output", required=True, metavar="DIR")
    export.add_argument("--trial", type=int)
    export.add_argument("--ensemble", type=auto_or_int("--ensemble"), metavar="auto|K",
                        help="export one model averaging several trials, chosen by greedy forward selection with "
                             "replacement on their validation probabilities; K: that many selection rounds")
    export.add_argument("--max-latency-ms", type=float, metavar="MS",
                        help="export the most accurate trial (or ensemble) whose batch-1 CPU latency is within this limit")
    export.add_argument("--quantize", choices=["int8"],
                        help="int8 weights and activations, calibrated on training images (onnx, tflite)")
    export.add_argument("--max-accuracy-drop", type=float, metavar="POINTS",
                        help="with --quantize: refuse a quantized export that loses more than this many points (0 to "
                             "100) of validation accuracy against the float model (default 1)")
    export.add_argument("--data", metavar="DATA",
                        help="with --quantize: the study's data, where it is now if it moved (calibration and the "
                             "accuracy check read it; by default, from where the study recorded it)")
    export.add_argument("--flip", default="auto", metavar="auto|on|off",
                        help="average the exported model over each image and its left-right mirror, inside the graph "
                             "(twice the work per image); auto (default): when that scores better on the study's "
                             "validation predictions and, with --max-latency-ms, still fits the limit")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier automl-tl export in the same folder")
    export.add_argument("--storage", metavar="URL")
    export.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX")
    _add_plugin_option(export)
    export.set_defaults(func=cmd_export)


def _add_predict_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``predict``: classify images with an exported model."""
    predict = sub.add_parser("predict", help="classify images with an exported model")
    predict.add_argument("model_dir", metavar="MODEL_DIR")
    predict.add_argument("paths", nargs="+", metavar="PATH")
    predict.add_argument("--top", type=int, default=3)
    predict.add_argument("--json", action="store_true")
    _add_trust_option(predict)
    _add_plugin_option(predict)
    predict.set_defaults(func=cmd_predict)


def _add_evaluate_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``evaluate``: accuracy of an exported model on a split of a data set."""
    evaluate = sub.add_parser("evaluate", help="accuracy of an exported model on a split of a data set")
    evaluate.add_argument("model_dir", metavar="MODEL_DIR")
    evaluate.add_argument("data", nargs="?", metavar="DATA")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test", "all"],
                          help="the split to score (default %(default)s); all: every image of DATA, for a folder "
                               "that no search has seen")
    evaluate.add_argument("--json", action="store_true")
    _add_trust_option(evaluate)
    _add_plugin_option(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)


def _add_report_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``report``: a self-contained HTML report of a study."""
    report = sub.add_parser("report", help="write a self-contained HTML report of a study")
    report.add_argument("name")
    report.add_argument("-o", "--output", default="report.html", metavar="FILE.html")
    report.add_argument("--storage", metavar="URL")
    report.add_argument("--artifacts", metavar="DIR|s3://BUCKET/PREFIX")
    report.add_argument("--data", metavar="DATA", help="where the data is now, if it moved since the search")
    _add_overwrite_option(report, "a report")
    _add_test_per_trial_option(report)
    _add_plugin_option(report)
    report.set_defaults(func=cmd_report)


def _add_backbones_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``backbones``: list backbones and whether their weights are here."""
    backbones = sub.add_parser("backbones", help="list backbones and whether their weights are here")
    backbones.add_argument("pattern", nargs="?")
    backbones.add_argument("--framework")
    backbones.add_argument("--json", action="store_true")
    _add_plugin_option(backbones)
    backbones.set_defaults(func=cmd_backbones)


def _add_plugins_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``plugins``: list loaded plugins."""
    plugins = sub.add_parser("plugins", help="list loaded plugins")
    plugins.add_argument("--json", action="store_true")
    _add_plugin_option(plugins)
    plugins.set_defaults(func=cmd_plugins)


def _add_sample_data_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``sample-data``: write the bundled sample as folder-per-class PNGs."""
    sample = sub.add_parser("sample-data", help="write the bundled sample as folder-per-class PNGs")
    sample.add_argument("directory", nargs="?", metavar="DIR")
    sample.set_defaults(func=cmd_sample_data)


def _add_audit_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``audit``: duplicates, leaks, small, oblong and unreadable images, imbalance; or a study's label errors."""
    audit = sub.add_parser("audit", help="check a data set for duplicates, leaks and bad images, or a study for label errors")
    audit.add_argument("data", nargs="?", metavar="DATA", help="folder with one sub-folder per class, or a CSV manifest")
    audit.add_argument("--image-size", type=int, metavar="PX",
                       help="the size the search uses: images under half of it are flagged (default: half the median)")
    audit.add_argument("--json", action="store_true", help="print the findings as JSON")
    audit.add_argument("--labels", metavar="STUDY", help="list the likely label errors of a cross-validated study instead")
    audit.add_argument("--storage", metavar="URL", help="the study's storage (with --labels)")
    audit.add_argument("--max-pixels", type=int, default=40_000_000, help="reject images larger than this many pixels")
    _add_plugin_option(audit)
    audit.set_defaults(func=cmd_audit)


def _add_cache_command(sub: argparse._SubParsersAction[ShownErrorsParser]) -> None:
    """``cache``: where the caches are and their size, or clear them."""
    cache = sub.add_parser("cache", help="where the activation and decoded-image caches are and their size")
    cache.add_argument("--clear", action="store_true",
                       help="delete the caches' entries (only files automl-tl wrote); they are made again when needed")
    cache.add_argument("--json", action="store_true")
    cache.set_defaults(func=cmd_cache)


def build_parser() -> argparse.ArgumentParser:
    """The ``automl-tl`` parser: every sub-command, its options and their help."""
    parser = ShownErrorsParser(prog="automl-tl", description="Search the transfer-learning recipe for an image folder.")
    parser.add_argument("--version", action="version", version=f"automl-tl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (_add_search_command, _add_worker_command, _add_show_command, _add_studies_command,
                        _add_export_command, _add_predict_command, _add_evaluate_command, _add_report_command,
                        _add_backbones_command, _add_plugins_command, _add_sample_data_command, _add_cache_command,
                        _add_audit_command):
        add_command(sub)
    add_examples(parser, TOP_LEVEL)
    for command, command_parser in sub.choices.items():
        add_examples(command_parser, command)
    return parser


# OSErrors that come from the user's machine rather than from a bug: the last-resort net in main().
