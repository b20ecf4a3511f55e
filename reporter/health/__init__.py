"""Training health: a short instrumented training probe, an optimizer comparison,
TensorBoard training logs and accuracy on the model file's eval_batches().

Everything here turns a model (or event files) into the dataclasses of
reporter.report.health; the rules in reporter.rules.health read only those.
"""
