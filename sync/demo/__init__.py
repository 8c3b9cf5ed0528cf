"""The demonstration behind ``c2m-sync demo``: the landlord/tenant stop-service process played
on a sample building through the real pipeline (CCB store and outbox, bus, MDM worker,
acknowledgements), then a report ending with the CCB / MDM comparison.

- :mod:`sync.demo.stage`: the databases, the bus, the business clock and the verbs of the scenes;
- :mod:`sync.demo.scenes`: the scenes, in the business's words;
- :mod:`sync.demo.report`: the final state of both sides and the comparison;
- :mod:`sync.demo.play`: plays them in order.
"""

from sync.demo.play import DemoOptions, play_demo
from sync.demo.report import DemoReport
from sync.demo.stage import DemoError

__all__ = ["DemoError", "DemoOptions", "DemoReport", "play_demo"]
