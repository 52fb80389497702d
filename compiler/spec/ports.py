"""Block output ports: which flat node id each output of a block (or an instance of one) stands for.

A block's outputs may name outputs of inner instances; each block's ports
are resolved once, and every reference that misses one gets the ports it
could have meant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import NameIndex, PathPart, Problem, quote_names
from .refs import BROKEN

SEP = "__"
MAX_DEPTH = 16


def last_copy(nid: str, node: Mapping[str, Any]) -> str:
    """The id prefix of the nodes of instance ``nid``: ``nid__``, or with ``repeat: n`` its last copy's ``nid__n__``."""
    copies = node.get("repeat")
    return f"{nid}{SEP}{copies}{SEP}" if isinstance(copies, int) else f"{nid}{SEP}"


class BlockPorts:
    """The output ports of the blocks of one spec, resolved once per block.

    Args:
        blocks: the spec's ``blocks`` section (broken definitions marked ``broken``).
    """

    def __init__(self, blocks: Mapping[str, Any]) -> None:
        self.blocks = blocks
        # block name -> {output name: id relative to an instance's prefix}
        self._ports: dict[str, dict[str, str]] = {}
        self._port_names: dict[str, NameIndex] = {}
        self._instance_names: dict[int, tuple[dict[str, str], NameIndex]] = {}
        self.problems: list[Problem] = []

    def expandable(self, node: Mapping[str, Any]) -> bool:
        """Whether ``node`` is an instance of a known block whose definition passed the schema."""
        block = self.blocks.get(node["block"]) if "block" in node else None
        return block is not None and BROKEN not in block

    def instance_ports(self, name: str, prefix: str) -> dict[str, str]:
        """Each output port of an instance of block ``name``, as a flat node id."""
        return {port: f"{prefix}{rel}" for port, rel in self.block_ports(name, ()).items()}

    def block_ports(self, name: str, stack: tuple[str, ...]) -> dict[str, str]:
        """Each output port of block ``name`` as an id relative to an instance's prefix.

        Computed once per block: a block's ports name ports of inner
        instances, and resolving them again for every port of every level
        made nested re-exports exponential (4 ports, 12 levels: a minute).
        A port that names an inner node's output ``node.N`` keeps the ``.N``.
        """
        cached = self._ports.get(name)
        if cached is not None:
            return cached
        block = self.blocks.get(name)
        if block is None or BROKEN in block or name in stack or len(stack) > MAX_DEPTH:
            return {}
        ports = {}
        for port, ref in block["outputs"].items():
            inner, _, sub = ref.partition(".")
            node = block["nodes"].get(inner)
            target = None
            if node is not None and self.expandable(node):
                subports = self.block_ports(node["block"], (*stack, name))
                if sub:
                    target = subports.get(sub)
                elif len(subports) == 1:
                    target = next(iter(subports.values()))
                target = f"{last_copy(inner, node)}{target}" if target is not None else None
            elif sub and node is not None and "block" not in node:
                target = f"{inner}.{sub}"
            ports[port] = target or inner
        self._ports[name] = ports
        return ports

    def resolve(self, ref: str, env: Mapping[str, str], outputs: Mapping[str, dict[str, str]]) -> str | None:
        """Map a reference written in some scope to a flat id (None when unknown)."""
        if ref in env:
            return env[ref]
        inst, _, port = ref.partition(".")
        if inst in outputs:
            ports = outputs[inst]
            if port:
                return ports.get(port)
            if len(ports) == 1:
                return next(iter(ports.values()))
        if port and inst in env:
            bound = env[inst]
            if "." in bound and port == "0":
                return bound  # a block input bound to one output (`l.2`): `x.0` is that one tensor
            return f"{bound}.{port}"  # output `port` of a multi-output node (an RNN's state)
        return None

    def ports_index(self, ports: dict[str, str]) -> NameIndex:
        """The port names of one instance, indexed once however many references miss them."""
        cached = self._instance_names.get(id(ports))
        if cached is None or cached[0] is not ports:
            cached = self._instance_names[id(ports)] = (ports, NameIndex(ports))
        return cached[1]

    def check_port(self, name: str, port: str, inner: str, sub: str, inner_block: str) -> None:
        """A block output ``inner.sub`` naming an inner instance must name one of its ports."""
        found = self.block_ports(inner_block, ())
        if not found or (sub in found) or (not sub and len(found) == 1):
            return
        if inner_block not in self._port_names:
            self._port_names[inner_block] = NameIndex(found)
        ports = self._port_names[inner_block]
        where = ("blocks", name, "outputs", port)
        if not sub:
            hint = "name one: " + quote_names([f"{inner}.{p}" for p in ports.names[:12]], 3)
            message = (
                f"block `{name}` output `{port}` names `{inner}`, "
                f"an instance of `{inner_block}` with {len(ports.names)} outputs"
            )
        else:
            near = ports.near(sub)
            hint = f"did you mean `{inner}.{near[0]}`?" if near else f"its outputs: {quote_names(ports.names)}"
            message = (
                f"block `{name}` output `{port}` names `{inner}.{sub}`, but block `{inner_block}` has no output `{sub}`"
            )
        self.problems.append(Problem(where, message, hint, "reference"))


def port_problem(path: tuple[PathPart, ...], inst: str, port: str, ports: NameIndex) -> Problem:
    """A reference to block instance ``inst`` that names no port of it (or none, where it has several)."""
    if not port:
        return Problem(
            path,
            f"block instance `{inst}` has {len(ports.names)} outputs; name one",
            "write " + quote_names([f"{inst}.{n}" for n in ports.names[:12]], 3),
            "reference",
        )
    near = ports.near(port)
    return Problem(
        path,
        f"block instance `{inst}` has no output `{port}`",
        f"did you mean `{inst}.{near[0]}`?" if near else f"its outputs: {quote_names(ports.names)}",
        "reference",
    )


Path = tuple[PathPart, ...]
Refusal = Callable[[Any, str, Any, Path, tuple[str, ...]], "list[Problem] | None"]


def _unknown_block(ex: Any, name: str, block: Any, path: tuple[PathPart, ...], stack: Any) -> list[Problem] | None:
    if block is not None:
        return None
    near = ex.block_names.near(name)
    hint = f"did you mean `{near[0]}`?" if near else f"defined blocks: {quote_names(ex.block_names.names)}"
    return [Problem((*path, "block"), f"no block named `{name}`", hint, "reference")]


def _broken_block(ex: Any, name: str, block: Any, path: Any, stack: Any) -> list[Problem] | None:
    return [] if BROKEN in block else None  # its definition's schema problems are reported already


def _block_cycle(ex: Any, name: str, block: Any, path: Path, stack: Any) -> list[Problem] | None:
    if name not in stack:
        return None
    chain = " -> ".join((*stack[stack.index(name) :], name))
    return [Problem((*path, "block"), f"block cycle: {chain}", "a block cannot contain itself", "cycle")]


def _too_deep(ex: Any, name: str, block: Any, path: Path, stack: Any) -> list[Problem] | None:
    if len(stack) < MAX_DEPTH:
        return None
    return [Problem(path, f"blocks nest deeper than {MAX_DEPTH} levels", "", "depth")]


#: Why an instance is not expanded, asked in order: each gives None (no objection) or the problems to report.
_REFUSALS: tuple[Refusal, ...] = (_unknown_block, _broken_block, _block_cycle, _too_deep)


def refusal(ex: Any, name: str, block: Any, path: Path, stack: tuple[str, ...]) -> list[Problem] | None:
    """The first refusal's problems (perhaps none), or None when the instance can be expanded."""
    for refusal in _REFUSALS:
        found = refusal(ex, name, block, path, stack)
        if found is not None:
            return found
    return None


class LazyNames:
    """The names in scope, indexed for suggestions only when a reference is wrong."""

    def __init__(self, names: Callable[[], Iterable[str]]) -> None:
        self._names = names
        self._index: NameIndex | None = None

    @property
    def index(self) -> NameIndex:
        if self._index is None:
            self._index = NameIndex(self._names())
        return self._index


def clash(path: tuple[PathPart, ...], flat: str) -> Problem:
    return Problem(
        path,
        f"the id `{flat}` generated for a block instance is already taken",
        f"rename the instance or the node: generated ids join them with `{SEP}`",
        "duplicate",
    )


def unique_problems(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        key = (p.jsonpath, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
