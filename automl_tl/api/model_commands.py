"""``export``, ``predict`` and ``evaluate``: the chosen model out of the study, and what it says about images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from automl_tl.api.common import command_plugins, console, err_console, load_study
from automl_tl.api.plugin_files import check_study_backbones
from automl_tl.errors import UserError
from automl_tl.runtime.owned_files import output_path
from automl_tl.runtime.shown_text import console_text


def cmd_export(args: argparse.Namespace) -> int:
    from automl_tl.deploy.export import check_format_offered, choose_trial, export_trial, fetch_remote_artifacts
    from automl_tl.deploy.export_folder import check_replaceable
    from automl_tl.deploy.flip import check_flip_mode
    from automl_tl.storage.artifacts import study_artifact_places

    check_quantize_flags(args)
    check_flip_mode(args.flip)
    plugins = command_plugins(args)
    check_format_offered(plugins, args.format)  # before the study is read
    study = load_study(args.name, args.storage)
    local, remote = study_artifact_places(study, args.artifacts)
    out_dir = output_path(args.output)  # a link named by -o is refused, not followed
    check_replaceable(out_dir, args.overwrite)  # before any model is loaded; checked again before it is written
    quantize = quantize_request(args, study, plugins)
    if args.ensemble is not None:
        if args.trial is not None:
            raise UserError("--trial and --ensemble: give one. --trial exports that trial alone; --ensemble selects "
                            "several trials and exports their average.")
        return export_ensemble_command(args, study, plugins, local, remote, out_dir, quantize)
    if args.max_latency_ms is not None:
        if args.trial is not None:
            raise UserError("--trial and --max-latency-ms: give one. --trial exports that trial whatever its latency; "
                            "--max-latency-ms picks the most accurate trial within the limit.")
        args.trial = trial_within_latency(study, args.max_latency_ms)
    number = choose_trial(study, args.trial)
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    for line in check_study_backbones(plugins, study.user_attrs, [trial.params.get("backbone", "")], args.plugin or []):
        err_console.print(f"[yellow]warning[/] {console_text(line)}", highlight=False)
    if remote:
        with console.status(f"Downloading trial {number}'s artifacts from {console_text(remote)} ..."):
            fetch_remote_artifacts(remote, local, number)
    report = export_trial(plugins, study, local, args.format, out_dir, number, overwrite=args.overwrite,
                          quantize=quantize, flip=args.flip, max_latency_ms=args.max_latency_ms)
    console.print(f"Exported trial {report.trial} of {args.name!r} as {args.format} to [bold]{console_text(str(report.directory))}[/]")
    print_export_report(report)
    return 0


def trial_within_latency(study: Any, limit_ms: float) -> int:
    """``export --max-latency-ms``: the most accurate completed trial within the limit, said with why."""
    from automl_tl.tuning.latency import fastest_accurate

    check_latency_limit(limit_ms)
    chosen, why = fastest_accurate(study.get_trials(deepcopy=False), limit_ms)
    if chosen is None:
        raise UserError(f"--max-latency-ms {limit_ms:g}: {why}. Raise the limit, or search for faster architectures "
                        f"with `automl-tl search --max-latency-ms {limit_ms:g}`; nothing was written.")
    console.print(f"Chosen by --max-latency-ms: {console_text(why)}", highlight=False)
    return int(chosen.number)


def check_latency_limit(limit_ms: float) -> None:
    if not (limit_ms > 0 and limit_ms < float("inf")):
        raise UserError(f"--max-latency-ms {limit_ms:g}: give a positive number of milliseconds.")


def export_ensemble_command(args: argparse.Namespace, study: Any, plugins: Any, local: Path, remote: str | None,
                            out_dir: Path, quantize: Any = None) -> int:
    """``export --ensemble``: select, say what was selected and why, export one model."""
    from automl_tl.deploy.ensemble_export import export_ensemble
    from automl_tl.deploy.export import fetch_remote_artifacts
    from automl_tl.tuning.budget import ranked_trials
    from automl_tl.tuning.ensemble import LIBRARY_SIZE, decision_text

    ranked = ranked_trials(study)[:LIBRARY_SIZE]
    backbones = sorted({str(t.params.get("backbone", "")) for t in ranked})
    for line in check_study_backbones(plugins, study.user_attrs, backbones, args.plugin or []):
        err_console.print(f"[yellow]warning[/] {console_text(line)}", highlight=False)
    if remote:
        with console.status(f"Downloading the best {len(ranked)} trials' artifacts from {console_text(remote)} ..."):
            for trial in ranked:
                fetch_remote_artifacts(remote, local, trial.number)
    if args.max_latency_ms is not None:
        check_latency_limit(args.max_latency_ms)
    with console.status("Selecting the ensemble and building its graph ..."):
        report, ensemble = export_ensemble(plugins, study, local, args.format, out_dir, args.ensemble, args.overwrite,
                                           max_latency_ms=args.max_latency_ms, quantize=quantize, flip=args.flip)
    single = f"trial {ensemble.best_single} alone: score {ensemble.best_single_val_accuracy:.4f}"
    proposed = ensemble.proposed or ensemble
    if proposed.size == 1:
        console.print(f"Ensemble selection kept {single} (no other trial improved it), so it is exported as a single model.")
    else:
        console.print(f"Ensemble of {console_text(proposed.describe())}: score [bold]{proposed.val_accuracy:.4f}[/] against "
                      f"the best {single} (on the rows that selected it).")
    console.print(console_text(decision_text(ensemble, args.ensemble)), highlight=False)
    if args.max_latency_ms is not None:
        console.print(f"Within --max-latency-ms {args.max_latency_ms:g}: only trials measured within it took part, and the "
                      f"members' batch-1 latencies sum to {ensemble.latency_bound_ms:.2f} ms at most (their shared "
                      f"pretrained prefix runs once, so the ensemble is faster than that).", highlight=False)
    console.print(f"Exported it as {args.format} to [bold]{console_text(str(report.directory))}[/]")
    print_export_report(report)
    return 0


def print_export_report(report: Any) -> None:
    console.print(f"Parity check on {report.images_checked} validation images: largest probability difference "
                  f"{report.max_difference:.2e}, same classes: {'yes' if report.same_classes else 'no'}")
    if report.quantized is not None:
        print_quantize_report(report.quantized)
    if report.flip is not None:
        from automl_tl.deploy.flip import describe

        console.print(console_text(describe(report.flip)), highlight=False)
    console.print(f"Predict with: automl-tl predict {console_text(report.directory)} IMAGE_OR_FOLDER [--top 3] [--json]",
                  highlight=False)


def check_quantize_flags(args: argparse.Namespace) -> None:
    """Options that only ``--quantize`` uses are refused without it, and its limit is checked, before the
    study is even opened; a missing ``--max-accuracy-drop`` becomes its default."""
    from automl_tl.deploy.quantize import DEFAULT_MAX_ACCURACY_DROP, check_quantize_options

    if args.quantize is None:
        if args.data is not None:
            raise UserError(f"--data {args.data}: export reads the data only to calibrate and check a quantized model; "
                            f"add --quantize int8, or leave --data out.")
        if args.max_accuracy_drop is not None:
            raise UserError(f"--max-accuracy-drop {args.max_accuracy_drop:g}: this limit applies only to a quantized "
                            f"export; add --quantize int8, or leave it out. Nothing was written.")
        return
    if args.max_accuracy_drop is None:
        args.max_accuracy_drop = DEFAULT_MAX_ACCURACY_DROP
    check_quantize_options(args.quantize, args.max_accuracy_drop)


def quantize_request(args: argparse.Namespace, study: Any, plugins: Any) -> Any:
    """``--quantize``'s request (None without it); ``check_quantize_flags`` has checked its options."""
    from automl_tl.deploy.quantize import QuantizeRequest, check_format_quantizable, study_images

    if args.quantize is None:
        return None
    check_format_quantizable(plugins, args.format)
    return QuantizeRequest(args.quantize, args.max_accuracy_drop,
                           study_images(plugins, study.study_name, study.user_attrs, args.data))


def print_quantize_report(quantized: Any) -> None:
    """The quantized model against the float one: size, batch-1 CPU latency, validation accuracy."""
    before, after = quantized.float_model, quantized.quantized_model
    for line in quantized.warnings:
        err_console.print(f"[yellow]warning[/] {console_text(line)}", highlight=False)
    console.print(f"Quantized to {quantized.scheme} (calibrated on {quantized.calibration_images} training images); "
                  f"the float export passed the parity check above. Float -> {quantized.scheme}:")
    console.print(f"  size            {before.size_mb:8.2f} MB -> {after.size_mb:8.2f} MB "
                  f"({before.size_mb / max(after.size_mb, 1e-9):.1f}x smaller)", highlight=False)
    console.print(f"  batch-1 latency {before.batch_1_ms:8.2f} ms -> {after.batch_1_ms:8.2f} ms "
                  f"({before.batch_1_ms / max(after.batch_1_ms, 1e-9):.2f}x faster on this CPU)", highlight=False)
    console.print(f"  val accuracy    {before.val_accuracy:8.4f}    -> {after.val_accuracy:8.4f}    "
                  f"({-quantized.accuracy_drop:+.2f} points, at most {quantized.max_accuracy_drop:g} may be lost; same class on "
                  f"{quantized.agreement:.1%} of {quantized.validation_images} validation images)", highlight=False)


def cmd_predict(args: argparse.Namespace) -> int:
    from automl_tl.api.model import load_model

    if args.top < 1:
        raise UserError(f"--top {args.top}: give how many of the most likely classes to show for each image (at least 1).")
    model = load_model(args.model_dir, trust=args.trust_model, plugin=args.plugin or [])
    results = model.predict(list(args.paths), top=args.top)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            if "error" in result:
                console.print(f"{console_text(result['path'])}: [red]unreadable[/] ({console_text(result['error'])})",
                              highlight=False)
            else:
                tops = ", ".join(f"{console_text(t['label'])} {t['probability']:.3f}" for t in result["top"])
                console.print(f"{console_text(result['path'])}: {tops}", highlight=False)
                if "note" in result:
                    console.print(f"  [yellow]note[/] {console_text(result['note'])}", highlight=False)
    failed = sum("error" in result for result in results)
    if failed:  # the good files' predictions are printed above; exit 2 lets a script notice the rest
        where = 'each has an "error" with the reason in the JSON' if args.json else "marked unreadable above, with the reason"
        err_console.print(f"[bold red]Error:[/] {failed} of {len(results)} file(s) could not be classified ({where}); "
                          f"the others were. Replace or remove those files and run the command again.", highlight=False)
        return 2
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from automl_tl.api.model import load_model

    model = load_model(args.model_dir, trust=args.trust_model, plugin=args.plugin or [])
    result = model.evaluate(args.data, args.split)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        console.print(f"{args.split} split: {result['images']} images, accuracy {result['accuracy']:.4f}, "
                      f"balanced accuracy {result['balanced_accuracy']:.4f}"
                      + (" (averaged over each image and its mirror)" if result["flip_averaged"] else ""))
    return 0
