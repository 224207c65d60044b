"""Storage URLs never show their password, however malformed: in --storage, in AUTOML_TL_STORAGE,
in what automl-tl says about them and in the database driver's own messages."""

from __future__ import annotations

import pytest

from automl_tl.cli import main
from automl_tl.storage.urls import STORAGE_ENV, redact, scrub
from tests.conftest import STUB_PLUGIN

STUB = ["--plugin", STUB_PLUGIN, "--framework", "stub", "--epochs", "1", "--image-size", "16", "--no-smart-start"]

# (URL, every piece of its password that must never be shown). 127.0.0.1:1 refuses at once.
MALFORMED = [
    ("postgresql:/u:SECRET@127.0.0.1:1/db", ["SECRET"]),  # one slash: SQLAlchemy cannot parse it
    ("postgresql//u:SECRET@127.0.0.1:1/db", ["SECRET"]),  # no colon after the scheme
    ("postgresql://u:SE@CRET@127.0.0.1:1/db", ["SE@CRET", "SE", "CRET"]),  # SQLAlchemy takes "SE", the host "CRET@..."
    ("postgresql://u:Qx7:Zr9@Wp4@127.0.0.1:1/db", ["Qx7", "Zr9", "Wp4"]),
]

COMMANDS = {
    "show": lambda data: ["show", "x"],
    "studies": lambda data: ["studies"],
    "worker": lambda data: ["worker", "--study", "x"],
    "search": lambda data: ["search", str(data), "--study", "x", "--trials", "1", *STUB],
    "search --workers 2": lambda data: ["search", str(data), "--study", "x", "--trials", "1", "--workers", "2", *STUB],
}


@pytest.mark.parametrize("url, pieces", MALFORMED, ids=[url for url, _ in MALFORMED])
@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("through", ["--storage", STORAGE_ENV])
def test_no_command_shows_any_piece_of_a_malformed_urls_password(capsys, monkeypatch, small_sample, url, pieces,
                                                                 command, through):
    argv = COMMANDS[command](small_sample)
    if through == "--storage":
        argv += ["--storage", url]
    else:
        monkeypatch.setenv(STORAGE_ENV, url)
    code = main(argv)
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert code == 2, shown
    for piece in pieces:
        assert piece not in shown, f"{piece!r} leaked: {shown}"
    assert "Traceback" not in shown and "Error:" in captured.err


@pytest.mark.parametrize("url, expected", [
    ("postgresql:/u:SECRET@host/db", "postgresql:/u:***@host/db"),
    ("postgresql//u:SECRET@host/db", "postgresql//u:***@host/db"),
    ("postgresql://u:SE@CRET@host/db", "postgresql://u:***@host/db"),
    ("postgresql://u:Qx7:Zr9@Wp4@host:5432/db", "postgresql://u:***@host:5432/db"),
    ("postgresql:u:SECRET@host/db", "postgresql:u:***@host/db"),
    ("u:SECRET@host/db", "u:***@host/db"),  # no scheme at all: "u" may be a scheme or the user name
    ("postgresql://me@corp:SECRET@host/db", "postgresql://me@corp:***@host/db"),  # the LAST '@' ends it
    ("postgresql://u:pw-Zq8#nev?er/own@host/db", "postgresql://u:***@host/db"),
    ("postgresql://[::1/db:SECRET@x", "postgresql://[:***@x"),  # urlsplit refuses this one
])
def test_redact_hides_everything_between_the_user_name_and_the_last_at(url, expected):
    assert redact(url) == expected


@pytest.mark.parametrize("url, pieces", [
    ("postgresql://host:5432/db?password=SE@CRET", ["SE", "CRET"]),
    ("postgresql://u@host/db?sslmode=require&PASSWORD=SE@CRET&x=1", ["SE", "CRET"]),
    ("postgresql://u:SECRET@host/db?password=Qx7@Wp4", ["SECRET", "Qx7", "Wp4"]),
])
def test_redact_hides_password_query_values_even_with_an_at_in_them(url, pieces):
    shown = redact(url)
    assert "***" in shown and shown.startswith("postgresql://")
    for piece in pieces:
        assert piece not in shown, shown


def test_redact_keeps_what_is_not_a_credential():
    assert redact("postgresql://ann@db:5432/s") == "postgresql://ann@db:5432/s"
    assert redact("postgresql://ann:@db/s") == "postgresql://ann:@db/s"
    assert redact("sqlite:////home/ann@corp/studies/x.db") == "sqlite:////home/ann@corp/studies/x.db"
    assert redact("postgresql://u@host/db?sslmode=require") == "postgresql://u@host/db?sslmode=require"


def test_scrub_removes_each_piece_a_driver_may_have_taken_for_the_password():
    url = "postgresql://u:SE@CRET@host/db"
    message = "failed to resolve host 'CRET@host'; password 'SE' rejected; raw SE@CRET"
    scrubbed = scrub(message, url)
    assert "CRET" not in scrubbed and "SE" not in scrubbed
    assert "failed to resolve host" in scrubbed and "@host" in scrubbed
    colons = scrub("user u, password Qx7, host Wp4@host", "postgresql://u:Qx7:Zr9@Wp4@host/db")
    assert "Qx7" not in colons and "Wp4" not in colons
    unparsable = scrub("could not parse SECRET", "postgresql:/u:SECRET@host/db")
    assert "SECRET" not in unparsable
    # a one-character piece is no secret worth mangling every message for
    assert scrub("a cat sat on a mat", "postgresql://u:a@LONGER@host/db") == "a cat sat on a mat"
    assert "LONGER" not in scrub("host LONGER@host", "postgresql://u:a@LONGER@host/db")


def test_a_password_typed_without_its_at_sign_is_still_redacted():
    """'u:pw' with the '@' forgotten: a host's port would be a number, so the rest is taken for a password."""
    from automl_tl.storage.urls import redact

    assert "Sup3r" not in redact("redis://u:Sup3rS3cretPw127.0.0.1/db#frag")
    assert "Sup3r" not in redact("redis://u:Sup3rS3cretPw127.0.0.1:1/")
    assert "Sup3r" not in redact("://u:Sup3rS3cretPw/")  # no scheme at all
    assert "Sup3r" not in redact("u:Sup3rS3cretPw[::1]:1")  # no '//': "u" is the user
    assert redact("postgresql://db.example:5432/s") == "postgresql://db.example:5432/s"
    assert redact("postgresql://[::1]/s") == "postgresql://[::1]/s"
