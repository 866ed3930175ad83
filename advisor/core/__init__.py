"""Bottom layer: config, corpus and chunks, QA sets, model loading, the Answer protocol, run artifacts.

Nothing here imports retrieval/, tuning/, evalsuite/ or the rest of advisor/.
"""
