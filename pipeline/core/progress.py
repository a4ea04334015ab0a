"""Progress bars for long work on a terminal (tqdm), and silence everywhere else.

    from pipeline.core.progress import progress

    with progress(total=n, desc="seed", unit="interaction") as bar:
        for item in work:
            ...
            bar.update(1)

`progress(...)` returns a live tqdm bar only when it is enabled; otherwise a no-op with the same
methods, so callers never branch. Enabled means: `enabled=True`, or `enabled=None` (the default)
and the stream it draws on is a terminal. The stream is stderr unless `file=` says otherwise, never
stdout: stdout of `flywheel seed --out -` and `flywheel anonymize` is data. The CLI passes
`enabled=False` for `--json` and `--no-progress`, so scripts, pipes and CI logs get exactly the
bytes they got before bars existed.

The methods, on both kinds:

* `update(n=1)`: n more units done (cheap: call it per record or per batch);
* `count(n)`: for a bar whose unit is not the thing people count (bytes of a file read, when the
  records in it are unknown in advance), the running total of that thing; the bar shows it and its
  rate after the bar (`counting="record"` names it);
* `describe(text)`: what the bar is on now (replaces `desc`, e.g. the stage of a benchmark);
* `write(text)`: one line of text for the same stream, printed above the bar instead of through it;
* `close()`, or use it as a context manager; `active` says whether anything is drawn.

`input_size(handle)` is the number of bytes left in a regular file (None for a pipe or terminal):
the total of a bar over bytes read.
"""

import os
import stat
import sys
import time
from typing import IO, Any, Self


def is_terminal(stream: IO | None) -> bool:
    """Whether `stream` is an interactive terminal (a closed or fake stream is not)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def input_size(handle: IO) -> int | None:
    """Bytes left to read in `handle` when it is a regular file (stdin redirected from one too); else None."""
    try:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        return max(0, info.st_size - handle.tell())
    except (AttributeError, ValueError, OSError):
        return None


def _has_size(stream: IO) -> bool:
    try:
        columns, lines = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError):
        return False
    return columns > 0 and lines > 0


class NoProgress:
    """What `progress` returns when disabled: every method does nothing (`write` still writes)."""

    active = False

    def __init__(self, file: IO | None = None):
        self._file = file

    def update(self, n: int = 1) -> None:
        pass

    def count(self, n: int) -> None:
        pass

    def describe(self, text: str) -> None:
        pass

    def write(self, text: str) -> None:
        (self._file or sys.stderr).write(text + "\n")

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Progress(NoProgress):
    """A tqdm bar on a terminal; see the module's docstring."""

    active = True

    def __init__(self, bar: Any, file: IO, counting: str | None):
        super().__init__(file)
        self._bar = bar
        self._counting = counting
        self._started = time.monotonic()

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def count(self, n: int) -> None:
        if self._counting:
            rate = self._bar.format_sizeof(n / max(time.monotonic() - self._started, 1e-9))
            self._bar.set_postfix_str(f"{n:,} {self._counting}s at {rate}/s", refresh=False)

    def describe(self, text: str) -> None:
        self._bar.set_description_str(text)

    def write(self, text: str) -> None:
        self._bar.write(text, file=self._file)

    def close(self) -> None:
        self._bar.close()


def progress(
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool | None = None,
    *,
    unit_scale: bool = False,
    counting: str | None = None,
    file: IO | None = None,
) -> NoProgress:
    """A progress bar over `total` units (None: unknown, the bar shows the count and its rate).

    `unit` is one step ("B", "record"; a word is shown as "1.2k record/s").
    `enabled`: None draws only when `file` (default stderr) is a terminal; False never; True always.
    `unit_scale=True` writes big counts as 1.2M (use it with `unit="B"` for bytes). `counting`
    names what `count(n)` counts (e.g. "record"). See the module's docstring for the methods.
    """
    file = file if file is not None else sys.stderr
    if enabled is False or (enabled is None and not is_terminal(file)):
        return NoProgress(file)
    from tqdm import tqdm  # only where a bar is drawn

    sized = _has_size(file)  # a terminal that reports no size (some ptys) gets 80x24, not an invisible bar
    bar = tqdm(total=total, desc=desc, unit=unit if len(unit) <= 2 else f" {unit}", unit_scale=unit_scale, file=file, dynamic_ncols=sized,
               ncols=None if sized else 80, nrows=None if sized else 24, mininterval=0.25, smoothing=0.1)
    return Progress(bar, file, counting)
