"""The assistant: retrieval, relevance gate, prompt, generation, citations and disclaimer."""
