"""The ``call`` methods of the realtime protocol, one module per service asked.

Every module here is imported by :func:`gatehouse.realtime.registry.discover`.
"""
