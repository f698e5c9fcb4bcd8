"""The stored layout: one module per stored aggregate, each owning its keys, its item
builders, its parsers (stored item -> typed value) and its condition pieces.

- :mod:`enrollkit.layout.table`: the key schema both tables share, key byte limits,
  condition helpers
- :mod:`enrollkit.layout.enrollment`: the enrollment's root item ``0``,
  ``metadata#tenant``, ``cancel_policy``, ``canceled_date``, and the item collection
- :mod:`enrollkit.layout.schedule`: the ``schedules#<event>`` items
- :mod:`enrollkit.layout.lock`: the (user, course) lock, ``metadata#lock``,
  ``metadata#deduplication_window``
- :mod:`enrollkit.layout.seat`: the seat item ``vacancies#<org>``, ``parent_vacancy``,
  the order's ``generated_items#<slot>`` records and the seat status lifecycle
- :mod:`enrollkit.layout.order`: the order item ``<order>/0`` and its owner

Nothing outside this package spells a key or an attribute name of the layout. These
modules are pure: ``boto3.dynamodb.conditions`` is imported when a condition is built,
not at import time, so ``import enrollkit`` stays light.
"""
