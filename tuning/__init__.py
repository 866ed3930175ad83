"""Tuning track: leak-free training data from the corpus and QLoRA training of a PEFT adapter.

Imports only advisor.core (siblings retrieval/ and evalsuite/ are never imported here).
"""
