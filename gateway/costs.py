"""What an operation would cost, computed from its document before anything
of it is validated further or run, in one bounded pass.

The pass walks each selection set once: a fragment's figures are computed
the first time it is spread and reused for every other spread (memoised), so
a document whose fragments each spread the next one twice (2^n fields once
expanded) costs n steps here, and is refused because its expanded figures
pass the limits. The work is linear in the size of the document, which the
token limit bounds (`MAX_TOKENS`); nothing is ever expanded.

Figures of an operation (each saturates a little past its limit, so no
number grows without bound):

* `depth`: the deepest field's depth (a root field is at depth 0, as
  strawberry's QueryDepthLimiter counts; spreads and inline fragments add no
  level);
* `fields`: fields the execution would resolve, fragments expanded, lists
  not multiplied;
* `aliases`: aliased fields, fragments expanded;
* `cost`: fields times page sizes: a field's cost is 1 plus its selection's cost
  times its size: the value of its `first` argument (literal, variable, or
  the schema's default) for a paginated field; `LIST_SIZE` for any other
  list of objects; 1 otherwise (a connection's `edges` are not multiplied
  again);
* `credentials`: root mutation fields that test or use a credential
  (`CREDENTIAL_FIELDS`: a password, a refresh or invitation or reset token),
  fragments expanded: at most one may run per request (OWASP: a login per
  request, so that aliases do not multiply guesses past the throttling).

Source of the rule: the OWASP GraphQL Cheat Sheet ("Query limiting (depth,
amount)", "Query cost analysis", "Batching attacks")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)

from services.runtime.views import MAX_PAGE

MAX_DEPTH = 12
MAX_ALIASES = 20
MAX_FIELDS = 500
MAX_COST = 10_000
MAX_CREDENTIALS = 1
LIST_SIZE = 10
"""What an unpaginated list of objects counts for (the lists the schema has
without `first` are short: a hub's co-admins, the professions…)."""

CREDENTIAL_FIELDS = frozenset(
    {
        "login",
        "refreshSession",
        "logout",
        "changePassword",
        "acceptInvitation",
        "requestPasswordReset",
        "resetPassword",
    }
)
"""Root mutation fields that take a password or a secret token (each is one
of the schema's: tests/unit/test_gateway_costs.py)."""

_SATURATE = 4


@dataclass(frozen=True)
class Figures:
    """An operation's (or a selection set's) figures; see the module."""

    depth: int = 0
    fields: int = 0
    aliases: int = 0
    cost: int = 0
    credentials: int = 0

    def capped(self) -> Figures:
        return Figures(
            depth=min(self.depth, MAX_DEPTH * _SATURATE),
            fields=min(self.fields, MAX_FIELDS * _SATURATE),
            aliases=min(self.aliases, MAX_ALIASES * _SATURATE),
            cost=min(self.cost, MAX_COST * _SATURATE),
            credentials=min(self.credentials, MAX_CREDENTIALS * _SATURATE),
        )


@dataclass(frozen=True)
class Refusal:
    """Why an operation is refused before it runs (`limit` names the limit:
    the error's `extensions.limit`)."""

    message: str
    limit: str


class FragmentCycle(Exception):
    pass


class Analysis:
    """The pass over one document (see the module). `steps` counts the
    selections visited: the work done, for tests."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.schema = schema
        self.variables = variables or {}
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.operations = [
            d for d in document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        self.memo: dict[tuple[str, bool], Figures] = {}
        self.active: set[str] = set()
        self.steps = 0

    def operation(self, operation: OperationDefinitionNode) -> Figures:
        root = self.schema.get_root_type(operation.operation)
        return self._selection(operation.selection_set, root, paged=False)

    def fragment(self, name: str) -> Figures:
        return self._fragment(name, paged=False)

    def _fragment(self, name: str, paged: bool) -> Figures:
        key = (name, paged)
        found = self.memo.get(key)
        if found is not None:
            return found
        definition = self.fragments.get(name)
        if definition is None:
            return Figures()  # unknown: the specification's rules say so
        if name in self.active:
            raise FragmentCycle(name)
        self.active.add(name)
        try:
            parent = self.schema.get_type(definition.type_condition.name.value)
            figures = self._selection(definition.selection_set, parent, paged)
        finally:
            self.active.discard(name)
        self.memo[key] = figures
        return figures

    def _selection(self, selection_set: SelectionSetNode, parent: Any, paged: bool) -> Figures:
        depth = fields = aliases = cost = credentials = 0
        for selection in selection_set.selections:
            self.steps += 1
            if isinstance(selection, FieldNode):
                figures = self._field(selection, parent, paged)
            elif isinstance(selection, FragmentSpreadNode):
                figures = self._fragment(selection.name.value, paged)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                figures = self._selection(selection.selection_set, inner, paged)
            else:  # pragma: no cover - graphql-core has no other selection
                continue
            depth = max(depth, figures.depth)
            fields += figures.fields
            aliases += figures.aliases
            cost += figures.cost
            credentials += figures.credentials
        return Figures(depth, fields, aliases, cost, credentials).capped()

    def _field(self, node: FieldNode, parent: Any, paged: bool) -> Figures:
        name = node.name.value
        definition = _field_definition(parent, name)
        credential = int(
            name in CREDENTIAL_FIELDS and parent is not None and parent is self.schema.mutation_type
        )
        alias = int(node.alias is not None)
        if node.selection_set is None:
            return Figures(depth=1, fields=1, aliases=alias, cost=1, credentials=credential)
        size, pages = self._size(node, definition, paged)
        child_type = get_named_type(definition.type) if definition is not None else None
        inner = self._selection(node.selection_set, child_type, pages)
        return Figures(
            depth=inner.depth + 1,
            fields=inner.fields + 1,
            aliases=inner.aliases + alias,
            cost=1 + size * inner.cost,
            credentials=inner.credentials + credential,
        ).capped()

    def _size(
        self, node: FieldNode, definition: GraphQLField | None, paged: bool
    ) -> tuple[int, bool]:
        """(how many times its selection counts, whether its lists are pages)."""
        if definition is not None and "first" in definition.args:
            return self._first(node, definition), True
        if definition is not None and _is_list(definition.type) and not paged:
            return LIST_SIZE, False
        return 1, False

    def _first(self, node: FieldNode, definition: GraphQLField) -> int:
        value: Any = definition.args["first"].default_value
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = argument.value.value
            elif isinstance(argument.value, VariableNode):
                # not given: its default in the operation, or the largest page
                value = self.variables.get(argument.value.name.value, MAX_PAGE)
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = MAX_PAGE
        return max(1, min(number, MAX_PAGE))  # beyond: refused by the field itself


def _field_definition(parent: Any, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None  # a union (only __typename), a scalar, or unknown


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList) and isinstance(
        get_named_type(type_), GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType
    )


def refusal(figures: Figures, name: str) -> Refusal | None:
    """The first limit an operation's figures pass, or None. (`limit` names
    the limit: the error's `extensions.limit`.)"""
    if figures.credentials > MAX_CREDENTIALS:
        return Refusal(
            f"'{name}' has more than {MAX_CREDENTIALS} credential operation (login, "
            "refreshSession, changePassword, …): send one a request",
            "credentials",
        )
    if figures.depth - 1 > MAX_DEPTH:
        return Refusal(f"'{name}' exceeds maximum operation depth of {MAX_DEPTH}", "depth")
    if figures.aliases > MAX_ALIASES:
        return Refusal(f"{figures.aliases} aliases found. Allowed: {MAX_ALIASES}", "aliases")
    if figures.fields > MAX_FIELDS:
        return Refusal(f"'{name}' has more than {MAX_FIELDS} fields, fragments expanded", "fields")
    if figures.cost > MAX_COST:
        return Refusal(
            f"'{name}' would cost more than {MAX_COST} (fields times page sizes): "
            "ask for smaller pages or fewer fields",
            "cost",
        )
    return None


@dataclass(frozen=True)
class Verdict:
    """The pass's answer for a request: the figures of the operation that
    would run (the costliest when it cannot be told), the refusal if any,
    and the work done."""

    figures: Figures
    refused: Refusal | None
    steps: int


def analyse(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> Verdict:
    """Figures and refusal of every operation of the document (each must
    keep to the limits); the figures returned are those of the operation
    named, or of the costliest."""
    analysis = Analysis(schema, document, variables)
    chosen = Figures()
    for operation in analysis.operations:
        name = operation.name.value if operation.name else "anonymous"
        try:
            figures = analysis.operation(operation)
        except FragmentCycle as cycle:
            return Verdict(
                Figures(),
                Refusal(f'Cannot spread fragment "{cycle}" within itself.', "cycle"),
                analysis.steps,
            )
        refused = refusal(figures, name)
        if refused is not None:
            return Verdict(figures, refused, analysis.steps)
        if (operation_name is not None and name == operation_name) or (
            operation_name is None and figures.cost > chosen.cost
        ):
            chosen = figures
    # fragments no operation spreads are refused by the specification's
    # rules, which still walk them: they keep to the limits too (their
    # figures are mostly known already)
    for fragment in analysis.fragments:
        try:
            figures = analysis.fragment(fragment)
        except FragmentCycle as cycle:
            return Verdict(
                Figures(),
                Refusal(f'Cannot spread fragment "{cycle}" within itself.', "cycle"),
                analysis.steps,
            )
        refused = refusal(figures, f"fragment {fragment}")
        if refused is not None:
            return Verdict(figures, refused, analysis.steps)
    return Verdict(chosen, None, analysis.steps)
