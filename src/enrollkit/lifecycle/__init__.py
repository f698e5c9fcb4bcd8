"""The enrollment lifecycle after enroll(): its steps, its due events, and their delivery.

- :mod:`enrollkit.lifecycle.transitions`: the one table of allowed status transitions
- :mod:`enrollkit.lifecycle.steps`: ``record_access()`` and ``complete()``
- :mod:`enrollkit.lifecycle.claim`: claiming a due event (the exactly-once transaction)
- :mod:`enrollkit.lifecycle.delivery`: ``DueEvent``, running handlers, their bookkeeping
- :mod:`enrollkit.lifecycle.sweeper`: ``deliver_due()``, the sweeper over the due-time index
- :mod:`enrollkit.lifecycle.stream`: ``handle_stream_batch()``, the TTL stream consumer
"""
