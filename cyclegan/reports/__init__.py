"""HTML reports of a run and of a sweep: single files that open offline in any browser.

`report.html` in a run directory (written at the end of training; rebuilt with
`python -m cyclegan.reports RUN_DIR`) and in a sweep directory (written by `sweep.py` and
`sweep.py --collect`). Pages are rendered from the Jinja2 templates in `templates/` (autoescaped),
with every picture embedded as a data URI, so a report survives being copied or mailed alone.
"""
