"""Locust load test of the web server (bench/loadtest/locustfile.py), run by bench/loadtest/run.py."""
