"""From a spec string to a ready judge."""

from __future__ import annotations

from heldout._registry import Registry
from heldout.config import Settings
from heldout.judges._base import Judge
from heldout.judges._spec import JudgeSpec

providers: Registry[Judge] = Registry("judge provider", Judge)
providers.register("openai", "heldout.judges._openai:OpenAIJudge", aliases=("ollama",))
providers.register("local", "heldout.judges._local:LocalJudge")


def make_judge(spec: str | JudgeSpec, settings: Settings | None = None) -> Judge:
    """Build the judge named by ``spec`` (see :mod:`heldout.judges._spec` for the grammar).

    Raises:
        ConfigError: The spec is malformed or names an unknown provider.
    """
    parsed = spec if isinstance(spec, JudgeSpec) else JudgeSpec.parse(spec)
    cls = providers.get(parsed.provider)
    return cls.from_spec(parsed, settings or Settings())
