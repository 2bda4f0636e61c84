"""What the shared state raises.

ClusterStateError
├── StateUnavailableError   Redis is unreachable, or did not answer in time
├── LeaseLostError          this node's lease lapsed: the cluster holds it dead and has
│                           released what it held; it must ``join()`` again
├── EventsLostError         an event feed fell behind the kept history
└── CommandError            a command to another node did not get its answer
    ├── UndeliverableError  no live node of that name takes commands
    ├── CommandTimeoutError delivered, but not answered in time (it may have run)
    └── CommandFailedError  the receiving node's handler raised
"""

from __future__ import annotations


class ClusterStateError(Exception):
    pass


class StateUnavailableError(ClusterStateError):
    pass


class LeaseLostError(ClusterStateError):
    pass


class EventsLostError(ClusterStateError):
    pass


class CommandError(ClusterStateError):
    pass


class UndeliverableError(CommandError):
    pass


class CommandTimeoutError(CommandError):
    pass


class CommandFailedError(CommandError):
    pass
