"""The OpenAPI document, and the self-contained HTML page made from it."""

import html
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

_METHODS = ("get", "put", "post", "delete", "head", "patch", "options")


@dataclass(frozen=True)
class OpenApiDocument:
    """The spec as served: its YAML text, as JSON, and as a web page."""

    yaml_text: str
    json_text: str
    html_page: str


def load_document(path: Path) -> OpenApiDocument:
    """The document of the file as it is now; parsed once per version of the file, since an
    app is made per serving process (and per test) and parsing takes a good part of a second."""
    return _parsed(path, path.stat().st_mtime_ns)


@cache
def _parsed(path: Path, mtime_ns: int) -> OpenApiDocument:
    text = path.read_text()
    # libyaml's parser when PyYAML was built with it: several times faster.
    spec = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return OpenApiDocument(text, json.dumps(spec, indent=2), render_html(spec))


def _inline(text: str) -> str:
    """Escaped text with `code` and **bold** rendered."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def _markdown(text: str) -> str:
    """The small subset of Markdown the spec's descriptions use: paragraphs, headings, tables."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().splitlines()
        if lines[0].startswith("## "):
            out.append(f"<h2>{_inline(lines[0][3:])}</h2>")
        elif lines[0].startswith("|"):
            rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
            head = "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
            body = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                for row in rows[2:]
            )
            out.append(f"<table><tr>{head}</tr>{body}</table>")
        else:
            out.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(out)


def _resolve(spec: dict, node: dict) -> dict:
    """`node` with a local $ref followed; its own description wins over the target's."""
    if "$ref" not in node:
        return node
    target = spec
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def _schema_summary(spec: dict, schema: dict) -> str:
    schema = _resolve(spec, schema or {})
    facts = [str(schema.get("type", schema.get("const", "")))]
    for key in (
        "format",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "enum",
        "default",
    ):
        if key in schema:
            facts.append(f"{key}: {schema[key]}")
    return _inline(", ".join(f for f in facts if f))


def render_html(spec: dict) -> str:
    """The whole API reference as one HTML page with no external assets."""
    info = spec["info"]
    parts = [
        f"<h1>{_inline(info['title'])} <small>{_inline(info['version'])}</small></h1>",
        _markdown(info.get("description", "")),
    ]
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in _METHODS:
            if method not in item:
                continue
            op = item[method]
            parts.append(
                f'<section id="{html.escape(op["operationId"])}">'
                f"<h2><span class=m>{method.upper()}</span> <code>{html.escape(path)}"
                f"</code></h2><p><strong>{_inline(op.get('summary', ''))}</strong>. "
                f"{_inline(op.get('description', ''))}</p>"
            )
            params = [_resolve(spec, p) for p in shared + op.get("parameters", [])]
            if params:
                rows = "".join(
                    f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                    f"<td>{_schema_summary(spec, p.get('schema', {}))}</td>"
                    f"<td>{_inline(p.get('description', ''))}</td></tr>"
                    for p in params
                )
                parts.append(
                    "<table><tr><th>parameter</th><th>in</th><th>schema</th>"
                    f"<th>description</th></tr>{rows}</table>"
                )
            if "requestBody" in op:
                body = op["requestBody"]
                types = ", ".join(body.get("content", {}))
                parts.append(
                    f"<p>Body ({html.escape(types)}): {_inline(body.get('description', ''))}</p>"
                )
            rows = "".join(
                f"<tr><td>{status}</td><td>{_inline(_resolve(spec, r).get('description', ''))}"
                f"</td></tr>"
                for status, r in op["responses"].items()
            )
            parts.append(f"<table><tr><th>status</th><th>meaning</th></tr>{rows}</table></section>")
    style = (
        "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px "
        "solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}code{background:"
        "#f4f4f4}.m{font-family:monospace;background:#234;color:#fff;padding:0 .4rem}"
        "section{border-top:1px solid #ddd;margin-top:1.5rem}"
    )
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
        f"{html.escape(info['title'])}</title><style>{style}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
