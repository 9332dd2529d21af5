"""mkdocs hooks (``hooks:`` in mkdocs.yml): heading ids that never start with a digit.

The walkthrough's headings (``## 1. The formula (k-SAT)``) would get ids such as ``1-the-formula-k-sat``, which
are not valid CSS selectors, so the mkdocs theme's scroll-spy throws on every page that has one. Such ids get an
``s`` in front (``s1-the-formula-k-sat``); every other id is the toc extension's default.
"""

from __future__ import annotations

from markdown.extensions.toc import slugify


def _slugify(value: str, separator: str) -> str:
    slug = slugify(value, separator)
    return f"s{slug}" if slug[:1].isdigit() else slug


def on_config(config):
    config["mdx_configs"].setdefault("toc", {})["slugify"] = _slugify
    return config
