"""Evaluation suite: judge-free metrics, bootstrap statistics, forgetting probes, and the eval stage.

Sees arms only through the Answer protocol (advisor.core.answer). Imports only advisor.core.
"""
