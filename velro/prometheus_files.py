"""prometheus-client's multiprocess folder, kept small (velro/metrics.py explains the mode).

Every process writes its values into files named after its pid (``counter_<pid>.db``,
``histogram_<pid>.db``), and a scrape reads every file of the folder. gunicorn recycles
its workers (``GUNICORN_MAX_REQUESTS``): without care a busy server would leave thousands
of dead workers' files by the end of a day, and every scrape would read them all. So when
a worker exits, gunicorn's master folds its counters and histograms into one archive
file per kind (``counter_archive.db``: the library reads it as any other process's file)
and deletes its files; the totals are unchanged, the folder holds the live processes'
files and two archives.

Folding and scraping exclude each other through a lock file in the folder (``flock``:
shared for a scrape, exclusive for a fold), so a scrape never sees a dead worker's values
twice or not at all, which Prometheus would read as a counter reset. No Django here: the
gunicorn master imports it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict

KINDS = ("counter", "histogram")  # additive values: a dead process's can be summed into another file


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, *, exclusive: bool):
    with open(Path(folder) / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fold_dead_process(folder: str | os.PathLike, pid: int) -> int:
    """Add the counters and histograms of process ``pid`` (which has exited) to the
    archive files and delete its files. Returns how many files it folded."""
    folder = Path(folder)
    folded = 0
    with folder_lock(folder, exclusive=True):
        for kind in KINDS:
            dead = folder / f"{kind}_{pid}.db"
            if not dead.exists():
                continue
            archive = folder / f"{kind}_archive.db"
            totals: dict[str, float] = {}
            for path in (archive, dead):
                if path.exists():
                    for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(str(path)):
                        totals[key] = totals.get(key, 0.0) + value
            # Written aside (a name the collector does not read), then swapped in whole.
            merged_path = folder / f"{kind}_archive.tmp"
            merged_path.unlink(missing_ok=True)
            merged = MmapedDict(str(merged_path))
            try:
                for key, value in totals.items():
                    merged.write_value(key, value, 0.0)
            finally:
                merged.close()
            os.replace(merged_path, archive)
            dead.unlink()
            folded += 1
    return folded
