"""The workflow file format (SPEC section 2) as immutable pydantic models.

Field names are snake_case in Python and camelCase in files (`retry_policy` <-> `retryPolicy`);
unknown keys are rejected so a typo never silently changes behaviour. Cross-field rules that
need the whole file (unknown dependencies, cycles, placeholders) live in `validation.py`.

The class docstrings are also the descriptions of `ax workflow schema`, which editors show
to people writing files: they speak of the file's names (`maxRetries`, `if`), never of the
Python ones; each property's title is its name in the file.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import ComputedFieldInfo, FieldInfo
from pydantic_core import PydanticCustomError

from automatosx.errors import ErrorKind

ProviderName = Literal[
    "claude-code", "gemini-cli", "codex", "openai", "anthropic", "local", "command", "python"
]
StepKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
WorkflowName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,128}$")]
AGENT_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
AgentName = Annotated[str, StringConstraints(pattern=AGENT_NAME_PATTERN)]
_AGENT_NAME = re.compile(AGENT_NAME_PATTERN)
PositiveMs = Annotated[int, Field(gt=0)]


def _title_in_file(name: str, info: FieldInfo | ComputedFieldInfo) -> str:
    """A property's JSON Schema title: its key in the file (`timeoutMs`), not pydantic's
    title-cased Python name ("Timeout Ms")."""
    return info.alias or to_camel(name)


class FileModel(BaseModel):
    """Base of every model read from a file: camelCase keys, no extras, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        field_title_generator=_title_in_file,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=False,
    )


class RetryPolicy(FileModel):
    """How a failed attempt is retried. Without `retryableErrors` every error kind is
    retried; without `maxRetries` the workflow's `config.maxRetries` applies, so a policy
    that only sets a delay keeps the workflow's retries."""

    max_retries: Annotated[int, Field(ge=0, le=100)] | None = None
    retry_delay_ms: Annotated[int, Field(ge=0)] = 1000
    retry_backoff_multiplier: Annotated[float, Field(ge=1.0, le=100.0)] = 2.0
    retryable_errors: list[ErrorKind] | None = None


class CacheSpec(FileModel):
    """Reuse a step's earlier answer to the same request: without `ttlMs` an entry never
    expires (ax cache prune removes old ones)."""

    ttl_ms: PositiveMs | None = None


def _cache_form(value: Any) -> str | None:
    """Which form a `cache` value has: a switch or a map (anything else: one error)."""
    if isinstance(value, bool):
        return "switch[bool]"
    if isinstance(value, dict | CacheSpec):
        return "map[CacheSpec]"
    return None


# Tagged so that a bad value gets one error at its own path (`steps[0].cache.ttlMs`), not
# one per member of the union; the tags look like pydantic's internal names, which paths
# leave out (`validation._is_internal`).
CacheSetting = Annotated[
    Annotated[bool, Tag("switch[bool]")] | Annotated[CacheSpec, Tag("map[CacheSpec]")],
    Discriminator(
        _cache_form,
        custom_error_type="cache_setting",
        custom_error_message="cache is true, false or {ttlMs: N} (N > 0)",
    ),
]


class WorkflowConfig(FileModel):
    """Execution-wide settings; every field has the contract's default. `cache` applies to
    every agent step that does not set its own."""

    timeout: PositiveMs | None = None
    max_retries: Annotated[int, Field(ge=0, le=100)] = 0
    checkpoint_interval: PositiveMs = 60000
    parallelism: Annotated[int, Field(ge=1, le=10000)] = 4
    continue_on_error: bool = False
    max_for_each_items: Annotated[int, Field(ge=1, le=100000)] = 1000
    cache: CacheSetting = False


ItemName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class ForEachSpec(FileModel):
    """Run a step once per element of a list evaluated when the step is ready."""

    items: Annotated[str, StringConstraints(min_length=1)]  # CEL, must yield a list
    as_: ItemName = Field(default="item", alias="as")  # the element's name in templates
    max_parallel: Annotated[int, Field(ge=1, le=10000)] | None = None  # default: parallelism


class ApprovalSpec(FileModel):
    """A person decides: the step waits (for ax workflow approve or reject) while the rest
    of the workflow goes on. Past `timeoutMs`, `onTimeout` decides."""

    message: Annotated[str, StringConstraints(min_length=1)]
    timeout_ms: PositiveMs | None = None
    on_timeout: Literal["reject", "approve"] = "reject"


StepKind = Literal["agent", "workflow", "approval"]


class AgentSpec(FileModel):
    """An agent: who answers a step, served by one provider or an ordered fallback list."""

    provider: ProviderName | None = None
    providers: list[ProviderName] | None = None
    model: str | None = None
    system_prompt: str | None = None
    role: str | None = None
    description: str | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    timeout_ms: PositiveMs | None = None
    env: dict[str, str] = Field(default_factory=dict)
    command: list[str] | None = None
    callable: Annotated[str, StringConstraints(pattern=r"^[\w.]+:[\w.]+$")] | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    model_path: str | None = None

    def provider_order(self) -> list[ProviderName]:
        """The providers to try, in order (`providers` wins over `provider`)."""
        if self.providers:
            return list(self.providers)
        return [self.provider] if self.provider else []


class StepSpec(FileModel):
    """One step, run once its dependencies complete: a templated `prompt` sent to an
    `agent`, a sub-workflow (`workflow`, its context from `with`), or an `approval` a
    person gives.

    `if` is a CEL expression over `context` and upstream `steps`, evaluated when the step
    is ready (false: the step is skipped, its dependents run)."""

    key: StepKey
    agent: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    prompt: str | None = None
    workflow: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None
    with_: dict[str, Any] | None = Field(default=None, alias="with")  # the child's context
    approval: ApprovalSpec | None = None
    cache: CacheSetting | None = None  # default: config.cache
    dependencies: list[StepKey] = Field(default_factory=list)
    condition: Annotated[str, StringConstraints(min_length=1)] | None = Field(
        default=None, alias="if"
    )  # the file's `if` (a Python keyword)
    agent_choices: list[AgentName] | None = None  # the agents an `agent` template may name
    for_each: ForEachSpec | None = None
    parallel: bool = True
    optional: bool = False
    timeout_ms: PositiveMs | None = None
    retry_policy: RetryPolicy | None = None
    output_schema: dict[str, Any] | None = None

    @field_validator("agent")
    @classmethod
    def _agent_name_or_template(cls, value: str | None) -> str | None:
        """An agent name, or a template (`{{triage.reviewer}}`) that renders to one of
        `agentChoices` when the step starts (validation checks the pairing)."""
        if value is None or "{{" in value or _AGENT_NAME.match(value):
            return value
        raise PydanticCustomError(
            "string_pattern_mismatch",
            "String should match pattern '{pattern}'",
            {"pattern": AGENT_NAME_PATTERN},
        )

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        """A step is exactly one of: an agent with a prompt, a workflow, an approval."""
        problem = kind_problem(
            agent=self.agent is not None,
            prompt=self.prompt is not None,
            workflow=self.workflow is not None,
            approval=self.approval is not None,
            with_=self.with_ is not None,
            agent_choices=self.agent_choices is not None,
        )
        if problem:
            raise PydanticCustomError("step_kind", problem)
        return self

    @property
    def kind(self) -> StepKind:
        if self.workflow is not None:
            return "workflow"
        if self.approval is not None:
            return "approval"
        return "agent"

    @property
    def does(self) -> str:
        """What the step does, in a few words, for graphs and tables: its agent (or agent
        template), `workflow ./publish.yaml`, or `approval`."""
        if self.workflow is not None:
            return f"workflow {self.workflow}"
        if self.approval is not None:
            return "approval"
        return self.agent or ""

    @property
    def agent_is_template(self) -> bool:
        return self.agent is not None and "{{" in self.agent

    @property
    def local_names(self) -> frozenset[str]:
        """Names its templates may use besides steps and context: a forEach step's item
        (`item`, or its `as`) and `index`."""
        if self.for_each is None:
            return frozenset()
        return frozenset({self.for_each.as_, "index"})


def kind_problem(
    *,
    agent: bool,
    prompt: bool,
    workflow: bool,
    approval: bool,
    with_: bool = False,
    agent_choices: bool = False,
) -> str | None:
    """What is wrong with the fields that say what a step does, if anything: it sends a
    prompt to an agent, runs a workflow, or waits for an approval, exactly one of them."""
    kinds = [
        name
        for name, given in (
            ("agent", agent or prompt),
            ("workflow", workflow),
            ("approval", approval),
        )
        if given
    ]
    if len(kinds) > 1:
        fields = " and ".join(f"'{k}'" for k in kinds)
        return (
            f"a step has {fields}: it is one of an agent step (agent and prompt), a "
            "sub-workflow (workflow) or an approval (approval)"
        )
    if not kinds:
        return "a step needs an agent and a prompt, a workflow, or an approval"
    if kinds == ["agent"] and not (agent and prompt):
        missing = "prompt" if agent else "agent"
        return f"an agent step needs '{missing}' too"
    if with_ and not workflow:
        return "'with' is the context of a sub-workflow: it needs 'workflow'"
    if agent_choices and not agent:
        return "'agentChoices' belongs to an agent step"
    return None


class WorkflowDefinition(FileModel):
    """A workflow: named steps, each sending a prompt to an agent once the steps it
    depends on complete."""

    # Validated field by field here; `validation.validate_document` adds the rules that span
    # fields (dependencies, cycles, placeholders).

    name: WorkflowName
    description: str | None = None
    version: str = "1.0.0"
    author: str | None = None
    tags: list[str] = Field(default_factory=list)
    config: WorkflowConfig = Field(default_factory=WorkflowConfig)
    agents: dict[AgentName, AgentSpec] = Field(default_factory=dict)
    steps: Annotated[list[StepSpec], Field(min_length=1)]

    def step(self, key: str) -> StepSpec:
        for step in self.steps:
            if step.key == key:
                return step
        raise KeyError(key)

    def to_data(self) -> dict[str, Any]:
        """The file form (camelCase, defaults omitted) that loads back to an equal model."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
