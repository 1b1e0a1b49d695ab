"""Embeddings and the FAISS index of passages, with a manifest that says how it was built."""
