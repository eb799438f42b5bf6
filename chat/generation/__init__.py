"""The generation core: answers owned by the server process, not by whoever asked.

A caller (the chat socket today, an HTTP API tomorrow) hands the registry a Job — what to
ask which provider, with what history — and a Sink — where frames go and where the answer
is saved. The core knows neither sockets nor database rows:

- job.py      Job, Sink and Outcome: the contract between the core and its callers
- task.py     Generation: one task reading one provider stream, coalescing, checkpointing,
              always ending with one truthful final state
- registry.py Registry: the process's running answers (claims, Stop, shutdown)
- hub.py      Hub: per-user fan-out of frames to that user's open sockets
"""

from chat.generation.hub import Hub
from chat.generation.job import Job, Outcome, Sink
from chat.generation.registry import Registry
from chat.generation.task import Generation

hub = Hub()
registry = Registry()

__all__ = ["Generation", "Hub", "Job", "Outcome", "Registry", "Sink", "hub", "registry"]
