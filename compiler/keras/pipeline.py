"""Compile a checked spec: the output folder, the destination check, the build, the artifacts.

One orchestration for the ``fusec compile`` command and ``fusec.compile_spec``:
each step raises FusecError, the first two before TensorFlow is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import FusecError, OutputError, printable
from ..static.check import Checked
from .tf import StageHook


def output_folder(checked: Checked, fmt: str, given: Path | None = None) -> Path:
    """The output folder: ``given``, else ``out/<model name>``.

    A name made from the spec's (the folder, ``<name>.keras``) that is too
    long for a file name is refused here, before the build, with the name
    and what to change, rather than by the file system's "File name too long".

    Raises:
        OutputError: a derived name is too long for the file system.
    """
    from ..files import too_long
    from .save import archive_name

    out = given if given is not None else Path("out") / checked.name
    derived = not checked.doc.get("name")
    origin = "the spec's file name, as the spec has no `name`" if derived else "the spec's `name`"
    names = [] if given is not None else [(checked.name, out.parent)]
    if fmt in ("all", "keras"):
        names.append((archive_name(checked.name), out))
    for name, where in names:
        if too_long(where, name):
            what = "default output name" if name == checked.name else "archive name"
            raise OutputError.single(
                (),
                f"the {what} `{printable(name)}` (from {origin}) is "
                f"{len(os.fsencode(name))} bytes, longer than a file name may be",
                "give the spec a shorter `name`"
                + (" or rename the file" if derived else "")
                + (", or pass -o DIR" if name == checked.name else ", or compile with --format savedmodel"),
                "output",
            )
    return out


def check_output(checked: Checked, out: Path) -> None:
    """Refuse an output folder fusec must not replace, before paying for TensorFlow."""
    from ..static.archive import input_files
    from .save import check_destination

    check_destination(out.absolute(), input_files(checked))


def build_and_save(checked: Checked, out: Path, fmt: str = "all", stages: StageHook | None = None) -> object:
    """Build the Keras model and write its artifacts atomically; returns ``Artifacts``.

    Each step is a stage (``keras.tf.stage``): ``tensorflow``, ``build``, then
    ``savedmodel`` and ``keras`` (in ``save_artifacts``); TensorFlow's C++
    log lines printed meanwhile are filtered as at its import
    (``keras.tf.native_logs``).

    Args:
        checked: the checked spec.
        out: the output folder (``output_folder``), checked by ``check_output``.
        fmt: ``all``, ``savedmodel`` or ``keras``.
        stages: where to report the stages (default: the hook in force, if any).
    """
    from .build import build_model
    from .save import save_artifacts
    from .tf import import_keras, native_logs, reporting_stages, stage
    from .weights import set_weights

    with reporting_stages(stages):
        import_keras()
        try:
            with stage("build", f"{len(checked.order)} nodes"), native_logs():
                model = build_model(checked, compile=fmt != "savedmodel")
                set_weights(model, checked)  # the spec's weights file (fusec import), before anything is saved
        except FusecError as err:  # Keras refused a node: its line and column in the spec, as the check's
            raise checked.spec.locate(err) from None
        with native_logs():  # save_artifacts shows its stages: savedmodel, keras
            return save_artifacts(model, checked, out, fmt)


def compile_checked(checked: Checked, out: Path | None = None, fmt: str = "all") -> object:
    """Every step after the check: ``output_folder``, ``check_output``, ``build_and_save``."""
    folder = output_folder(checked, fmt, out)
    check_output(checked, folder)
    return build_and_save(checked, folder, fmt)
