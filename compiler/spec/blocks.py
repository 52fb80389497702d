"""Blocks: reusable sub-graphs, expanded into plain nodes before the graph stage.

A block is defined once under ``blocks`` (named inputs, nodes, named outputs)
and instantiated by ``{"block": NAME, "inputs": ...}`` nodes. Expansion
rewrites every instance into ordinary nodes whose ids join the instance id
and the inner id with ``__`` (``tower_a__dense``), so the Keras layer names
stay unique and readable. With ``shared_weights: true`` every instance calls
one set of layers (siamese towers): each inner layer becomes a shared layer
named ``BLOCK__inner``; otherwise each instance gets its own layers.

Expansion keeps, for every node and shared layer it creates, the JSON path
of the definition it came from, so a later error in an expanded node points
into the block definition, not at a name the user never wrote.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import GraphError, NameIndex, PathPart, Problem, did_you_mean, quote_names
from .params import Params, bind, check_definitions, configured
from .ports import MAX_DEPTH, SEP, BlockPorts, LazyNames, clash, last_copy, port_problem, refusal, unique_problems
from .refs import BROKEN, flat_refs

MAX_NODES = 20_000  # nodes after expansion: blocks of blocks multiply, so a short spec can ask for billions


Path = tuple[PathPart, ...]
#: Where a section is emitted: (id prefix, the section's JSON path, the chain of instances it sits in).
Where = tuple[str, Path, tuple[tuple[str, str], ...]]


class _TooMany(Exception):
    """Expansion passed MAX_NODES; raised to stop at once rather than build the rest."""


@dataclass
class Expansion:
    """A flat spec and where each generated name came from.

    Attributes:
        doc: the spec without ``blocks`` and without ``block`` nodes.
        origins: JSON path of the definition of each generated node id.
        shared_origins: JSON path of the definition of each generated shared layer.
        scopes: for each generated node, the chain of (instance id, block name)
            it sits in, outermost first (for clusters in diagrams).
        warnings: block parameters declared and never used.
        problems: unknown blocks, block cycles, wrong instance inputs,
            dangling references inside blocks, generated ids that clash. An
            instance that cannot be expanded is left as a ``broken``
            placeholder node (its id and its output ports), so the rest of
            the spec is still checked against it.
    """

    doc: dict[str, Any]
    origins: dict[str, tuple[PathPart, ...]] = field(default_factory=dict)
    shared_origins: dict[str, tuple[PathPart, ...]] = field(default_factory=dict)
    scopes: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


class _Expander(BlockPorts):
    """Expands the instances of one spec, collecting the flat doc and every problem."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        super().__init__(doc.get("blocks", {}))
        self.out = Expansion({k: copy.deepcopy(v) for k, v in doc.items() if k not in ("blocks", "nodes")})
        self.out.doc["nodes"] = {}
        self.out.doc.setdefault("shared", {})
        self.user_shared = set(self.out.doc["shared"])
        self._sizes: dict[str, int] = {}
        self._outputs_checked: set[str] = set()
        self._node_names: dict[str, NameIndex] = {}
        self.block_names = NameIndex(self.blocks)

    def node_names(self, block: str) -> NameIndex:
        """The node ids of block ``block``, indexed once for suggestions."""
        if block not in self._node_names:
            self._node_names[block] = NameIndex(self.blocks[block]["nodes"])
        return self._node_names[block]

    # -- references -------------------------------------------------------

    def rewrite_inputs(
        self,
        inputs: Any,
        env: Mapping[str, str],
        outputs: Mapping[str, dict[str, str]],
        base: tuple[PathPart, ...],
        valid: LazyNames,
    ) -> Any:
        def one(ref: str, path: tuple[PathPart, ...]) -> str:
            flat = self.resolve(ref, env, outputs)
            if flat is not None:
                return flat
            inst, _, port = ref.partition(".")
            if outputs.get(inst):
                self.problems.append(port_problem(path, inst, port, self.ports_index(outputs[inst])))
            elif ref not in env:
                names = valid.index
                near = names.near(ref)
                hint = f"did you mean `{near[0]}`?" if near else ""
                if not near and names.names:
                    hint = f"valid: {quote_names(names.names)}"
                self.problems.append(Problem(path, f"no node or input named `{ref}`", hint, "reference"))
            return ref  # keep the name: the graph stage reports what is left

        if isinstance(inputs, str):
            return one(inputs, base)
        if isinstance(inputs, list):
            return [one(r, (*base, i)) for i, r in enumerate(inputs)]
        return {
            name: one(v, (*base, name)) if isinstance(v, str) else [one(r, (*base, name, i)) for i, r in enumerate(v)]
            for name, v in inputs.items()
        }

    # -- nodes ------------------------------------------------------------

    def emit(
        self,
        nodes: Mapping[str, Any],
        env: dict[str, str],
        where: Where,
        shared_as: str | None,
        stack: tuple[str, ...],
        params: Params | None = None,
    ) -> dict[str, dict[str, str]]:
        """Emit ``nodes`` (a section) into the flat doc; return each instance's outputs.

        ``where`` is (id prefix, the section's path, scope); ``params`` the
        enclosing instance's parameters (None at the top level).
        """
        prefix, base, scope = where
        outputs: dict[str, dict[str, str]] = {}
        # Plain nodes, and instances that cannot expand (they stay one placeholder node).
        local = {nid: f"{prefix}{nid}" for nid, n in nodes.items() if not self.expandable(n)}
        env = {**env, **local}
        valid = LazyNames(lambda: (*env, *nodes))
        # Instances first (in dependency order is not needed: outputs are
        # known from the block definitions alone), then plain nodes.
        for nid, node in nodes.items():
            if self.expandable(node):
                outputs[nid] = self.instance_ports(node["block"], f"{prefix}{last_copy(nid, node)}")
        for nid, node in nodes.items():
            path = (*base, nid)
            if "block" in node:
                self.instantiate(nid, node, env, outputs, (prefix, path, scope), shared_as, stack, valid, params)
                continue
            inputs = self.rewrite_inputs(node["inputs"], env, outputs, (*path, "inputs"), valid)
            flat = self.plain_node(nid, node, local[nid], path, shared_as, params)
            flat["inputs"] = inputs
            if local[nid] in self.out.doc["nodes"]:
                self.problems.append(clash(path, local[nid]))
                continue
            if len(self.out.doc["nodes"]) >= MAX_NODES:
                raise _TooMany
            self.out.doc["nodes"][local[nid]] = flat
            if prefix:
                self.out.origins[local[nid]] = path
                self.out.scopes[local[nid]] = scope
        return outputs

    def plain_node(
        self,
        nid: str,
        node: Mapping[str, Any],
        flat_id: str,
        path: Path,
        shared_as: str | None,
        params: Params | None,
    ) -> dict[str, Any]:
        """One layer, merge, shared call or model node of a section, as the flat doc holds it (inputs aside).

        In a block, its parameters are substituted and the config checked;
        with shared weights its layer becomes a shared layer.
        """
        flat = dict(node)
        if params is not None and "config" in node:
            flat, found = configured(node, params, flat_id, path, str(path[1]))
            self.problems.extend(found)
        if shared_as is not None and "layer" in flat:
            sid = f"{shared_as}{nid}"
            if sid in self.user_shared:
                self.problems.append(clash(("shared", sid), sid))
            elif sid not in self.out.doc["shared"]:
                layer = {k: v for k, v in flat.items() if k in ("layer", "config", "trainable", "doc")}
                self.out.doc["shared"][sid] = layer
                self.out.shared_origins[sid] = path
            flat = {"shared": sid} | ({"doc": node["doc"]} if "doc" in node else {})
        return flat

    def placeholder(self, flat: str, inputs: Any, path: tuple[PathPart, ...], scope: Any) -> None:
        """A ``broken`` node standing for an instance (or one of its ports) that was not expanded."""
        if flat not in self.out.doc["nodes"]:
            self.out.doc["nodes"][flat] = {BROKEN: True, "inputs": inputs}
            self.out.origins[flat] = path
            self.out.scopes[flat] = scope

    def block_size(self, name: str, stack: tuple[str, ...] = ()) -> int:
        """How many nodes one instance of block ``name`` expands to (capped just past MAX_NODES).

        Counted once per block before anything is expanded, so a 2 KB file
        asking for 10**8 nodes is refused in linear time.
        """
        cached = self._sizes.get(name)
        if cached is not None:
            return cached
        block = self.blocks.get(name)
        if block is None or BROKEN in block or name in stack or len(stack) > MAX_DEPTH:
            return 1
        total = 0
        for node in block["nodes"].values():
            total += self.node_size(node, (*stack, name))
            if total > MAX_NODES:
                break
        self._sizes[name] = min(total, MAX_NODES + 1)
        return self._sizes[name]

    def node_size(self, node: Mapping[str, Any], stack: tuple[str, ...] = ()) -> int:
        """How many flat nodes ``node`` becomes: 1, or its block's size times its copies."""
        if not self.expandable(node):
            return 1
        copies = node.get("repeat", 1)
        return self.block_size(node["block"], stack) * (copies if isinstance(copies, int) else 1)

    # long: the refusals, the parameters, then one expansion per copy (`repeat`), each fed by the one before.
    def instantiate(
        self,
        nid: str,
        node: Mapping[str, Any],
        env: Mapping[str, str],
        outputs: Mapping[str, dict[str, str]],
        where: Where,
        shared_as: str | None,
        stack: tuple[str, ...],
        valid: LazyNames,
        outer: Params | None,
    ) -> None:
        """Expand one instance of a block into the flat doc, or a placeholder where it cannot be."""
        prefix, path, scope = where
        name = node["block"]
        block: Any = self.blocks.get(name)  # None when unknown: the first refusal
        refused = refusal(self, name, block, path, stack)
        if refused is None:
            refused = self.repeat_refusal(name, block, node, path)
        given = self.bound_inputs(name, block, node["inputs"], path) if refused is None else None
        params, found = bind(name, block, node, path, outer) if given is not None else ({}, [])
        self.problems.extend([*(refused or []), *found])
        if given is None or any(p.code == "arity" for p in found):  # a missing param: nothing to substitute
            self.give_up(nid, node, env, outputs, where, valid)
            return
        inner_env: dict[str, str] = {}
        for port, ref in given.items():
            if port in block["inputs"] and isinstance(ref, str):
                inner_env[port] = self.rewrite_inputs(ref, env, outputs, (*path, "inputs", port), valid)
        copies = node.get("repeat")
        for k in range(1, copies + 1) if isinstance(copies, int) else (None,):
            inst = f"{prefix}{nid}" if k is None else f"{prefix}{nid}{SEP}{k}"
            if shared_as is not None:
                inner_shared: str | None = f"{shared_as}{inst[len(prefix) :]}{SEP}"
            elif block.get("shared_weights", False):
                inner_shared = f"{name}{SEP}"
            else:
                inner_shared = None
            inner = (f"{inst}{SEP}", ("blocks", name, "nodes"), (*scope, (inst, name)))
            self.emit(block["nodes"], inner_env, inner, inner_shared, (*stack, name), params)
            if k is not None:  # the next copy reads this one's output
                (last,) = self.instance_ports(name, f"{inst}{SEP}").values()
                inner_env = {next(iter(block["inputs"])): last}
        self.check_outputs(name, block)
        for port in outputs.get(nid, {}).values():  # a port naming no node (said once, above): a stand-in
            self.placeholder(port.partition(".")[0], [], path, scope)

    def repeat_refusal(self, name: str, block: Any, node: Mapping[str, Any], path: Path) -> list[Problem] | None:
        """``repeat`` chains copies, so the block must take one input and give one output."""
        if "repeat" not in node or (len(block["inputs"]) == 1 and len(block["outputs"]) == 1):
            return None
        message = (
            f"`repeat` chains copies of block `{name}`, each fed by the one before, so it needs one input and "
            f"one output; `{name}` has {len(block['inputs'])} inputs and {len(block['outputs'])} outputs"
        )
        return [Problem((*path, "repeat"), message, "remove `repeat` and write the instances out", "arity")]

    def give_up(
        self,
        nid: str,
        node: Mapping[str, Any],
        env: Mapping[str, str],
        outputs: Mapping[str, dict[str, str]],
        where: tuple[str, tuple[PathPart, ...], tuple[tuple[str, str], ...]],
        valid: LazyNames,
    ) -> None:
        """Stand-ins for an instance that is not expanded, and for its ports, fed by what it was given.

        References to them resolve, and the nodes around are still checked.
        """
        prefix, path, scope = where
        flat_id = f"{prefix}{nid}"
        refs = flat_refs(node.get("inputs"))
        given = self.rewrite_inputs(refs, env, outputs, (*path, "inputs"), valid) if refs else []
        self.placeholder(flat_id, given, path, scope)
        for port in outputs.get(nid, {}).values():
            self.placeholder(port.partition(".")[0], [flat_id], path, scope)

    def bound_inputs(self, name: str, block: Any, given: Any, path: tuple[PathPart, ...]) -> dict[str, Any] | None:
        """An instance's inputs by the block's input name; None (and the problems) when one is missing."""
        wanted = list(block["inputs"])
        if isinstance(given, str) and len(wanted) == 1:
            given = {wanted[0]: given}
        if not isinstance(given, dict):
            self.problems.append(
                Problem(
                    (*path, "inputs"),
                    f"block `{name}` takes named inputs {quote_names(wanted)}",
                    "write an object: " + ", ".join(f'"{w}": ID' for w in wanted),
                    "arity",
                )
            )
            return None
        for extra in sorted(set(given) - set(wanted)):
            near = did_you_mean(extra, wanted)
            self.problems.append(
                Problem(
                    (*path, "inputs", extra),
                    f"block `{name}` has no input `{extra}`",
                    f"did you mean `{near[0]}`?" if near else f"its inputs: {quote_names(wanted)}",
                    "reference",
                )
            )
        missing = [w for w in wanted if w not in given]
        for port in missing:
            message = f"block `{name}` needs input `{port}`"
            self.problems.append(Problem((*path, "inputs"), message, f"its inputs: {quote_names(wanted)}", "arity"))
        # Expanding an instance with a missing input would report every use of that input again.
        return None if missing else given

    def check_outputs(self, name: str, block: Any) -> None:
        """Each output of block ``name`` names one of its nodes (and a port of an inner instance): once per block."""
        if name in self._outputs_checked:
            return
        self._outputs_checked.add(name)
        for port, ref in block["outputs"].items():
            inner, _, sub = ref.partition(".")
            inner_node = block["nodes"].get(inner)
            if inner_node is not None and self.expandable(inner_node):
                self.check_port(name, port, inner, sub, inner_node["block"])
            if inner not in block["nodes"]:
                near = self.node_names(name).near(inner)
                self.problems.append(
                    Problem(
                        ("blocks", name, "outputs", port),
                        f"block `{name}` output `{port}` names no node `{inner}`",
                        f"did you mean `{near[0]}`?" if near else "",
                        "reference",
                    )
                )


# long: expansion, then the checks only the top level needs (clashes, outputs naming instances).
def expand_blocks(doc: Mapping[str, Any], file: str | None = None) -> Expansion:
    """Expand every block instance of a schema-valid spec into plain nodes.

    Args:
        doc: the validated spec (definitions that failed the schema replaced
            by ``broken`` placeholders).
        file: the spec's file name for messages.

    Returns:
        The flat spec, the origin of every generated name, and every problem
        found (``Expansion.problems``).

    Raises:
        GraphError: expansion would pass MAX_NODES (it stops there).
    """
    if "blocks" not in doc and not any("block" in n for n in doc["nodes"].values()):
        return Expansion(dict(doc))
    ex = _Expander(doc)
    env = {i: i for i in doc["inputs"]}
    try:
        planned = 0
        for node in doc["nodes"].values():
            planned += ex.node_size(node)
            if planned > MAX_NODES:
                raise _TooMany
        ex.emit(doc["nodes"], env, ("", ("nodes",), ()), None, ())
    except _TooMany:
        raise GraphError.single(
            ("nodes",),
            f"expanding the blocks gives more than {MAX_NODES:,} nodes",
            "blocks instantiated inside blocks multiply; use fewer instances or a sub-model",
            "limit",
            file,
        ) from None
    top = {n for n in doc["nodes"] if "block" not in doc["nodes"][n]} | set(doc["inputs"])
    for nid in ex.out.origins:
        if nid in top:
            ex.problems.append(
                Problem(
                    ("nodes", nid),
                    f"id `{nid}` clashes with a name generated for a block instance",
                    "rename the node or the instance",
                    "duplicate",
                )
            )
    # Outputs may name a block instance (or `instance.port`).
    outputs = {nid: ex.instance_ports(n["block"], last_copy(nid, n)) for nid, n in doc["nodes"].items() if "block" in n}
    scope = {n: n for n in top}
    for name, out in list(ex.out.doc["outputs"].items()):
        src = out.get("from")
        if not isinstance(src, str):
            continue
        flat = ex.resolve(src, scope, outputs)
        if flat is not None:
            out["from"] = flat
            continue
        inst, _, port = src.partition(".")
        if outputs.get(inst):  # an expanded instance, asked for a port it does not have
            ex.problems.append(port_problem(("outputs", name, "from"), inst, port, ex.ports_index(outputs[inst])))
            del ex.out.doc["outputs"][name]  # reported here; the graph stage would only say "no node"
    errors, ex.out.warnings = check_definitions(ex.blocks)
    ex.out.problems = unique_problems([*errors, *ex.problems])
    return ex.out
