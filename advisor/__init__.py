"""RAG-versus-fine-tune advisor: build a FAISS index and a QLoRA adapter on the same corpus,
evaluate four arms (base, rag, tuned, tuned_rag) and recommend RAG, fine-tuning or both."""

__version__ = "0.1.0"
