"""``export``, ``predict`` and ``evaluate``: the chosen model out of the study, and what it says about images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.markup import escape

from automl_tl.cli.common import command_plugins, console, data_location, err_console, load_study, read_images, resolved
from automl_tl.cli.plugin_files import check_study_backbones
from automl_tl.errors import UserError


def cmd_export(args: argparse.Namespace) -> int:
    from automl_tl.deploy.export import choose_trial, export_trial, fetch_remote_artifacts
    from automl_tl.storage.artifacts import study_artifact_places

    study = load_study(args.name, args.storage)
    local, remote = study_artifact_places(study, args.artifacts)
    plugins = command_plugins(args)
    out_dir = resolved(args.output)
    number = choose_trial(study, args.trial)
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    for line in check_study_backbones(plugins, study.user_attrs, [trial.params.get("backbone", "")], args.plugin or []):
        err_console.print(f"[yellow]warning[/] {escape(line)}", highlight=False)
    if remote:
        with console.status(f"Downloading trial {number}'s artifacts from {escape(remote)} ..."):
            fetch_remote_artifacts(remote, local, number)
    report = export_trial(plugins, study, local, args.format, out_dir, number, overwrite=args.overwrite)
    console.print(f"Exported trial {report.trial} of {args.name!r} as {args.format} to [bold]{escape(str(report.directory))}[/]")
    console.print(f"Parity check on {report.images_checked} validation images: largest probability difference "
                  f"{report.max_difference:.2e}, same classes: {'yes' if report.same_classes else 'no'}")
    console.print(f"Predict with: automl-tl predict {escape(str(report.directory))} IMAGE_OR_FOLDER [--top 3] [--json]", highlight=False)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from automl_tl.deploy.predict import image_paths, load_export, predict_files

    if args.top < 1:
        raise UserError(f"--top {args.top}: give how many of the most likely classes to show for each image (at least 1).")
    plugins = command_plugins(args)
    loaded = load_export(plugins, Path(args.model_dir), trusted=args.trust_model)
    results = predict_files(loaded, image_paths(args.paths), top=args.top)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for result in results:
        if "error" in result:
            console.print(f"{escape(result['path'])}: [red]unreadable[/] ({escape(str(result['error']))})", highlight=False)
        else:
            tops = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in result["top"])
            console.print(f"{escape(result['path'])}: {escape(tops)}", highlight=False)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from automl_tl.deploy.evaluate import evaluate_export
    from automl_tl.deploy.predict import load_export

    plugins = command_plugins(args)
    loaded = load_export(plugins, Path(args.model_dir), trusted=args.trust_model)
    location = data_location(args.data)
    table = read_images(plugins.discover(location), loaded.preprocessing.image_size, loaded.preprocessing.rule,
                        skipped_note="They are not counted.")
    result = evaluate_export(loaded, table, args.split)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        console.print(f"{args.split} split: {result['images']} images, accuracy {result['accuracy']:.4f}, "
                      f"balanced accuracy {result['balanced_accuracy']:.4f}")
    return 0
