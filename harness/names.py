"""Names that several modules spell: one owner each, no imports (safe for analysis).

- ``RECORD_PREFIX``: a record run's folder under ``results/<experiment>/`` starts with it
  (``record-<configs>x<repeats>``); analysis skips such folders, replay reads them.
- ``REPLAY_SUFFIX``: the folder of an experiment's replayed runs is its name plus this
  (``results/<experiment>.replay/``), beside its real runs.
"""

RECORD_PREFIX = "record-"
REPLAY_SUFFIX = ".replay"
