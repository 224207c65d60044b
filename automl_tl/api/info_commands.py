"""``backbones``, ``plugins`` and ``sample-data``: what is installed, and the bundled sample."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from automl_tl.api.common import command_plugins, console
from automl_tl.runtime.shown_text import console_text


def cmd_backbones(args: argparse.Namespace) -> int:
    plugins = command_plugins(args)
    rows = []
    for name in plugins.backbones.names(args.pattern):
        spec = plugins.backbone(name)
        if args.framework and spec.framework != args.framework:
            continue
        rows.append({"name": name, "framework": spec.framework, "blocks": len(spec.blocks), "feature_dim": spec.feature_dim,
                     "pretrained": spec.pretrained, "weights_available": spec.weights_available() if spec.pretrained else None,
                     "weights": spec.weights.source if spec.weights else "none (trained from scratch)",
                     "plugin": plugins.backbones.owner(name)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="Backbones")
    for column in ("name", "framework", "blocks", "features", "weights here", "weights", "plugin"):
        table.add_column(column)
    for row in rows:
        here = "from scratch" if not row["pretrained"] else ("[green]yes[/]" if row["weights_available"] else "[red]no[/]")
        table.add_row(console_text(str(row["name"])), console_text(str(row["framework"])), str(row["blocks"]), str(row["feature_dim"]),
                      here, console_text(str(row["weights"])), console_text(str(row["plugin"])))
    console.print(table)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from automl_tl.plugin.manager import plugin_rows

    rows = plugin_rows(command_plugins(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="Plugins")
    for column in ("name", "source", "frameworks", "backbones", "datasets"):
        table.add_column(column)
    for row in rows:
        source = f"[red]failed: {console_text(row['error'])}[/]" if row.get("error") else console_text(row["source"])
        backbones = f"{len(row['backbones'])}: " + ", ".join(row["backbones"][:4]) if row["backbones"] else ""
        table.add_row(console_text(row["name"]), source, console_text(", ".join(row["frameworks"])), console_text(backbones),
                      console_text(", ".join(row["datasets"])))
    console.print(table)
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    from automl_tl.data.sample import default_sample_dir, write_sample

    target = Path(args.directory).expanduser().resolve() if args.directory else default_sample_dir()
    path = write_sample(target)
    console.print(f"Sample data set (Animal-MNIST, 10 classes) is in {console_text(str(path))}")
    return 0


# -- parser ---------------------------------------------------------------------------------
