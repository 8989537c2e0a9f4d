"""The objective's model and data: the LSTM forecaster, its trainer and the data it reads.
Knows nothing of Optuna or the harness.

- ``config``: ``ModelConfig``, every field a searchable hyperparameter (no torch);
- ``network``: the LSTM forecaster (v4 by default);
- ``train``: the trainer, continuing across rungs, and early-stopped final fits;
- ``runtime``: device, threads, allocator and precision settings;
- ``flops``: training FLOPs per sample (the compute budget's currency; no torch);
- ``metrics``: MAE and R² per horizon and overall, and persistence;
- ``synthetic``: the Vélib-like generator behind the default data;
- ``loaders``: real data: GBFS snapshots, Paris open-data CSVs, tidy tables;
- ``panel``: the hourly panel every source becomes;
- ``windows``: panel to windows, split chronologically with purge gaps; the horizons;
- ``fidelity``: the nested, stratified training subsamples a trial climbs;
- ``calibrate``: the README's calibration figures (``python -m model.calibrate``).
"""
