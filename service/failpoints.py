"""Named places where the worker can be made to fail on purpose, for fault tests.

Configured by KVS_FAILPOINTS as comma-separated `name=action`:
  error     raise FailpointError every time
  error:N   raise FailpointError the first N times
  crash     SIGKILL this process (no cleanup, as a machine failure would)
  sleep:S   pause S seconds
"""

import asyncio
import logging
import os
import signal

log = logging.getLogger(__name__)


class FailpointError(Exception):
    pass


class Failpoints:
    def __init__(self, spec: str) -> None:
        self._actions: dict[str, str] = {}
        self._hits: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, action = item.partition("=")
            if not sep or not action:
                raise ValueError(f"failpoint {item!r}: expected name=action")
            self._actions[name.strip()] = action.strip()

    async def hit(self, name: str) -> None:
        """Does what the failpoint `name` is set to do; nothing when it is unset."""
        action = self._actions.get(name)
        if action is None:
            return
        self._hits[name] = hits = self._hits.get(name, 0) + 1
        log.warning("failpoint", extra={"failpoint": name, "action": action, "hit": hits})
        kind, _, arg = action.partition(":")
        if kind == "error" and (not arg or hits <= int(arg)):
            raise FailpointError(f"failpoint {name}")
        if kind == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "sleep":
            await asyncio.sleep(float(arg))
