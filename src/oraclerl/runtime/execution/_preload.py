"""Imported once by the local executor's fork server, so that forked workers start with torch, the
runtime and every experiment module already imported (a respawned worker is then ready in milliseconds)."""

from ..run import registry as _registry
from ..run import runner as _runner  # noqa: F401
from ..run import store as _store
from . import executors as _executors  # noqa: F401
from . import worker as _worker  # noqa: F401

_registry._load()
_store.code_fingerprint()  # workers forked from here share the fingerprint of the sources at start-up
