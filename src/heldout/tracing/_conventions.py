"""The semantic conventions: what a span's attributes and events say it did.

Two conventions are read, OpenInference first (its attributes are the more specific
when a span carries both):

* **OpenInference** (``openinference.span.kind``): ``input.value``, ``output.value``,
  ``llm.model_name``, ``llm.input_messages.<i>.message.*``,
  ``llm.output_messages.<i>.message.*`` with their ``tool_calls``,
  ``llm.token_count.*``, ``retrieval.documents.<i>.document.content``, ``tool.name``,
  ``session.id``.
* **OpenTelemetry GenAI** (``gen_ai.*``): ``gen_ai.operation.name``,
  ``gen_ai.request.model`` / ``gen_ai.response.model``, ``gen_ai.usage.*`` (and the
  older ``prompt_tokens`` / ``completion_tokens``), messages as
  ``gen_ai.input.messages`` / ``gen_ai.output.messages``, as the older indexed
  ``gen_ai.prompt.<i>.*`` / ``gen_ai.completion.<i>.*`` attributes, or as span events
  (``gen_ai.user.message``, ``gen_ai.choice``, ``gen_ai.content.prompt``, ...),
  ``gen_ai.tool.*``, ``gen_ai.conversation.id``.

A span that says nothing of either is ``other`` with no facts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from heldout.tracing._models import SpanEvent, SpanFacts, SpanRecord, SpanRole, TokenUsage, ToolCall

_OPENINFERENCE_ROLES: dict[str, SpanRole] = {
    "LLM": "llm",
    "RETRIEVER": "retriever",
    "TOOL": "tool",
    "CHAIN": "chain",
    "AGENT": "agent",
    "EMBEDDING": "embedding",
    "RERANKER": "reranker",
    "GUARDRAIL": "guardrail",
}
_GENAI_ROLES: dict[str, SpanRole] = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "retrieval": "retriever",
}
_INPUT_EVENTS = {
    "gen_ai.user.message",
    "gen_ai.system.message",
    "gen_ai.tool.message",
    "gen_ai.content.prompt",
}
_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.tool.message": "tool"}
_OUTPUT_EVENTS = {"gen_ai.choice", "gen_ai.assistant.message", "gen_ai.content.completion"}

Message = dict[str, Any]


def span_messages(span: SpanRecord) -> tuple[list[Message], list[Message]]:
    """The chat messages a span sent to the model and got back, each a dict with
    ``role``, ``content`` (text or None), ``tool_calls`` (ToolCalls) and
    ``tool_call_id`` (for a tool result), in order."""
    a = span.attributes
    in_messages = _indexed_messages(a, "llm.input_messages", "message.") or _genai_input(span)
    out_messages = _indexed_messages(a, "llm.output_messages", "message.") or _genai_output(span)
    return in_messages, out_messages


def tool_run(span: SpanRecord) -> ToolCall | None:
    """The call a tool span ran (name, arguments, call id), or None for another span.

    OpenInference puts the arguments in ``input.value`` (``tool.parameters`` is the
    tool's schema), GenAI in ``gen_ai.tool.call.arguments``.
    """
    a = span.attributes
    tool = _text(a.get("tool.name")) or _text(a.get("gen_ai.tool.name"))
    if _role(a) != "tool" or not tool:
        return None
    arguments = _text(a.get("gen_ai.tool.call.arguments")) or _text(a.get("input.value"))
    call_id = _text(a.get("gen_ai.tool.call.id")) or _text(a.get("tool_call.id"))
    return ToolCall(name=tool, arguments=arguments, id=call_id)


def tool_result(span: SpanRecord) -> str | None:
    """What a tool span returned: ``gen_ai.tool.call.result`` or ``output.value``."""
    a = span.attributes
    for key in ("gen_ai.tool.call.result", "output.value"):
        if key in a:  # an empty result is a result: a command that printed nothing
            value = a[key]
            return value if isinstance(value, str) else _text(value)
    return None


def span_facts(span: SpanRecord) -> SpanFacts:
    """What the conventions say about ``span``."""
    a = span.attributes
    in_messages, out_messages = span_messages(span)
    role = _role(a)
    tool_calls = [call for m in out_messages for call in m.get("tool_calls", [])]
    ran = tool_run(span)
    if ran is not None:
        tool_calls.append(ran)
    documents = _documents(a)
    output = _text(a.get("output.value")) or _last_text(out_messages, "assistant")
    if role == "retriever" and not documents and output:
        documents = [output]
    return SpanFacts(
        role=role,
        input=_text(a.get("input.value")) or _last_text(in_messages, "user"),
        output=output,
        model=_text(a.get("llm.model_name"))
        or _text(a.get("gen_ai.response.model"))
        or _text(a.get("gen_ai.request.model")),
        documents=documents,
        tool_calls=tool_calls,
        usage=_usage(a),
        session_id=_text(a.get("session.id")) or _text(a.get("gen_ai.conversation.id")),
    )


def _role(a: Mapping[str, Any]) -> SpanRole:
    kind = _text(a.get("openinference.span.kind"))
    if kind and kind.upper() in _OPENINFERENCE_ROLES:
        return _OPENINFERENCE_ROLES[kind.upper()]
    operation = _text(a.get("gen_ai.operation.name"))
    if operation and operation in _GENAI_ROLES:
        return _GENAI_ROLES[operation]
    if any(key in a for key in ("gen_ai.request.model", "gen_ai.system", "llm.model_name")):
        return "llm"
    return "other"


def _usage(a: Mapping[str, Any]) -> TokenUsage:
    prompt = _int(a.get("llm.token_count.prompt"))
    completion = _int(a.get("llm.token_count.completion"))
    total = _int(a.get("llm.token_count.total"))
    if prompt is None:
        prompt = _int(a.get("gen_ai.usage.input_tokens"), a.get("gen_ai.usage.prompt_tokens"))
    if completion is None:
        completion = _int(
            a.get("gen_ai.usage.output_tokens"), a.get("gen_ai.usage.completion_tokens")
        )
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return TokenUsage(prompt=prompt, completion=completion, total=total)


def _documents(a: Mapping[str, Any]) -> list[str]:
    found = _indexed(a, "retrieval.documents")
    texts = [_text(found[i].get("document.content")) for i in sorted(found)]
    return [t for t in texts if t]


# -- messages -----------------------------------------------------------------------------


def _indexed(a: Mapping[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """``prefix.<i>.<rest>`` attributes grouped by ``i``: ``{i: {rest: value}}``."""
    out: dict[int, dict[str, Any]] = {}
    start = prefix + "."
    for key, value in a.items():
        if not key.startswith(start):
            continue
        index, _, rest = key[len(start) :].partition(".")
        if index.isdigit() and rest:
            out.setdefault(int(index), {})[rest] = value
    return out


def _indexed_messages(a: Mapping[str, Any], prefix: str, inner: str) -> list[Message]:
    """OpenInference (``message.role``) and legacy GenAI (``role``) indexed messages."""
    messages: list[Message] = []
    for _, fields in sorted(_indexed(a, prefix).items()):
        local = {k.removeprefix(inner): v for k, v in fields.items()}
        calls = _indexed(local, "tool_calls")
        messages.append(
            {
                "role": _text(local.get("role")) or "",
                "content": _kept(local.get("content")),
                "tool_calls": [_indexed_call(calls[j]) for j in sorted(calls)],
                "tool_call_id": _text(local.get("tool_call_id")),
            }
        )
    return messages


def _indexed_call(fields: Mapping[str, Any]) -> ToolCall:
    local = {k.removeprefix("tool_call."): v for k, v in fields.items()}
    name = _text(local.get("function.name")) or _text(local.get("name")) or "(unnamed)"
    arguments = _text(local.get("function.arguments")) or _text(local.get("arguments"))
    return ToolCall(name=name, arguments=arguments, id=_text(local.get("id")))


def _genai_input(span: SpanRecord) -> list[Message]:
    a = span.attributes
    return (
        _json_messages(a.get("gen_ai.input.messages"))
        or _indexed_messages(a, "gen_ai.prompt", "")
        or _event_messages(span.events, _INPUT_EVENTS, "user")
    )


def _genai_output(span: SpanRecord) -> list[Message]:
    a = span.attributes
    return (
        _json_messages(a.get("gen_ai.output.messages"))
        or _indexed_messages(a, "gen_ai.completion", "")
        or _event_messages(span.events, _OUTPUT_EVENTS, "assistant")
    )


def _json_messages(value: Any) -> list[Message]:
    """GenAI ``gen_ai.*.messages``: a JSON string or array of ``{role, parts}``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [{"role": "", "content": value, "tool_calls": [], "tool_call_id": None}]
    if not isinstance(value, list):
        return []
    return [_message(item, "") for item in value if isinstance(item, dict)]


def _event_messages(events: Iterable[SpanEvent], names: set[str], role: str) -> list[Message]:
    messages: list[Message] = []
    for event in events:
        if event.name not in names:
            continue
        a = event.attributes
        body = a.get("message") or a.get("gen_ai.event.content") or a.get("body")
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except json.JSONDecodeError:
                body = {"content": body}
        if not isinstance(body, dict):
            body = {}
        if isinstance(body.get("message"), dict):  # gen_ai.choice: {index, message: {...}}
            body = body["message"]
        content = body.get("content") or a.get("content")
        content = content or a.get("gen_ai.prompt") or a.get("gen_ai.completion")
        default = _EVENT_ROLES.get(event.name, role)
        answers = body.get("tool_call_id") or (body.get("id") if default == "tool" else None)
        messages.append(_message({**body, "content": content, "tool_call_id": answers}, default))
    return messages


def _message(item: Mapping[str, Any], default_role: str) -> Message:
    parts = item.get("parts")
    texts: list[str] = []
    calls: list[ToolCall] = []
    answers = _text(item.get("tool_call_id"))
    if isinstance(parts, list):
        for part in parts:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "tool_call_response":  # GenAI: a tool's result
                answers = answers or _text(part.get("id"))
                response = part.get("response", part.get("result"))
                texts.append(response if isinstance(response, str) else _dump(response))
            elif part.get("type") == "tool_call":
                args = part.get("arguments")
                calls.append(
                    ToolCall(
                        name=_text(part.get("name")) or "(unnamed)",
                        arguments=args if isinstance(args, str) or args is None else _dump(args),
                        id=_text(part.get("id")),
                    )
                )
            elif (text := _content_text(part.get("content"))) is not None:
                texts.append(text)
    content = _content_text(item.get("content"))
    if content is not None:
        texts.insert(0, content)
    for call in item.get("tool_calls") or []:
        if isinstance(call, dict):
            inner = call.get("function")
            function: dict[str, Any] = inner if isinstance(inner, dict) else call
            args = function.get("arguments")
            calls.append(
                ToolCall(
                    name=_text(function.get("name")) or "(unnamed)",
                    arguments=args if isinstance(args, str) or args is None else _dump(args),
                    id=_text(call.get("id")),
                )
            )
    return {
        "role": _text(item.get("role")) or default_role,
        "content": "\n".join(texts) if texts else None,
        "tool_calls": calls,
        "tool_call_id": answers,
    }


def _content_text(value: Any) -> str | None:
    """Message content: a string, or a list of parts with ``text`` or ``content``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = [_content_text(v) for v in value]
        joined = "\n".join(t for t in texts if t)
        return joined or None
    if isinstance(value, dict):
        return _content_text(value.get("text") or value.get("content"))
    return None


def _last_text(messages: list[Message], role: str) -> str | None:
    """The last message of ``role`` with text; else every message's text joined."""
    for message in reversed(messages):
        if message["role"] == role and message["content"]:
            return str(message["content"])
    texts = [str(m["content"]) for m in messages if m["content"]]
    return "\n".join(texts) if texts else None


# -- values -------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float):
        return str(value)
    return _dump(value)


def _kept(value: Any) -> str | None:
    """Message text as sent: an empty string stays empty (an empty tool result)."""
    return value if isinstance(value, str) else _text(value)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _int(*values: Any) -> int | None:
    for value in values:
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    return None
