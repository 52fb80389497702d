"""The terminal: progress on stderr, colour on a terminal only, no raw Keras/TensorFlow lines, shell completion."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from fusec.cli import cli
from fusec.cli.progress import Progress, label
from fusec.cli.style import complete_spec_paths, paint, paint_diagnostic, use_colour
from fusec.keras.tf import keras_warnings, native_logs, reporting_stages, stage

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
_SGR = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: A stderr line fusec writes: a diagnostic, a note, or a progress line of the command.
_OWN = re.compile(r"^(error|warning|note): |^\S+: (error|warning|note): |^(compile|fit|export|import): ")


class _Tty(io.StringIO):
    """A terminal that records what was drawn on it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _progress_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress as a user gets it, whatever the suite's environment says (FUSEC_PROGRESS)."""
    monkeypatch.delenv("FUSEC_PROGRESS", raising=False)


@pytest.fixture
def plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "TERM"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("env", "tty", "want"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),  # set but empty: not a request (no-color.org)
        ({"TERM": "dumb"}, True, False),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"CLICOLOR_FORCE": "1"}, False, True),
        ({"FORCE_COLOR": "0"}, False, False),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, True, False),  # NO_COLOR wins
    ],
)
def test_use_colour(
    plain_env: None, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool, want: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = _Tty() if tty else io.StringIO()
    assert use_colour(stream) is want
    painted = paint("error:", "error", stream)
    assert (painted != "error:") is want
    assert _SGR.sub("", painted) == "error:"


def test_paint_unknown_role_and_empty_text(plain_env: None) -> None:
    assert paint("x", "shout", _Tty()) == "x"
    assert paint("", "error", _Tty()) == ""


def test_paint_diagnostic(plain_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    located = "specs/a.json:12:7: error: $.nodes.x: bad (fix it)"
    assert paint_diagnostic(located, io.StringIO()) == located
    monkeypatch.setenv("FORCE_COLOR", "1")
    painted = paint_diagnostic(located)
    assert painted.startswith("\x1b[1mspecs/a.json:12:7\x1b[0m: \x1b[1;31merror:\x1b[0m $.nodes.x")
    assert _SGR.sub("", painted) == located
    bare = "warning: keras: foo: error: bar"
    assert paint_diagnostic(bare) == "\x1b[1;35mwarning:\x1b[0m keras: foo: error: bar"
    assert paint_diagnostic("compiled x -> y") == "compiled x -> y"


def test_complete_spec_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "a.json").write_text("{}")
    (tmp_path / "specs" / "b.txt").write_text("")
    (tmp_path / "specs" / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    values = [item.value for item in complete_spec_paths(None, None, "specs/")]  # type: ignore[arg-type]
    assert values == ["specs/a.json", "specs/sub/"]
    (fallback,) = complete_spec_paths(None, None, "specs/b")  # type: ignore[arg-type]
    assert fallback.type == "file" and fallback.value == "specs/b"


def test_cli_error_lines_have_no_colour_codes_off_a_terminal(
    plain_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    result = CliRunner().invoke(cli, ["compile", str(tmp_path / "missing.json")])
    assert result.exit_code == 1
    assert "\x1b[" not in result.output and "error:" in result.stderr


def test_progress_lines_off_a_terminal() -> None:
    out = io.StringIO()
    with Progress.of("compile", stream=out) as progress:
        assert progress.mode == "lines"
        with progress.stage("checking x.json", announce=False):
            pass  # quick, and where most errors are found: no line
        with (
            progress.stage("exporting m as tflite", announce=False),
            reporting_stages(progress.hook),
            stage("tensorflow"),
        ):
            pass
        with reporting_stages(progress.hook), stage("build", "3 nodes"), stage("savedmodel"):
            pass
    assert out.getvalue().splitlines() == [
        "compile: importing TensorFlow...",
        "compile: exporting m as tflite...",  # resumed after the stage inside it
        "compile: building the Keras model (3 nodes)...",
        "compile: writing the SavedModel...",
    ]


def test_progress_off_with_quiet_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSEC_PROGRESS", "0")
    assert Progress.of("compile", stream=_Tty()).mode == "off"
    monkeypatch.delenv("FUSEC_PROGRESS")
    for progress in (Progress.of("compile", quiet=True, stream=_Tty()), Progress.of("fit", as_json=True)):
        out = io.StringIO()
        progress._stream = out
        with progress, progress.stage("anything"):
            pass
        assert progress.mode == "off" and out.getvalue() == ""


def test_live_line_is_rewritten_and_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TERM", raising=False)
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    with Progress.of("compile") as progress:
        assert progress.mode == "live"
        with progress.stage(label("build", "812 nodes")):
            print("warning: something", file=sys.stderr)  # clears the line first
    drawn = tty.getvalue()
    assert sys.stderr is tty  # restored
    assert drawn.startswith("\r\x1b[Kcompile: building the Keras model (812 nodes)... 0s")
    assert "\r\x1b[Kwarning: something\n" in drawn
    tail = drawn.rsplit("\n", 1)[-1]
    assert tail == "" or tail.endswith("\r\x1b[K")  # nothing left on the line
    assert "\n" not in drawn.replace("warning: something\n", "")


def test_stage_without_hook_does_nothing() -> None:
    with stage("build", "1 node"):
        pass


def test_native_logs_drop_noise_and_replay_the_rest(capfd: pytest.CaptureFixture[str]) -> None:
    with native_logs():
        os.write(2, b"I0000 00:00:1 oneDNN custom operations are on. You may see...\n")
        os.write(2, b"E0000 something real went wrong\n")
    err = capfd.readouterr().err
    assert err == "E0000 something real went wrong\n"


def test_keras_warning_naming_a_node_gets_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fusec.static.check import check_spec

    spec = tmp_path / "m.json"
    spec.write_bytes((SPECS / "residual_add.json").read_bytes())
    checked = check_spec(spec)
    node = next(iter(checked.spec.doc["nodes"]))
    with keras_warnings(checked) as printed:
        warnings.warn(f"Layer '{node}' looks like it has unbuilt state, but Keras is not able to trace", stacklevel=1)
        warnings.warn("Something general\nover two lines", stacklevel=1)
    err = capsys.readouterr().err.splitlines()
    assert err == printed and len(err) == 2
    assert re.match(rf"^{re.escape(str(spec))}:\d+:\d+: warning: \$\.nodes\.{node}: keras: Layer '{node}'", err[0])
    assert err[1] == "warning: keras: Something general over two lines"


def test_completion_bash_script_and_command_names() -> None:
    runner = CliRunner()
    script = runner.invoke(cli, [], prog_name="fusec", env={"_FUSEC_COMPLETE": "bash_source"})
    assert script.exit_code == 0 and "_fusec_completion" in script.output and "complete " in script.output
    words = runner.invoke(
        cli,
        [],
        prog_name="fusec",
        env={"_FUSEC_COMPLETE": "bash_complete", "COMP_WORDS": "fusec ", "COMP_CWORD": "1"},
    )
    names = {line.split(",", 1)[1] for line in words.output.splitlines()}
    assert {"check", "compile", "fit", "export", "import", "render", "init", "lsp"} <= names


@pytest.mark.slow
def test_compile_stderr_is_fusec_own(tmp_path: Path) -> None:
    """Every stderr line of a compile is a diagnostic or a progress line: a fresh process, then a few more specs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "NO_COLOR", "FORCE_COLOR", "FUSEC_PROG"))}
    exe = [sys.executable, "-m", "fusec", "compile"]
    proc = subprocess.run(
        [*exe, str(SPECS / "se_resnet_imported.json"), "-o", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[:2] == ["compile: importing TensorFlow...", "compile: building the Keras model (75 nodes)..."]
    assert lines[2:] and all(line.startswith("compile: writing ") for line in lines[2:]), lines
    assert "se_resnet.keras..." in lines[-1]
    runner = CliRunner()
    for name in ("text_encoder", "late_fusion_pretrained", "gated_top_k"):
        result = runner.invoke(cli, ["compile", str(SPECS / f"{name}.json"), "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        lines = result.stderr.splitlines()
        assert lines and all(_OWN.match(line) for line in lines), (name, lines)
        assert "\x1b[" not in result.stderr and "compile:" not in result.stdout
