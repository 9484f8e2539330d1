"""Accounting: who used what, when (sampler -> store -> report, cost)."""
