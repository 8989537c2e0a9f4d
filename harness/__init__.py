"""The benchmark harness: runs HPO strategies on the LSTM objective, records every rung, and
turns the records into a verdict, a plan for the night and a final check.

Commands (``python -m harness``):

- ``cli``: the command line; parses and validates options, then calls the modules below;
- ``run``: one strategy on one experiment and seed, resumable, with its summary;
- ``compare``: every strategy x seed under one budget, then the optional retrains;
- ``two_stage``: ``compare --two-stage``, a replayed screen then a sized real confirmation;
- ``record``: the learning curves the replay surrogate is fitted to;
- ``tunability``: which parameters to search, and how many, measured on the replay;
- ``architecture``: the brief's architecture questions, from record's and random search's curves;
- ``final``: the recommendation and v4 retrained with early stopping, tested once;
- ``workers``: several processes, or machines, on one study.

A run, inside:

- ``experiment``: experiment files (TOML), loaded and validated;
- ``datasets``: the data an experiment trains on, built once per process;
- ``backends``: what trains a trial (the real model, or the replay) and its clock;
- ``study``: opening, resuming and repairing a run's study;
- ``optimize``: Optuna's optimize loop, its stops and the trial table;
- ``resumed_trial``: a trial a stopped process left mid-climb, trained again, its pruner's
  verdicts those of the uninterrupted run;
- ``objective``: the only code that talks to both the model and Optuna's trial API;
- ``climb``: one configuration trained up the fidelity ladder;
- ``retrain`` / ``converge``: recorded configurations retrained (noise floor, audit,
  re-evaluation) and trained to convergence (horizon trust);
- ``summary``: what a run achieved, from its records.

Files and storage:

- ``records``: the run's CSV records (rungs.csv, trials.csv) and their column names;
- ``tables``: reading those CSVs tolerantly;
- ``sidefiles``: atomic writes and guarded reads of the JSON, Markdown and HTML side files;
- ``layout``: the names of folders and studies;
- ``storage`` / ``journal``: Optuna storages, and the journal file made safe against torn writes;
- ``study_lock``: one coordinator per study;
- ``fingerprint``: what defines a study's trials, stored with it;
- ``provenance``: what metadata.json says about how a run was made;
- ``tracking``: optional MLflow logging.

Shared settings: ``team`` (the team's goals), ``defaults`` (the CLI's defaults), ``errors``
(user errors, printed as one line), ``signals`` (how Ctrl-C and SIGTERM stop a command, and
the writes they wait for).

Packages: ``analysis`` (the report), ``plan`` (the night's plan), ``replay`` (the surrogate).
"""
