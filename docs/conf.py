"""Sphinx configuration of sb3-metarim's documentation (``make docs``: HTML in docs/_build/html, warnings as errors)."""

from sb3_metarim.version import __version__

project = "sb3-metarim"
author = "sb3-metarim contributors"
copyright = "sb3-metarim contributors"
version = __version__
release = __version__

# Our docstrings use Sphinx's own field lists (``:param x:``), so no napoleon. No intersphinx: the build must work
# offline.
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# MyST: heading anchors (``[text](page.md#a-heading)``) up to level 3, ``:::`` fences for directives.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# autodoc: members in source order; type annotations in the parameter descriptions, not in the (long) signatures.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
# Only the package's own docstrings: a method it overrides without one (an env's ``step``) is not listed with
# gymnasium's or SB3's text, written for other tools (Google or NumPy style).
autodoc_inherit_docstrings = False

html_theme = "sphinx_rtd_theme"
html_title = f"sb3-metarim {release}"
