"""Read YAML keeping where each value is: every node's line and column, by its path.

PyYAML composes the node tree (which carries marks); this module builds plain values from it
itself, so that it can refuse what a pipeline file must not hold (duplicate keys, aliases that
would multiply a document, non-string keys) and remember the position of every value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from stageline.domain.errors import InvalidInput, excerpt

YAML_MAX_CHARS = 1024 * 1024
"""The largest pipeline file read: far more than any pipeline needs."""
MAX_NESTING = 64

YamlPath = tuple[str | int, ...]
"""Where a value is in a document: mapping keys and sequence indexes from the root."""


@dataclass(frozen=True)
class Mark:
    """A position in the text, 1-based as editors show it."""

    line: int
    column: int


class InvalidYaml(InvalidInput):
    """A pipeline file that cannot be used; the message starts with `line L, column C:`."""

    def __init__(self, problem: str, *, mark: Mark, where: str = "") -> None:
        prefix = f"line {mark.line}, column {mark.column}"
        super().__init__(f"{prefix}: {where}: {problem}" if where else f"{prefix}: {problem}")
        self.mark = mark
        self.where = where
        self.problem = problem


def shown_path(path: YamlPath) -> str:
    """`stages[0].jobs.build.steps[1]`: a path as a message names it."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(document)"


@dataclass(frozen=True)
class Document:
    """A YAML document's value and the position of each of its values and keys."""

    value: Any
    values: dict[YamlPath, Mark]
    keys: dict[YamlPath, Mark]

    def mark(self, path: YamlPath, *, key: bool = False) -> Mark:
        """Where `path` is, or its nearest enclosing value that exists."""
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return Mark(1, 1)

    def error(self, path: YamlPath, problem: str, *, key: bool = False) -> InvalidYaml:
        return InvalidYaml(problem, mark=self.mark(path, key=key), where=shown_path(path))


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


_SCALARS = (str, int, float, bool, type(None))
# libyaml's parser when PyYAML was built with it (ten times faster, the same marks)
_Loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


def load(text: str) -> Document:
    """Parse one YAML document; `InvalidYaml` at the line and column of the first problem."""
    if len(text) > YAML_MAX_CHARS:
        raise InvalidYaml(f"is longer than {YAML_MAX_CHARS} characters", mark=Mark(1, 1))
    loader = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = Mark(mark.line + 1, mark.column + 1) if mark else Mark(1, 1)
            problem = error.problem or error.context or "is not valid YAML"
            raise InvalidYaml(f"not valid YAML: {problem}", mark=where) from None
        except yaml.YAMLError as error:
            raise InvalidYaml(f"not valid YAML: {error}", mark=Mark(1, 1)) from None
        except RecursionError:
            raise InvalidYaml("nests too deeply", mark=Mark(1, 1)) from None
        if root is None:
            raise InvalidYaml("the document is empty", mark=Mark(1, 1))
        values: dict[YamlPath, Mark] = {}
        keys: dict[YamlPath, Mark] = {}
        value = _Builder(loader, values, keys).build(root)
        return Document(value, values, keys)
    finally:
        loader.dispose()


class _Builder:
    def __init__(
        self,
        loader: yaml.SafeLoader | yaml.CSafeLoader,
        values: dict[YamlPath, Mark],
        keys: dict[YamlPath, Mark],
    ) -> None:
        self.loader = loader
        self.values = values
        self.keys = keys
        self.seen: set[int] = set()

    def build(self, node: yaml.Node, path: YamlPath = ()) -> Any:
        if len(path) > MAX_NESTING:
            raise InvalidYaml(f"nests deeper than {MAX_NESTING} levels", mark=_mark(node))
        if id(node) in self.seen:
            # an alias: refused, so that a few lines cannot expand into a huge document
            raise InvalidYaml(
                "this value is repeated by an alias (*name): aliases are not supported",
                mark=_mark(node),
            )
        self.seen.add(id(node))
        self.values[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    raise InvalidYaml("keys must be plain strings", mark=_mark(key_node))
                key = key_node.value
                if key in result:
                    raise InvalidYaml(
                        f"duplicate key '{excerpt(key)}'", mark=_mark(key_node), where=""
                    )
                self.keys[(*path, key)] = _mark(key_node)
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        value = self.loader.construct_object(node)
        # dates and binary data are read as the text they were written as
        return value if isinstance(value, _SCALARS) else str(node.value)
