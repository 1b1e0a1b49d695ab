"""Safety checks that run before retrieval: the input guard and medical red-flag triage."""
