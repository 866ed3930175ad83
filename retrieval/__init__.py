"""Retrieval track: embedders, the FAISS index, and the citing RAG arm.

Imports only advisor.core (siblings tuning/ and evalsuite/ are never imported here).
"""
