"""Database health: one service computes a report, three faces show it.

* ``manage.py dbhealth`` — text tables with a progress line per check, or ``--json``;
  exits 1 when a check is at ERROR.
* The admin page "Database health" (``/admin/dbhealth/``), staff only.
* ``GET /api/v1/health`` (liveness, anyone) and ``GET /api/v1/health/report`` (staff).

``checks.py`` holds the checks, ``services.py`` runs them (as the owner, see there) and
answers liveness, ``render.py`` turns a report into text or JSON.
"""
