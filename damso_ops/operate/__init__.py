"""Operate what is deployed: status, release history, rollback, logs (deployed.py finds the hosts)."""
