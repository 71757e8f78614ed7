"""Helpers of the async tests, generated into ``tests/support/_sync`` like the tests."""
