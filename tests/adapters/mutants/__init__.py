"""Broken plugins on purpose: adapters and specs the conformance suite must fail, each with a named reason
(tests/adapters/test_conformance_mutants.py)."""
