"""Running `crnn ARGS` in the test process, through main()'s error boundary (exit codes 0 / 1 / 2)."""

from __future__ import annotations

from click.testing import CliRunner

from crnn_cli.cli import main


def run_crnn(*args: object) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `crnn ARGS`, stdout and stderr captured apart."""
    with CliRunner().isolation() as (out, err, _):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue().decode(), err.getvalue().decode()
