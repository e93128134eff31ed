"""Proof: evidence exports, rights (export and erase a person's record), the register of data-subject
requests, retention.
"""
