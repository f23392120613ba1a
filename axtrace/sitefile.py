"""The sites file as text: every problem in it at once, each on its line, and its JSON Schema.

Pure: no Prefect server, no database, no network. :func:`check` is what ``axtrace sites check``
prints; ``sites apply``, ``axtrace up`` and ``serve`` read the file through :func:`read` too
(via :func:`axtrace.sites.load_sites`), so they refuse exactly the files ``check`` refuses,
with the same messages::

    text ─ _load ─▶ data, the line of every key, duplicate keys          ─┐
         ─ SitesFile.model_validate ─▶ every error (not only the first)  ─┼▶ [Problem, ...]
         ─ _warnings(sites) ─▶ valid but likely wrong                    ─┘

A problem names the site, the dotted path inside its entry and the line, e.g.
``deployments/sites.yaml:12: site 'berlin-plant': policy.notification_blok: unknown field;
did you mean 'notification_block'?``.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from difflib import get_close_matches
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import ErrorDetails, core_schema

from axtrace.vocabulary import SITE_SLUG
from axtrace_blocks import SEVERITIES, OwnershipPolicy

Key = tuple[str, ...]
"""A path of keys and list indices from the top of the file, e.g. ('sites', 'x', 'policy')."""

NEEDS_SITES = "needs a 'sites:' mapping of site slug to policy"
NEEDS_POLICY = "needs a 'policy:' mapping"
DURATION = (r"^\s*\d+(\.\d+)?\s*[smhd]\s*$"
            r"|^P(\d+(\.\d+)?[YMWD])*(T(\d+(\.\d+)?[HMS])+)?$")
"""Durations as a sites file writes them: 30s, 15m, 2h, 1d or ISO 8601 (seconds as numbers)."""


# --------------------------------------------------------------------------- the models


class SiteEntry(BaseModel):
    """One site: what its AI watches, and who owns its alerts."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(
        default="", description="What the site's AI watches; shown on its deployment.",
    )
    policy: OwnershipPolicy = Field(
        description="The site's ownership policy, saved as the block document named after it.",
    )


class SitesFile(BaseModel):
    """The sites that run AxTrace's standard response, and who owns AI alerts at each. Each
    key is a site slug; `axtrace sites apply` saves its policy as block `<site>` and creates
    deployment `respond-to-alert/<site>`."""

    model_config = ConfigDict(extra="forbid", title="AxTrace sites file")

    sites: dict[str, SiteEntry] = Field(
        min_length=1,
        description="Site slug (lowercase letters, digits, hyphens) to the site's entry.",
        json_schema_extra={"propertyNames": {"pattern": SITE_SLUG}},
    )

    @model_validator(mode="before")
    @classmethod
    def _site_from_key(cls, data: Any) -> Any:
        """The key names the site: it becomes the ``site`` of the site's policy."""
        sites = data.get("sites") if isinstance(data, dict) else None
        if not isinstance(sites, dict):
            return data
        return {**data, "sites": {slug: _with_site(slug, body) for slug, body in sites.items()}}


def _with_site(slug: Any, body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("policy"), dict):
        return {**body, "policy": {**body["policy"], "site": slug}}
    return body


@dataclass(frozen=True)
class SiteSpec:
    site: str
    description: str
    policy: OwnershipPolicy


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong (``error``) or likely wrong (``warning``) in a sites file."""

    severity: Literal["error", "warning"]
    file: str
    line: int
    message: str
    site: str | None = None
    field: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checked:
    """A sites file read: its sites (none when it has an error), every problem, key lines."""

    file: str
    specs: list[SiteSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    lines: Mapping[Key, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def at(self, severity: Literal["error", "warning"], site: str | None, where: str,
           text: str) -> Problem:
        """A problem at ``where`` (dotted, inside the site's entry), on the line of its key."""
        key = ("sites", site, *where.split(".")) if site is not None else tuple(where.split("."))
        return Problem(severity, self.file, line_of(self.lines, key), _message(site, where, text),
                       site, where)


def _message(site: str | None, where: str, text: str) -> str:
    prefix = f"site '{site}': " if site is not None else ""
    return f"{prefix}{where}: {text}" if where else f"{prefix}{text}"


def line_of(lines: Mapping[Key, int], key: Sequence[str]) -> int:
    """The line of ``key``, or of the nearest key above it that the file has (a missing one)."""
    for end in range(len(key), 0, -1):
        if tuple(key[:end]) in lines:
            return lines[tuple(key[:end])]
    return 1


def check(text: str, file: str) -> list[Problem]:
    """Every error and warning of a sites file, in line order."""
    return read(text, file).problems


def read(text: str, file: str) -> Checked:
    """Read a sites file: its sites when it has no error, and every problem in it."""
    try:
        data, lines, duplicates = _load(text)
    except yaml.YAMLError as exc:
        return Checked(file, problems=[_yaml_error(file, exc)])
    checked = Checked(file, lines=lines)
    errors = [_duplicate(checked, *d) for d in duplicates]
    errors += [*_site_in_policy(checked, data), *_unknown_severities(checked, data)]
    try:
        model = SitesFile.model_validate(data)
    except ValidationError as exc:
        errors += [_from_error(checked, e) for e in exc.errors()]
        return replace(checked, problems=_ordered(errors))
    specs = [SiteSpec(slug, entry.description, entry.policy) for slug, entry in model.sites.items()]
    problems = _ordered(errors + list(_warnings(checked, specs)))
    return replace(checked, specs=[] if errors else specs, problems=problems)


def _yaml_error(file: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    said = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    text = ", ".join(str(part) for part in said if part) or str(exc)
    return Problem("error", file, mark.line + 1 if mark else 1, f"not valid YAML: {text}")


def _ordered(problems: list[Problem]) -> list[Problem]:
    """In line order, errors first, each once (a problem may be found twice, see below)."""
    unique = {(p.line, p.message): p for p in problems}
    return sorted(unique.values(), key=lambda p: (p.line, p.severity != "error"))


# --------------------------------------------------------------------------- YAML with lines


class _Loader(yaml.SafeLoader):
    """A SafeLoader that keeps every duplicate key it meets (plain loaders keep the last one
    silently) as (mapping node, duplicate key node, first key node)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[yaml.Node, yaml.Node, yaml.Node]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden by the keys beside it
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: SafeLoader refuses it below
            if seen is not key_node:
                self.duplicates.append((node, key_node, seen))
        return super().construct_mapping(node, deep=deep)


def _load(text: str) -> tuple[Any, dict[Key, int], list[tuple[Key, int, int]]]:
    """The data, the line of every key path, and each duplicate as (path, line, first line)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, []
        lines: dict[Key, int] = {}
        paths: dict[int, Key] = {}
        _walk(node, (), lines, paths)
        data = loader.construct_document(node)
        duplicates = [((*paths.get(id(mapping), ()), str(key.value)), key.start_mark.line + 1,
                       first.start_mark.line + 1) for mapping, key, first in loader.duplicates]
        return data, lines, duplicates
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: Key, lines: dict[Key, int], paths: dict[int, Key],
          depth: int = 0) -> None:
    """Record the line of every key and list item below ``node`` (a later duplicate wins, as
    it does in the data)."""
    paths[id(node)] = path
    if depth > 64:
        return  # an alias that contains itself
    if isinstance(node, yaml.MappingNode):
        children = [((*path, str(k.value)), k, v) for k, v in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = [((*path, str(i)), item, item) for i, item in enumerate(node.value)]
    else:
        return
    for key, marked, value in children:
        lines[key] = marked.start_mark.line + 1
        _walk(value, key, lines, paths, depth + 1)


# --------------------------------------------------------------------------- errors


def _duplicate(checked: Checked, key: Key, line: int, first: int) -> Problem:
    site = key[1] if len(key) >= 2 and key[0] == "sites" else None
    where = ".".join(key[2:]) if site is not None else ".".join(key)
    what = "duplicate site" if site is not None and not where else "duplicate key"
    text = f"{what}; first at line {first} (YAML would keep only the last silently)"
    return Problem("error", checked.file, line, _message(site, where, text), site, where)


def _policies(data: Any) -> Iterator[tuple[str, dict[Any, Any]]]:
    """Each site's raw policy mapping, before validation."""
    sites = data.get("sites") if isinstance(data, dict) else None
    for slug, body in (sites.items() if isinstance(sites, dict) else ()):
        policy = body.get("policy") if isinstance(body, dict) else None
        if isinstance(policy, dict):
            yield str(slug), policy


def _site_in_policy(checked: Checked, data: Any) -> Iterator[Problem]:
    for slug, policy in _policies(data):
        if "site" in policy:
            yield checked.at("error", slug, "policy.site",
                             "unknown field; the key of the site's entry names the site")


def _unknown_severities(checked: Checked, data: Any) -> Iterator[Problem]:
    """Misspelled severities, found before validation: the policy's own check of them runs
    only once every override inside is valid, and a file's errors are all shown at once."""
    for slug, policy in _policies(data):
        overrides = policy.get("severity_overrides")
        for severity in overrides if isinstance(overrides, dict) else ():
            if severity not in SEVERITIES:
                close = get_close_matches(str(severity), SEVERITIES, n=1)
                yield checked.at("error", slug, f"policy.severity_overrides.{severity}",
                                 _unknown_severity(f"did you mean '{close[0]}'? " if close else ""))


def _unknown_severity(hint: str) -> str:
    return f"unknown severity; {hint}expected one of {', '.join(SEVERITIES)}"


def _from_error(checked: Checked, error: ErrorDetails) -> Problem:
    """A pydantic error as a problem naming the site, the path inside its entry and the line."""
    loc = tuple(str(part) for part in error["loc"] if part != "[key]")
    if len(loc) <= 1:
        if error["type"] in ("missing", "dict_type", "too_short", "model_type"):
            return Problem("error", checked.file, line_of(checked.lines, loc), NEEDS_SITES)
        return checked.at("error", None, ".".join(loc), _describe(error, loc))
    site, inside = loc[1], loc[2:]
    if inside in ((), ("policy",)) and error["type"] in ("missing", "model_type", "dict_type"):
        return checked.at("error", site, "", NEEDS_POLICY)
    if inside == ("policy", "site"):
        return checked.at("error", site, "", _text(error))  # the site's key is not a slug
    if error["type"] == "unknown_severity":
        inside = (*inside, str(error.get("ctx", {}).get("severity")))
    return checked.at("error", site, ".".join(inside), _describe(error, loc))


def _describe(error: ErrorDetails, loc: Key) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = [f for f in fields_at(loc[:-1]) if not (f == "site" and loc[-2:-1] == ("policy",))]
        close = get_close_matches(loc[-1], known, n=1)
        return (f"unknown field; did you mean '{close[0]}'?" if close
                else f"unknown field; expected one of {', '.join(known)}")
    if kind == "missing":
        return "required field missing"
    if kind == "unknown_severity":
        return _unknown_severity(error.get("ctx", {}).get("hint", ""))
    shown = error.get("input")
    got = f", got {shown!r}" if isinstance(shown, str | int | float | bool) else ""
    return _text(error) + got


def _text(error: ErrorDetails) -> str:
    return error["msg"].removeprefix("Value error, ")


def fields_at(loc: Sequence[str]) -> list[str]:
    """The field names of the model at ``loc`` in a sites file (empty when none is there);
    found from the models' annotations, so a model added to the policy needs nothing here."""
    annotation: Any = SitesFile
    for part in loc:
        annotation = _step(_unwrap(annotation), part)
    model = _unwrap(annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _step(annotation: Any, part: str) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        info = annotation.model_fields.get(part)
        return info.annotation if info else None
    args = get_args(annotation)
    if get_origin(annotation) in (list, tuple, set, frozenset, Sequence) and args:
        return args[0]
    if get_origin(annotation) in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


def _unwrap(annotation: Any) -> Any:
    """``X`` from ``Annotated[X, ...]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in get_args(annotation) if a is not type(None)]
            annotation = next((a for a in options if get_origin(a) or _is_model(a)), options[0])
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


# --------------------------------------------------------------------------- warnings


def _warnings(checked: Checked, specs: list[SiteSpec]) -> Iterator[Problem]:
    for spec in specs:
        yield from _slow_levels(checked, spec)
        yield from _repeated_responders(checked, spec)
        yield from _channel_form(checked, spec)
        yield from _unreadable_calendars(checked, spec)


def _slow_levels(checked: Checked, spec: SiteSpec) -> Iterator[Problem]:
    """A level whose acknowledge deadline is longer than the resolve deadline: the alert is
    overdue for resolution before that level would escalate."""
    policy = spec.policy
    resolve = policy.resolve_within
    for i, level in enumerate(policy.escalation_chain):
        if level.acknowledge_within > resolve:
            yield checked.at(
                "warning", spec.site, f"policy.escalation_chain.{i}.acknowledge_within",
                f"acknowledge deadline {fmt_duration(level.acknowledge_within)} is longer than "
                f"the resolve deadline {fmt_duration(resolve)}")
    for severity, override in policy.severity_overrides.items():
        ack = override.acknowledge_within
        longest = ack or max(lvl.acknowledge_within for lvl in policy.escalation_chain)
        severity_resolve = override.resolve_within or resolve
        if (ack or override.resolve_within) and longest > severity_resolve:
            yield checked.at(
                "warning", spec.site, f"policy.severity_overrides.{severity}",
                f"for {severity} alerts an acknowledge deadline ({fmt_duration(longest)}) is "
                f"longer than the resolve deadline {fmt_duration(severity_resolve)}")


def _repeated_responders(checked: Checked, spec: SiteSpec) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, level in enumerate(spec.policy.escalation_chain):
        for j, name in enumerate(level.responders):
            if name in first:
                earlier = spec.policy.escalation_chain[first[name]]
                label = f" ({earlier.name})" if earlier.name else ""
                yield checked.at(
                    "warning", spec.site, f"policy.escalation_chain.{i}.responders.{j}",
                    f"responder '{name}' is also in level {first[name] + 1}{label} of this chain")
            else:
                first[name] = i


def _channel_form(checked: Checked, spec: SiteSpec) -> Iterator[Problem]:
    channel = spec.policy.notification_block
    if channel and "/" not in channel:
        yield checked.at("warning", spec.site, "policy.notification_block",
                         f"'{channel}' is not '<block-type-slug>/<name>', e.g. "
                         "'slack-webhook/berlin-ops': notifications will fail")


def _unreadable_calendars(checked: Checked, spec: SiteSpec) -> Iterator[Problem]:
    """A calendar file that cannot be read now (a URL is not fetched here): valid, but until
    it can be read the level falls back to its responders, or is skipped without any."""
    from axtrace import oncall

    for i, level in enumerate(spec.policy.escalation_chain):
        source = level.oncall_calendar
        if source is None or oncall.is_url(source):
            continue
        try:
            oncall.read_calendar(source, allow_private=False)
        except Exception as exc:  # any reason the file cannot be used: said in the warning
            fallback = (f"falls back to its responders ({', '.join(level.responders)})"
                        if level.responders else "is skipped (it has no responders)")
            yield checked.at(
                "warning", spec.site, f"policy.escalation_chain.{i}.oncall_calendar",
                f"cannot read calendar file '{source}' ({oncall.why_unreadable(source, exc)}); "
                f"until it can be read, level {i + 1} {fallback}")


def fmt_duration(value: timedelta | float) -> str:
    """``20s``, ``15m``, ``2h``, ``1d`` when exact, else seconds."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# --------------------------------------------------------------------------- schema


class _FileSchema(GenerateJsonSchema):
    """Durations as the file writes them (the block's UI form keeps ISO 8601 durations)."""

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> JsonSchemaValue:
        return {"anyOf": [{"type": "string", "pattern": DURATION},
                          {"type": "number", "exclusiveMinimum": 0}]}


_BLOCK_KEYS = ("block_type_slug", "secret_fields", "block_schema_references")


def schema() -> dict[str, Any]:
    """The JSON Schema of the sites file, generated from :class:`SitesFile` and the policy
    block's models; a policy has no ``site`` field here (the site's key names it)."""
    generated = SitesFile.model_json_schema(schema_generator=_FileSchema)
    policy = generated["$defs"]["OwnershipPolicy"]
    del policy["properties"]["site"]
    policy["required"].remove("site")
    for key in _BLOCK_KEYS:
        policy.pop(key, None)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **generated}
