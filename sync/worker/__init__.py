"""The MDM worker: consumes sync requests into the MDM store, acknowledges them, dead-letters
what it cannot consume, and reports its health.

``mdm_processor`` is the transport-free core (one record in, its answer stored); ``mdm_loop``
runs it over the ``Bus`` port, ``faust_app`` as a faust-streaming agent; ``mdm`` is the entry
point both share (``run_mdm_worker``).
"""
