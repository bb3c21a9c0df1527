"""Python actors of the tests (tests/python/test_actors.py, run_actors.sh)."""
