"""A plugin's warning reaches a CLI user as one readable line, not Python's warning format."""

from __future__ import annotations

from automl_tl.cli import main


def test_an_undecorated_hook_in_a_plugin_file_is_one_warning_line(tmp_path, capsys):
    plugin = tmp_path / "forgot_decorator.py"
    plugin.write_text("def register_backbones(register):\n    pass\n")
    assert main(["plugins", "--plugin", str(plugin)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert any(line.startswith("warning ") for line in lines), err
    joined = " ".join(err.split())
    assert "register_backbones" in joined and "@hookimpl" in joined
    assert "warnings.warn(" not in err and "PluginWarning:" not in err  # no file:line: category: source-line format
