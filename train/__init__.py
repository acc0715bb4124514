"""Repository scripts (train, validate, benchmark, study, probes) and the study tooling they share (`train.reproduction`)."""
