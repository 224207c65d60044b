"""A command's options given as Python keywords, turned into what the CLI's parser gives for the same flags.

``automl_tl.search(data, epochs=1, image_size=32, cv="off")`` runs the same code as ``automl-tl search DATA
--epochs 1 --image-size 32 --cv off``: the options are read from the one parser (``api/parser.py``), with its
defaults, its conversions and its choices, so the Python API and the CLI cannot drift apart."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from automl_tl.errors import UserError


def command_parser(command: str) -> argparse.ArgumentParser:
    """The CLI's sub-parser of ``command`` (``search``, ``export`` ...)."""
    from automl_tl.api.parser import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    raise ValueError(f"no command {command!r}")


def option_name(action: argparse.Action) -> str:
    """The keyword of a CLI option: its long flag with underscores (``--image-size`` -> ``image_size``,
    ``-o/--output`` -> ``output``), or a positional argument's name."""
    longs = [flag for flag in action.option_strings if flag.startswith("--") and not flag.startswith("--no-")]
    return longs[0][2:].replace("-", "_") if longs else action.dest


def keyword_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Each keyword a command's ``parser`` takes, with the action that reads it (``--help`` is none)."""
    return {option_name(action): action for action in parser._actions if not isinstance(action, argparse._HelpAction)}


def command_args(command: str, **given: Any) -> argparse.Namespace:
    """The namespace the parser gives for ``automl-tl COMMAND`` with ``given`` (None: the option's default).
    Strings go through the option's own conversion and choices, as if typed; an unknown keyword, a missing
    required one and a bad value are ``UserError`` paragraphs that name the keyword."""
    parser = command_parser(command)
    options = keyword_actions(parser)
    args = argparse.Namespace(command=command, func=parser.get_default("func"))
    for action in options.values():
        setattr(args, action.dest, action.default)
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise UserError(f"{command}(): no option {', '.join(unknown)}. It takes: {', '.join(sorted(options))} (the "
                        f"CLI's flags, with underscores: `automl-tl {command} --help` explains each).")
    for name, value in given.items():
        if value is not None:
            setattr(args, options[name].dest, converted(command, name, options[name], value))
    missing = [name for name, action in options.items() if action.required and given.get(name) is None]
    if missing:
        raise UserError(f"{command}(): give {', '.join(missing)}.")
    args.command_started = time.monotonic()  # --timeout counts from the call, as from a command's start
    return args


def converted(command: str, name: str, action: argparse.Action, value: Any) -> Any:
    """``value`` for the option as the parser would hold it."""
    if action.nargs == 0:  # --flag, --no-flag
        if not isinstance(value, bool):
            raise UserError(f"{command}({name}={value!r}): give True or False.")
        return value if action.const is not False else not value
    if action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction):
        items = [value] if isinstance(value, (str, Path)) else list(value) if isinstance(value, Iterable) else [value]
        return [single(command, name, action, item) for item in items]
    if isinstance(value, (list, tuple)) and name == "backbones":  # a list of patterns: the CLI's comma-separated text
        value = ",".join(str(item) for item in value)
    return single(command, name, action, value)


def single(command: str, name: str, action: argparse.Action, value: Any) -> Any:
    """One value through the option's conversion (as typed on the command line) and its choices."""
    if isinstance(value, bool) and action.type is not None:
        raise UserError(f"{command}({name}={value!r}): give a value, not True or False.")
    text = str(value)
    try:
        result = action.type(text) if callable(action.type) else text
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise UserError(f"{command}({name}={value!r}): {exc}.") from None
    if action.choices is not None and result not in action.choices:
        raise UserError(f"{command}({name}={value!r}): choose one of {', '.join(map(str, action.choices))}.")
    return result
