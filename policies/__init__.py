"""The project's checkov policies: one rule per file, each with an id, a name and why it matters.

checkov imports Python checks from ``--external-checks-dir policies`` only when this
``__init__.py`` exists; ``make scan`` fails when a project check did not run, so a
missing file cannot go unnoticed. Files starting with ``_`` hold shared helpers and
the allow-lists; ``data/`` holds generated data; ``suppressions.toml`` the reviewed
suppressions of built-in findings.
"""
