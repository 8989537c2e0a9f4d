"""Record once, replay many: a surrogate of the objective fitted to recorded learning curves."""
