"""Operations: the one-process service (``service.py``), scheduler and its lock, heartbeats, metrics, logging,
``doctor``, instances (``init``) and the demo.
"""
