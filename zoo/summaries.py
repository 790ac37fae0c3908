"""What ``zoo list`` and ``zoo bench`` show of a spec, remembered between runs.

Listing or benching the zoo validates and plans every spec: with the whole torchvision catalogue
that is about 0.7 s, half of it building the spec schema, the other half planning 83 networks (and
their memory), for figures that change only when a spec file or zoo itself does. So each result is
stored under a key made of what was computed and with which options, the spec's resolved data (its
``extends:`` chain merged, so a changed base changes the key), and a fingerprint of zoo's own
modules (version, and each module file's size and modification time), in one JSON file in the
user's cache folder: ``$ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``;
``ZOO_CACHE_DIR=off`` turns it off. Specs that use a plugin's types are never stored (the plugin's
code is not in the fingerprint). A missing, unreadable or corrupt cache is only a slower run; a
cache that cannot be written is not an error either. Warnings a spec gives when it is validated
(``zoo validate`` shows them) are not repeated from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo import registry
from zoo.errors import ZooError
from zoo.spec.load import resolve, validate
from zoo.spec.yaml_loader import Located

if TYPE_CHECKING:
    from zoo.spec.schema import ModelSpec

CACHE_ENV = "ZOO_CACHE_DIR"
FILE_NAME = "summaries.json"
FORMAT = 1
MAX_ENTRIES = 4096  # a few hundred specs, at several versions each


@dataclass(frozen=True)
class Summary:
    """A spec's row in ``zoo list``: its input (C, H, W), parameters, multiply-adds (batch 1) and
    description."""

    input: tuple[int, ...]
    params: int
    macs: int
    description: str


def cache_folder() -> Path | None:
    """Where summaries are kept, or None when caching is off."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return None if chosen.strip().lower() in ("off", "") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zoo"


class SummaryCache:
    """The remembered results of one run: read once, written once (:meth:`save`) if anything was
    added."""

    def __init__(self) -> None:
        self.folder = cache_folder()
        self.entries: dict[str, dict[str, Any]] = self._read()
        self.added = False
        self._fingerprint: str | None = None

    def remember(
        self,
        path: str | os.PathLike[str],
        what: str,
        options: Mapping[str, Any],
        compute: Callable[[ModelSpec], dict[str, Any]],
    ) -> tuple[dict[str, Any], Located]:
        """``compute(spec)`` for the spec at ``path`` (a JSON-able dict), or what it gave before
        for the same spec, ``what`` and ``options``; and the spec's resolved data. Raises
        :class:`zoo.ZooError` as ``zoo.load_spec`` does, and whatever ``compute`` raises."""
        located = resolve(path)
        key = self._key(located, what, options)
        found = self.entries.get(key) if key else None
        if isinstance(found, dict):
            return found, located
        spec = validate(located)
        value = compute(spec)
        if key and not any(_plugin_nodes(spec)):
            self.entries[key] = value
            self.added = True
        return value, located

    def summary(self, path: Path) -> Summary:
        """The ``zoo list`` row of the spec file ``path``."""

        def compute(spec: ModelSpec) -> dict[str, Any]:
            from zoo.tracing import trace

            result = trace(spec, depth=0)
            return asdict(Summary(result.input[1:], result.params, result.macs, spec.description))

        found, _ = self.remember(path, "summary", {}, compute)
        try:
            return Summary(
                tuple(found["input"]), found["params"], found["macs"], found["description"]
            )
        except (KeyError, TypeError):  # an entry of another shape: computed again, not stored
            return Summary(**compute(validate(resolve(path))))

    def save(self) -> None:
        """Write the cache back when a summary was added (atomically; failures are ignored)."""
        if not (self.added and self.folder):
            return
        from zoo.files import write_atomically

        entries = dict(list(self.entries.items())[-MAX_ENTRIES:])  # the oldest go first
        data = json.dumps({"format": FORMAT, "entries": entries}).encode()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomically(self.folder / FILE_NAME, lambda handle: handle.write(data))
        except (OSError, ZooError):  # a cache that cannot be written is only a slower next run
            pass

    def _read(self) -> dict[str, dict[str, Any]]:
        if self.folder is None:
            return {}
        try:
            with open(self.folder / FILE_NAME, "rb") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def _key(self, located: Located, what: str, options: Mapping[str, Any]) -> str | None:
        if self.folder is None:
            return None
        if self._fingerprint is None:
            self._fingerprint = _zoo_fingerprint()
        spec = json.dumps([what, options, located.data], sort_keys=True, default=repr)
        return hashlib.sha256(f"{self._fingerprint}\n{spec}".encode()).hexdigest()


def _zoo_fingerprint() -> str:
    """zoo's version and the size and modification time of each of its modules: any change to
    zoo (an upgrade, an edit in a development checkout) gives new keys."""
    import zoo

    root = Path(zoo.__file__).parent
    parts = [zoo.__version__]
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        parts.append(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _plugin_nodes(value: Any) -> Iterator[Any]:
    """The nodes of a validated spec whose type a plugin registered."""
    from pydantic import BaseModel

    if isinstance(value, tuple):
        for item in value:
            yield from _plugin_nodes(item)
    elif isinstance(value, BaseModel):
        try:
            if registry.of(value).source != registry.BUILTIN:
                yield value
        except KeyError:
            pass
        for name in type(value).model_fields:
            yield from _plugin_nodes(getattr(value, name))
