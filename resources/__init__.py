"""The bundled sample corpora, their attribution (ATTRIBUTION.md) and the app icons.

This folder stays at the top of the repository and is installed as the package
`desktop_llm._resources` (see pyproject.toml): `desktop_llm.resources` finds it.
"""
