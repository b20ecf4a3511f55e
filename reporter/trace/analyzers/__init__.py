"""Trace analyzers, one module per concern; ``reporter.trace.analyse.analyse_rank`` runs
them (see its module doc for the list)."""
