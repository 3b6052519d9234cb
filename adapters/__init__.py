"""Adapters that act on verdicts: the proxy and the auditor (installed as guardrail.adapters)."""
