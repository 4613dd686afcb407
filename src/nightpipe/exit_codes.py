"""The exit codes of nightpipe's commands: what a script or cron job can rely on.

They are shown by ``nightpipe --help`` and ``nightpipe run --help`` and in the README.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """How a command ended."""

    OK = 0  # everything was done
    FAILED = 1  # some frames (or a whole step) failed; the others were done
    USAGE = 2  # usage or configuration error, or nothing to do because an input is missing
    BUSY = 75  # another run holds the night or the database; nothing was done (sysexits EX_TEMPFAIL)
    INTERRUPTED = 130  # stopped by SIGINT (Ctrl-C), 128 + 2
    TERMINATED = 143  # stopped by SIGTERM, 128 + 15


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "all done",
    ExitCode.FAILED: "some frames failed (the night report lists each with its reason)",
    ExitCode.USAGE: "usage or configuration error, or missing inputs (it says what to run)",
    ExitCode.BUSY: "another run is working on this night or database; nothing done, try again later",
    ExitCode.INTERRUPTED: "interrupted by SIGINT (Ctrl-C); rerun to resume",
    ExitCode.TERMINATED: "stopped by SIGTERM; rerun to resume",
}


def exit_code_lines() -> list[str]:
    """One ``code  meaning`` line per exit code."""
    return [f"{int(code):>3}  {text}" for code, text in MEANINGS.items()]
